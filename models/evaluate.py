"""`garbagewatch model eval`: AP50 per class and for exposed garbage, with the edge's own detector.

Measured through edge.detect.OnnxDetector, the code that runs on the box, not through
ultralytics, so the figures are those of the shipped ONNX file and its pre/post-processing.

- AP50: COCO-style 101-point interpolated average precision at IoU 0.5.
- Exposed garbage: classes garbage and overflow merged into one class (in labels and
  predictions, predictions then de-duplicated by NMS at IoU 0.7) before computing AP50.
- --letterbox-16x9 pads every (square) validation image onto a 16:9 canvas first, as the
  edge's camera frames are 16:9.
- --degrade KIND applies one of models.augment.DEGRADATIONS to every image (fixed seed).
- Speed is measured apart from accuracy (models.speed, on the first evaluated frames, at the
  edge's default threshold): the accuracy pass runs at confidence 0.001, whose thousands of
  candidate boxes would make the post-processing look far slower than it is on the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.detect import Detections, OnnxDetector, box_iou, default_intra_op_threads, nms
from models.augment import DEGRADATIONS, Image
from models.speed import EDGE_CONFIDENCE, Speed, measure

__all__ = ["EXPOSED", "ClassRecords", "Report", "evaluate", "pad_16x9", "read_labels"]

EXPOSED = ("garbage", "overflow")


@dataclass
class ClassRecords:
    """Scored predictions (confidence, is true positive) and the number of labelled boxes."""

    scores: list[float] = field(default_factory=list)
    hits: list[bool] = field(default_factory=list)
    n_true: int = 0

    def add(self, pred_xyxy: np.ndarray, pred_conf: np.ndarray, true_xyxy: np.ndarray) -> None:
        self.n_true += len(true_xyxy)
        if len(pred_xyxy) == 0:
            return
        order = np.argsort(-pred_conf)
        taken = np.zeros(len(true_xyxy), bool)
        ious = box_iou(pred_xyxy[order], true_xyxy) if len(true_xyxy) else np.zeros((len(order), 0))
        for row, i in enumerate(order):
            hit = False
            if ious.shape[1]:
                cand = np.where(~taken, ious[row], -1.0)
                j = int(np.argmax(cand))
                if cand[j] >= 0.5:
                    taken[j] = hit = True
            self.scores.append(float(pred_conf[i]))
            self.hits.append(hit)

    def ap50(self) -> float:
        if self.n_true == 0:
            return float("nan")
        if not self.scores:
            return 0.0
        order = np.argsort(-np.asarray(self.scores))
        tp = np.cumsum(np.asarray(self.hits)[order])
        fp = np.cumsum(~np.asarray(self.hits)[order])
        recall = tp / self.n_true
        precision = tp / np.maximum(tp + fp, 1)
        # precision envelope, then sampled at 101 recall points (COCO)
        env = np.maximum.accumulate(precision[::-1])[::-1]
        points = np.linspace(0, 1, 101)
        idx = np.searchsorted(recall, points, side="left")
        sampled = np.where(idx < len(env), env[np.minimum(idx, len(env) - 1)], 0.0)
        return float(sampled.mean())

    def recall_at(self, conf: float) -> float:
        if self.n_true == 0:
            return float("nan")
        s, h = np.asarray(self.scores), np.asarray(self.hits)
        return float((h & (s >= conf)).sum() / self.n_true) if len(s) else 0.0


@dataclass
class Report:
    model: str
    input_hw: tuple[int, int]
    images: int
    per_class: dict[str, float]
    exposed_ap50: float
    exposed_recall_at_edge: float  # share of exposed-garbage labels found at the edge's threshold
    variant: str
    speed: Speed | None = None

    def lines(self) -> list[str]:
        out = [f"model {self.model} input {self.input_hw[0]}x{self.input_hw[1]} images {self.images} "
               f"variant {self.variant}"]
        out += [f"AP50 {name:<16} {_fmt(ap)}" for name, ap in self.per_class.items()]
        out.append(f"AP50 {'exposed_garbage':<16} {_fmt(self.exposed_ap50)}")
        out.append(f"recall exposed_garbage @{EDGE_CONFIDENCE} (edge default) {_fmt(self.exposed_recall_at_edge)}")
        if self.speed is not None:
            sp = self.speed
            plural = "s" if sp.threads > 1 else ""
            out.append(f"speed {sp.model_only_ips:.1f} images/s model only, "
                       f"{sp.with_pre_post_ips:.1f} images/s with pre/post-processing "
                       f"({sp.input_hw[0]}x{sp.input_hw[1]}, {sp.threads} intra-op thread{plural}, "
                       f"median of {sp.runs}, this CPU)")
        return out


def _fmt(value: float) -> str:
    return "n/a (no labelled boxes)" if np.isnan(value) else f"{value:.3f}"


def read_labels(path: Path, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros(0, int)
    arr = np.asarray(rows, np.float32)
    cx, cy, bw, bh = arr[:, 1] * w, arr[:, 2] * h, arr[:, 3] * w, arr[:, 4] * h
    xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    return xyxy, arr[:, 0].astype(int)


def pad_16x9(img: Image) -> tuple[Image, int, int]:
    """The image centred on a 16:9 grey canvas; returns the canvas and the offset of the image."""
    h, w = img.shape[:2]
    cw, ch = max(w, round(h * 16 / 9)), max(h, round(w * 9 / 16))
    canvas = np.full((ch, cw, 3), 114, np.uint8)
    ox, oy = (cw - w) // 2, (ch - h) // 2
    canvas[oy:oy + h, ox:ox + w] = img
    return canvas, ox, oy


def _exposed(det: Detections) -> tuple[np.ndarray, np.ndarray]:
    mask = det.with_names(frozenset(EXPOSED))
    xyxy, conf = det.xyxy[mask], det.confidence[mask]
    keep = nms(xyxy, conf, 0.7) if len(xyxy) else np.zeros(0, int)
    return xyxy[keep], conf[keep]


def evaluate(model: Path, split_dir: Path, *, letterbox_16x9: bool = False, degrade: str | None = None,
             limit: int | None = None, threads: int | None = None, speed_runs: int = 30) -> Report:
    """AP50 per class and for exposed garbage on a YOLO-format split (images/, labels/)."""
    if degrade is not None and degrade not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {degrade!r}; known: {sorted(DEGRADATIONS)}")
    detector = OnnxDetector(model, conf_default=0.001, iou=0.7, intra_op_threads=threads)
    names = detector.info.class_names
    per_class = {n: ClassRecords() for n in names}
    exposed = ClassRecords()
    images = sorted((split_dir / "images").glob("*.jpg"))[:limit]
    if not images:
        raise FileNotFoundError(f"no *.jpg under {split_dir / 'images'}")
    rng = np.random.default_rng(0)
    speed_frames: list[Image] = []
    for path in images:
        raw = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if raw is None:
            raise ValueError(f"{path}: not a readable image")
        img = np.asarray(raw, np.uint8)
        if degrade:
            img = DEGRADATIONS[degrade](rng, img)
        h, w = img.shape[:2]
        true_xyxy, true_cls = read_labels(split_dir / "labels" / (path.stem + ".txt"), w, h)
        frame, ox, oy = pad_16x9(img) if letterbox_16x9 else (img, 0, 0)
        if len(speed_frames) < 10:
            speed_frames.append(frame)
        det = detector.detect(frame)
        det = Detections(det.xyxy - np.array([ox, oy, ox, oy], np.float32), det.confidence, det.class_id,
                         det.class_names)
        for cid, name in enumerate(names):
            m = det.class_id == cid
            per_class[name].add(det.xyxy[m], det.confidence[m], true_xyxy[true_cls == cid])
        ex_true = true_xyxy[np.isin(true_cls, [names.index(n) for n in EXPOSED if n in names])]
        exposed.add(*_exposed(det), ex_true)
    speed = None
    if speed_runs > 0:
        n_threads = threads or default_intra_op_threads()
        speed = measure([model], speed_frames, threads=n_threads, runs=speed_runs)[0]
    variant = ("16:9 letterboxed" if letterbox_16x9 else "as labelled") + (f", {degrade}" if degrade else "")
    return Report(model=model.name, input_hw=detector.info.input_hw, images=len(images),
                  per_class={n: r.ap50() for n, r in per_class.items()}, exposed_ap50=exposed.ap50(),
                  exposed_recall_at_edge=exposed.recall_at(EDGE_CONFIDENCE), variant=variant, speed=speed)
