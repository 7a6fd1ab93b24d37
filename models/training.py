"""The training recipe: dataset assembly (real + degraded + synthetic), ultralytics training, export.

Runs in the `train` environment (ultralytics, torch), never on an edge box. Every step is
resumable: the dataset folder is rebuilt only where files are missing, and training resumes
from `last.pt` of the run folder.

    garbagewatch model train --data ../shared/datasets/garbage-cn --out runs/garbage
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.augment import degrade_photo
from models.synthetic import render_training_image, to_yolo_lines

CLASS_NAMES = ("garbage", "garbage_bin", "overflow")
# Seeds below this bound may be used for synthetic training images; demo footage and the
# held-out synthetic recall check use seeds at or above it, so they are never trained on.
SYNTHETIC_TRAIN_SEED_LIMIT = 1_000_000


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the model; recorded in the model card."""

    model_cfg: str = "yolo11n.yaml"  # from scratch: no pretrained weights can be downloaded here
    imgsz: int = 640
    batch: int = 64
    epochs: int = 300
    time_hours: float | None = None  # when set, ultralytics fits the LR schedule into this budget
    synthetic_images: int = 900
    degraded_fraction: float = 0.3  # share of real train images replaced by a degraded copy
    seed: int = 0
    # Photometric and scale augmentation for cameras, cities and processing we have not seen.
    hsv_h: float = 0.02
    hsv_s: float = 0.7
    hsv_v: float = 0.5
    scale: float = 0.6
    translate: float = 0.1
    degrees: float = 3.0
    fliplr: float = 0.5
    mosaic: float = 1.0
    mixup: float = 0.1
    close_mosaic: int = 10


def _link_or_copy(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _write_degraded(args: tuple[Path, Path, int]) -> None:
    src, dst, seed = args
    img = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{src}: not a readable image")
    out = degrade_photo(np.random.default_rng(seed), np.asarray(img, np.uint8))
    cv2.imwrite(str(dst), out, [cv2.IMWRITE_JPEG_QUALITY, 92])


def _write_synthetic(args: tuple[Path, Path, int]) -> None:
    img_path, label_path, seed = args
    item = render_training_image(seed)
    cv2.imwrite(str(img_path), item.image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    label_path.write_text("\n".join(to_yolo_lines(item)) + "\n")


def build_dataset(source: Path, out: Path, recipe: Recipe, val_source: Path | None = None,
                  workers: int | None = None) -> Path:
    """Assemble the training folder and return its data.yaml (resumable: existing files are kept)."""
    train_img, train_lbl = out / "train" / "images", out / "train" / "labels"
    train_img.mkdir(parents=True, exist_ok=True)
    train_lbl.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(recipe.seed)
    jobs: list[tuple[Path, Path, int]] = []
    for img in sorted((source / "train" / "images").glob("*.jpg")):
        label = source / "train" / "labels" / (img.stem + ".txt")
        _link_or_copy(label, train_lbl / label.name) if label.exists() else None
        dst = train_img / img.name
        if rng.random() < recipe.degraded_fraction:
            if not dst.exists():
                jobs.append((img, dst, int(rng.integers(2**31))))
        else:
            _link_or_copy(img, dst)
    syn: list[tuple[Path, Path, int]] = []
    for i in range(recipe.synthetic_images):
        seed = recipe.seed * 100_000 + i
        assert seed < SYNTHETIC_TRAIN_SEED_LIMIT
        ip, lp = train_img / f"synthetic_{seed:07d}.jpg", train_lbl / f"synthetic_{seed:07d}.txt"
        if not (ip.exists() and lp.exists()):
            syn.append((ip, lp, seed))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_write_degraded, jobs, chunksize=16))
        list(pool.map(_write_synthetic, syn, chunksize=16))
    val = val_source or (source / "valid")
    data_yaml = out / "data.yaml"
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(CLASS_NAMES))
    data_yaml.write_text(
        f"path: {out.resolve()}\ntrain: train/images\nval: {val.resolve()}/images\nnames:\n{names}\n")
    return data_yaml


def _offline_ultralytics() -> None:
    """No downloads: skip the AMP check's weight download, the font download and polars where missing."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    import ultralytics.data.utils as data_utils
    import ultralytics.engine.trainer as trainer
    import ultralytics.utils.checks as checks

    def _amp_ok(*_: object, **__: object) -> bool:  # we trust the GPU's AMP; the check needs a download
        return True

    def _no_font(*_: object, **__: object) -> None:
        return None

    checks.check_amp = _amp_ok  # type: ignore[assignment, unused-ignore]
    trainer.check_amp = _amp_ok  # type: ignore[attr-defined, unused-ignore]
    checks.check_font = _no_font  # type: ignore[assignment, unused-ignore]
    data_utils.check_font = _no_font  # type: ignore[attr-defined, unused-ignore]
    try:
        import polars  # noqa: F401
    except ImportError:  # results.csv is still written; only ultralytics' own read-back needs polars
        trainer.BaseTrainer.read_results_csv = lambda self: {}  # type: ignore[method-assign, unused-ignore]


def train(data_yaml: Path, run_dir: Path, recipe: Recipe, device: str = "cpu", workers: int = 2,
          callbacks: Iterable[tuple[str, object]] = ()) -> Path:
    """Train, or resume the run in run_dir; return the best weights."""
    _offline_ultralytics()
    from ultralytics import YOLO

    last = run_dir / "weights" / "last.pt"
    if last.exists():
        model = YOLO(str(last))
        for event, fn in callbacks:
            model.add_callback(event, fn)
        model.train(resume=True, device=device, workers=workers)
    else:
        model = YOLO(recipe.model_cfg)
        for event, fn in callbacks:
            model.add_callback(event, fn)
        model.train(
            data=str(data_yaml), project=str(run_dir.parent.resolve()), name=run_dir.name, exist_ok=True,
            imgsz=recipe.imgsz, batch=recipe.batch, epochs=recipe.epochs, time=recipe.time_hours,
            device=device, workers=workers, seed=recipe.seed, pretrained=False, plots=False,
            cache="ram", hsv_h=recipe.hsv_h, hsv_s=recipe.hsv_s, hsv_v=recipe.hsv_v, scale=recipe.scale,
            translate=recipe.translate, degrees=recipe.degrees, fliplr=recipe.fliplr, mosaic=recipe.mosaic,
            mixup=recipe.mixup, close_mosaic=recipe.close_mosaic, patience=0, val=True,
        )
    return run_dir / "weights" / "best.pt"


def export_onnx(weights: Path, out: Path, imgsz: tuple[int, int]) -> Path:
    """Export to ONNX (opset 17, static shape h x w); ultralytics writes class names into the metadata."""
    _offline_ultralytics()
    from ultralytics import YOLO

    produced = Path(YOLO(str(weights)).export(format="onnx", imgsz=list(imgsz), opset=17, simplify=False,
                                              dynamic=False, nms=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(produced), out)
    return out
