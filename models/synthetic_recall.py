"""`garbagewatch model synthetic-recall`: does the model find the garbage the demo's street renderer draws?

The demo camera films scenes drawn by models.synthetic. Training used renderer seeds below
models.training.SYNTHETIC_TRAIN_SEED_LIMIT only, so scenes rendered here (seeds at or above it)
were never seen. Images are rendered 1280x720 like the demo's footage; a labelled pile or
overflowing bin counts as found when an exposed-garbage detection (garbage or overflow, the
class between them not minded) overlaps it at IoU >= 0.5 (and, for reference, >= 0.3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.detect import OnnxDetector, box_iou
from models.evaluate import EXPOSED
from models.speed import EDGE_CONFIDENCE
from models.synthetic import BIN, GARBAGE, OVERFLOW, render_training_image
from models.training import SYNTHETIC_TRAIN_SEED_LIMIT

__all__ = ["SyntheticRecall", "greedy_match", "synthetic_recall"]


@dataclass(frozen=True)
class SyntheticRecall:
    model: str
    images: int
    first_seed: int
    conf: float
    exposed_true: int
    found_at_05: int
    found_at_03: int
    false_alarms: int  # exposed-garbage detections that overlap no exposed label at IoU >= 0.5
    bins_true: int
    bins_found: int

    def lines(self) -> list[str]:
        def ratio(a: int, b: int) -> str:
            return f"{a / b:.3f} ({a}/{b})" if b else "n/a (none rendered)"

        last = self.first_seed + self.images - 1
        return [
            f"model {self.model} synthetic images {self.images} seeds {self.first_seed}..{last} "
            f"(never trained on) conf {self.conf}",
            f"recall exposed_garbage IoU>=0.5 {ratio(self.found_at_05, self.exposed_true)}",
            f"recall exposed_garbage IoU>=0.3 {ratio(self.found_at_03, self.exposed_true)}",
            f"false alarms exposed_garbage {self.false_alarms} "
            f"({self.false_alarms / max(self.images, 1):.2f} per image)",
            f"recall garbage_bin IoU>=0.5 {ratio(self.bins_found, self.bins_true)}",
        ]


def greedy_match(pred_xyxy: np.ndarray, pred_conf: np.ndarray, true_xyxy: np.ndarray,
                 iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Match predictions to labels, highest confidence first; returns (pred matched, label matched)."""
    pred_hit = np.zeros(len(pred_xyxy), bool)
    true_hit = np.zeros(len(true_xyxy), bool)
    if len(pred_xyxy) == 0 or len(true_xyxy) == 0:
        return pred_hit, true_hit
    ious = box_iou(pred_xyxy, true_xyxy)
    for i in np.argsort(-pred_conf, kind="stable"):
        cand = np.where(true_hit, -1.0, ious[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou:
            pred_hit[i] = true_hit[j] = True
    return pred_hit, true_hit


def synthetic_recall(model: Path, images: int = 100, *, first_seed: int = SYNTHETIC_TRAIN_SEED_LIMIT,
                     conf: float = EDGE_CONFIDENCE, size: tuple[int, int] = (1280, 720),
                     threads: int | None = None) -> SyntheticRecall:
    if first_seed < SYNTHETIC_TRAIN_SEED_LIMIT:
        raise ValueError(
            f"seed {first_seed} may have been trained on; use seeds >= {SYNTHETIC_TRAIN_SEED_LIMIT}")
    detector = OnnxDetector(model, conf_default=conf, intra_op_threads=threads)
    exposed_names = frozenset(EXPOSED)
    names = detector.info.class_names
    bin_id = names.index("garbage_bin") if "garbage_bin" in names else -1
    exposed_true = found_05 = found_03 = false_alarms = bins_true = bins_found = 0
    for seed in range(first_seed, first_seed + images):
        item = render_training_image(seed, size)
        labels = np.array([box for _, box in item.boxes], np.float32).reshape(-1, 4)
        classes = np.array([cls for cls, _ in item.boxes], int)
        det = detector.detect(item.image)
        ex = det.with_names(exposed_names)
        ex_true = labels[np.isin(classes, [GARBAGE, OVERFLOW])]
        pred_hit, true_hit = greedy_match(det.xyxy[ex], det.confidence[ex], ex_true, 0.5)
        _, true_hit_03 = greedy_match(det.xyxy[ex], det.confidence[ex], ex_true, 0.3)
        exposed_true += len(ex_true)
        found_05 += int(true_hit.sum())
        found_03 += int(true_hit_03.sum())
        false_alarms += int((~pred_hit).sum())
        bins = det.class_id == bin_id
        _, bin_hit = greedy_match(det.xyxy[bins], det.confidence[bins], labels[classes == BIN], 0.5)
        bins_true += len(bin_hit)
        bins_found += int(bin_hit.sum())
    return SyntheticRecall(model=model.name, images=images, first_seed=first_seed, conf=conf,
                           exposed_true=exposed_true, found_at_05=found_05, found_at_03=found_03,
                           false_alarms=false_alarms, bins_true=bins_true, bins_found=bins_found)
