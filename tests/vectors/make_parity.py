"""Generate tests/vectors/parity-<model>.json: ultralytics' own boxes for the shipped detectors.

    /path/to/venv-with-ultralytics/bin/python tests/vectors/make_parity.py [MODEL ...]

Run it with a Python that has ultralytics and torch (they are not the project's dependencies:
CI never installs them). For each model (default: both shipped files) it runs ultralytics'
`YOLO(model).predict` (its letterbox, its onnxruntime session, its NMS) on the first validation
images of ../shared/datasets/garbage-cn that carry labels, at the edge's thresholds, and stores
the boxes in image pixels with the model's sha256. tests/test_detect_parity.py then checks that
edge.detect.OnnxDetector finds the same boxes: the same count, the same classes, IoU >= 0.9 each.
Only coordinates and image names are stored, never pixels (the images are the dataset's).
Rerun it whenever a shipped model changes: the test refuses references made for another sha256.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT.parent / "shared" / "datasets" / "garbage-cn"
MODELS = [ROOT / "models" / "garbagewatch.onnx", ROOT / "models" / "garbagewatch-int8.onnx"]
IMAGES = 12
CONFIDENCE = 0.35  # edge.config.DetectorConfig's defaults
IOU = 0.45


def images(limit: int = IMAGES) -> list[Path]:
    """The first validation images (by name) that have at least one labelled object."""
    out = []
    for image in sorted((DATASET / "valid" / "images").glob("*.jpg")):
        label = DATASET / "valid" / "labels" / f"{image.stem}.txt"
        if label.is_file() and label.read_text().strip():
            out.append(image)
        if len(out) == limit:
            break
    return out


def reference(model: Path) -> dict[str, Any]:
    import onnxruntime
    import ultralytics
    from ultralytics import YOLO

    import edge.detect

    info = edge.detect.OnnxDetector(model).info
    yolo = YOLO(str(model), task="detect")
    rows = []
    for path in images():
        result = yolo.predict(str(path), imgsz=list(info.input_hw), conf=CONFIDENCE, iou=IOU, verbose=False)[0]
        boxes = result.boxes
        rows.append({
            "image": f"valid/images/{path.name}",
            "boxes": [[round(float(v), 2) for v in xyxy] + [round(float(c), 4), int(k)]
                      for xyxy, c, k in zip(boxes.xyxy.tolist(), boxes.conf.tolist(), boxes.cls.tolist(), strict=True)],
        })
    return {
        "model": model.name,
        "sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "made_by": f"ultralytics {ultralytics.__version__} predict, onnxruntime {onnxruntime.__version__}",
        "input_hw": list(info.input_hw),
        "confidence": CONFIDENCE,
        "iou": IOU,
        "box_format": "x1, y1, x2, y2 (image pixels), confidence, class id",
        "images": rows,
    }


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    for model in [Path(a) for a in argv] or MODELS:
        out = Path(__file__).with_name(f"parity-{model.stem}.json")
        data = reference(model)
        out.write_text(json.dumps(data, indent=1) + "\n")
        print(f"{out.name}: {sum(len(r['boxes']) for r in data['images'])} boxes on {len(data['images'])} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
