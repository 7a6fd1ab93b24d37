"""`garbagewatch model errors`: what the detector gets wrong on a labelled split, counted by kind.

At the edge's operating threshold (confidence >= conf, default 0.35 as on the edge), each class on its own, labels and
detections matched at IoU >= 0.5, highest confidence first. Every unmatched detection (false
positive) and every unmatched label (miss) is put in the first kind that fits:

false positives
- wrong class: overlaps (IoU >= 0.5) a label of another class, e.g. a tidy bin called overflow;
- duplicate: overlaps a label of its class that another detection already took;
- loose box: overlaps a label of its class, but only at 0.1 <= IoU < 0.5 (box too big, too small,
  or split/merged piles);
- background: overlaps no label (IoU < 0.1 with everything).

misses
- called another class: a detection of another class overlaps it (IoU >= 0.5);
- loose box: a detection of its class overlaps it at 0.1 <= IoU < 0.5;
- low confidence: a detection of its class overlaps it, but below conf (>= 0.05);
- not seen: nothing.

Misses are also counted by the label's size relative to the image: small (< 1% of the image
area, e.g. under 64x64 in 640x640: far piles), medium (1-10%), large (>= 10%).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.detect import OnnxDetector, box_iou
from models.evaluate import EXPOSED, read_labels
from models.speed import EDGE_CONFIDENCE
from models.synthetic_recall import greedy_match

__all__ = ["ErrorReport", "analyse_errors", "size_bucket"]

LOW_CONF = 0.05
SIZES = ("small", "medium", "large")


def size_bucket(area_fraction: float) -> str:
    return "small" if area_fraction < 0.01 else "medium" if area_fraction < 0.10 else "large"


@dataclass
class ErrorReport:
    model: str
    images: int
    conf: float
    class_names: tuple[str, ...]
    labels: Counter[str] = field(default_factory=Counter)  # class -> labelled boxes
    labels_by_size: Counter[tuple[str, str]] = field(default_factory=Counter)  # (class, size)
    hits: Counter[str] = field(default_factory=Counter)
    false_positives: Counter[tuple[str, str]] = field(default_factory=Counter)  # (class, kind)
    misses: Counter[tuple[str, str]] = field(default_factory=Counter)  # (class, kind)
    misses_by_size: Counter[tuple[str, str]] = field(default_factory=Counter)  # (class, size)
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (labelled as, detected as)
    images_with_false_positive: int = 0
    exposed: Counter[str] = field(default_factory=Counter)  # labels, found, false positives (merged classes)

    def lines(self) -> list[str]:
        out = [f"model {self.model} images {self.images} conf {self.conf} (matched per class at IoU>=0.5)"]
        for name in self.class_names:
            fp = {k: n for (c, k), n in self.false_positives.items() if c == name}
            miss = {k: n for (c, k), n in self.misses.items() if c == name}
            out.append(f"{name}: labels {self.labels[name]} found {self.hits[name]} "
                       f"missed {sum(miss.values())} false positives {sum(fp.values())}")
            out.append(f"  misses by kind: {_kinds(miss)}")
            sizes = ", ".join(f"{size} {self.misses_by_size[name, size]}/{self.labels_by_size[name, size]}"
                              for size in SIZES)
            out.append(f"  misses by size (missed/labelled): {sizes}")
            out.append(f"  false positives by kind: {_kinds(fp)}")
        ex = self.exposed
        out.append(f"exposed_garbage (garbage and overflow as one class): labels {ex['labels']} "
                   f"found {ex['found']} missed {ex['labels'] - ex['found']} "
                   f"false positives {ex['false positives']}")
        pairs = ", ".join(f"{a}->{b} {n}" for (a, b), n in self.confusions.most_common())
        out.append(f"wrong class (labelled->detected): {pairs or 'none'}")
        out.append(f"images with a false positive: {self.images_with_false_positive}/{self.images}")
        return out


def _kinds(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])) or "none"


def _best_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, np.float32)
    if len(others) == 0:
        return np.zeros(len(boxes), np.float32)
    return np.asarray(box_iou(boxes, others).max(axis=1), np.float32)


def analyse_errors(model: Path, split_dir: Path, *, conf: float = EDGE_CONFIDENCE,
                   limit: int | None = None, threads: int | None = None) -> ErrorReport:
    detector = OnnxDetector(model, conf_default=LOW_CONF, intra_op_threads=threads)
    names = detector.info.class_names
    report = ErrorReport(model=model.name, images=0, conf=conf, class_names=names)
    images = sorted((split_dir / "images").glob("*.jpg"))[:limit]
    if not images:
        raise FileNotFoundError(f"no *.jpg under {split_dir / 'images'}")
    for path in images:
        raw = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if raw is None:
            raise ValueError(f"{path}: not a readable image")
        img = np.asarray(raw, np.uint8)
        h, w = img.shape[:2]
        true_xyxy, true_cls = read_labels(split_dir / "labels" / (path.stem + ".txt"), w, h)
        det = detector.detect(img)
        sure = det.confidence >= conf
        report.images += 1
        any_fp = False
        for cid, name in enumerate(names):
            mine = sure & (det.class_id == cid)
            others = sure & (det.class_id != cid)
            faint = ~sure & (det.class_id == cid)
            t_mine, t_other = true_xyxy[true_cls == cid], true_xyxy[true_cls != cid]
            pred_hit, true_hit = greedy_match(det.xyxy[mine], det.confidence[mine], t_mine, 0.5)
            report.labels[name] += len(t_mine)
            report.hits[name] += int(true_hit.sum())
            # false positives of this class
            fp_boxes, fp_labels_other = det.xyxy[mine][~pred_hit], true_cls[true_cls != cid]
            iou_same = _best_iou(fp_boxes, t_mine)
            if len(fp_boxes) and len(t_other):
                iou_other = box_iou(fp_boxes, t_other)
                best_other = iou_other.argmax(axis=1)
                other_iou = iou_other.max(axis=1)
            else:
                best_other, other_iou = np.zeros(len(fp_boxes), int), np.zeros(len(fp_boxes))
            for k in range(len(fp_boxes)):
                any_fp = True
                if other_iou[k] >= 0.5:
                    kind = "wrong class"
                    report.confusions[names[int(fp_labels_other[best_other[k]])], name] += 1
                elif iou_same[k] >= 0.5:
                    kind = "duplicate"
                elif iou_same[k] >= 0.1:
                    kind = "loose box"
                else:
                    kind = "background"
                report.false_positives[name, kind] += 1
            # misses of this class
            missed = t_mine[~true_hit]
            for box in t_mine:
                report.labels_by_size[name, size_bucket(_area(box) / (w * h))] += 1
            iou_called_other = _best_iou(missed, det.xyxy[others])
            iou_loose = _best_iou(missed, det.xyxy[mine])
            iou_faint = _best_iou(missed, det.xyxy[faint])
            for k, box in enumerate(missed):
                if iou_called_other[k] >= 0.5:
                    kind = "called another class"
                elif iou_loose[k] >= 0.1:
                    kind = "loose box"
                elif iou_faint[k] >= 0.5:
                    kind = "low confidence"
                else:
                    kind = "not seen"
                report.misses[name, kind] += 1
                report.misses_by_size[name, size_bucket(_area(box) / (w * h))] += 1
        report.images_with_false_positive += int(any_fp)
        exposed_ids = [names.index(n) for n in EXPOSED if n in names]
        ex_pred = sure & np.isin(det.class_id, exposed_ids)
        ex_true = true_xyxy[np.isin(true_cls, exposed_ids)]
        pred_hit, true_hit = greedy_match(det.xyxy[ex_pred], det.confidence[ex_pred], ex_true, 0.5)
        report.exposed["labels"] += len(ex_true)
        report.exposed["found"] += int(true_hit.sum())
        report.exposed["false positives"] += int((~pred_hit).sum())
    return report


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))
