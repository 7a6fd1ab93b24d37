"""`garbagewatch model ...`: train, export, evaluate, quantise and inspect the detector.

    garbagewatch model train --out runs/garbage --hours 2          # needs the train extra
    garbagewatch model export --weights runs/garbage/weights/best.pt --imgsz 384x640
    garbagewatch model eval [--letterbox-16x9] [--degrade dusk] [--limit 50]
    garbagewatch model synthetic-recall --images 200
    garbagewatch model quantize
    garbagewatch model errors

Heavy imports (ultralytics, onnxruntime, cv2) happen inside each command, so `train` and
`export` run in the training environment and the others on an edge-like install.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["DEFAULT_DATASET", "DEFAULT_MODEL", "INT8_MODEL", "main"]

EDGE_CONFIDENCE = 0.35  # edge.config.DetectorConfig.confidence; models.speed has the same (tested)
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = Path(__file__).resolve().parent / "garbagewatch.onnx"
INT8_MODEL = DEFAULT_MODEL.with_name("garbagewatch-int8.onnx")
DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "datasets" / "garbage-cn"
# `garbagewatch model quantize` keeps the int8 file only within this much exposed-garbage AP50.
INT8_MAX_AP50_DROP = 0.05

log = logging.getLogger("garbagewatch.model")


def _hw(text: str) -> tuple[int, int]:
    """'384x640' (height x width) or '640' (square); both multiples of 32, as YOLO's stride needs."""
    parts = text.lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not HxW, e.g. 384x640") from None
    if len(values) not in (1, 2) or not all(0 < v <= 4096 and v % 32 == 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: need H x W, each a positive multiple of 32")
    return values[0], values[-1]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="garbagewatch model", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train (or resume) a detector; needs the train extra")
    t.add_argument("--data", type=Path, default=DEFAULT_DATASET, help="dataset root with train/ and valid/")
    t.add_argument("--out", type=Path, required=True, help="run folder; running again resumes from last.pt")
    budget = t.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=int, default=300)
    budget.add_argument("--hours", type=float, help="fit the schedule into this wall-clock budget")
    t.add_argument("--imgsz", type=int, default=640, help="training image size (square)")
    t.add_argument("--device", default="cpu", help="'cpu', or a CUDA index such as '0'")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--synthetic", type=int, default=900, help="synthetic street images added to train")

    e = sub.add_parser("export", help="weights (.pt) -> ONNX at a fixed H x W; needs the train extra")
    e.add_argument("--weights", type=Path, required=True)
    e.add_argument("--imgsz", type=_hw, default=(384, 640), help="HxW, default 384x640 (16:9 frames)")
    e.add_argument("--out", type=Path, help="default: next to the weights, garbagewatch-HxW.onnx")

    def model_args(sp: argparse.ArgumentParser, split: str = "valid") -> None:
        sp.add_argument("--model", type=Path, default=DEFAULT_MODEL)
        sp.add_argument("--threads", type=int, help="intra-op threads (default: the edge's default)")
        if split:
            sp.add_argument("--data", type=Path, default=DEFAULT_DATASET / split,
                            help=f"a YOLO split with images/ and labels/ (default ../shared/.../{split})")
            sp.add_argument("--limit", type=int, help="only the first N images (sorted by name)")

    v = sub.add_parser("eval", help="AP50 per class and for exposed garbage, and speed")
    model_args(v)
    v.add_argument("--letterbox-16x9", action="store_true", help="pad each image onto a 16:9 canvas first")
    v.add_argument("--degrade", choices=["tonemap", "blur", "jpeg", "dusk"])
    v.add_argument("--speed-runs", type=int, default=30, help="timed runs for the speed line (0: none)")

    s = sub.add_parser("synthetic-recall", help="recall on rendered street scenes never trained on")
    model_args(s, split="")
    s.add_argument("--images", type=int, default=100)
    s.add_argument("--first-seed", type=int, help="default: models.training.SYNTHETIC_TRAIN_SEED_LIMIT")
    s.add_argument("--conf", type=float, default=EDGE_CONFIDENCE, help="default: the edge's default, 0.35")

    q = sub.add_parser("quantize", help="static int8 (QDQ) copy, kept only if accurate and faster")
    model_args(q)
    q.add_argument("--out", type=Path, default=INT8_MODEL)
    q.add_argument("--calibration", type=Path, default=DEFAULT_DATASET / "train",
                   help="split to calibrate on (default: the train split)")
    q.add_argument("--calibration-images", type=int, default=100)
    q.add_argument("--quantize-head", action="store_true", help="also int8 the Detect head's outputs")
    q.add_argument("--float-stem", action="store_true", help="keep the first convolution in float")
    q.add_argument("--full-range", action="store_true", help="8-bit weights instead of 7 (VNNI CPUs)")
    q.add_argument("--keep", action="store_true", help="write the int8 file even if it misses the bar")

    r = sub.add_parser("errors", help="false positives and misses on a labelled split, by kind")
    model_args(r)
    r.add_argument("--conf", type=float, default=EDGE_CONFIDENCE, help="default: the edge's default, 0.35")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error argparse already printed
        return int(exc.code or 0)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    commands = {"train": _train, "export": _export, "eval": _eval, "synthetic-recall": _synthetic_recall,
                "quantize": _quantize, "errors": _errors}
    return commands[args.command](args)


def _needs_ultralytics() -> bool:
    if importlib.util.find_spec("ultralytics") is None:
        print("ultralytics is not installed: install the train extra in its own venv "
              "(python3 -m venv .venv-train && .venv-train/bin/pip install -e '.[train]') and run this there")
        return False
    return True


def _split_ok(split: Path, what: str = "dataset split", option: str = "--data") -> bool:
    if not (split / "images").is_dir():
        print(f"{what} not found at {split}: pass {option} DIR, a YOLO split with images/ and labels/")
        return False
    return True


def _model_ok(model: Path) -> bool:
    if not model.is_file():
        print(f"model file {model} does not exist")
        return False
    return True


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _train(args: argparse.Namespace) -> int:
    if not _needs_ultralytics():
        return 2
    if not ((args.data / "train" / "images").is_dir() and (args.data / "valid" / "images").is_dir()):
        print(f"dataset not found at {args.data}: pass --data DIR with train/ and valid/ YOLO splits")
        return 2
    from models.training import Recipe, build_dataset, train

    out: Path = args.out
    last = out / "weights" / "last.pt"
    if last.exists() and _finished(last):
        print(f"run {out} has finished; best weights: {out / 'weights' / 'best.pt'} "
              "(pass a new --out to train again)")
        return 0
    recipe = Recipe(imgsz=args.imgsz, batch=args.batch, epochs=args.epochs, time_hours=args.hours,
                    synthetic_images=args.synthetic)
    if last.exists():
        print(f"resuming {out} from {last} (the run's own epochs/schedule apply)")
    data_yaml = build_dataset(args.data, out / "dataset", recipe, workers=args.workers)
    best = train(data_yaml, out, recipe, device=args.device, workers=args.workers)
    print(f"best weights: {best}")
    print(f"next: garbagewatch model export --weights {best} --imgsz 384x640")
    return 0


def _finished(last: Path) -> bool:
    """A run ultralytics completed: its last.pt has no optimizer state and epoch -1."""
    import torch

    ckpt = torch.load(str(last), map_location="cpu", weights_only=False)
    return bool(ckpt.get("optimizer") is None or ckpt.get("epoch", -1) < 0)


def _export(args: argparse.Namespace) -> int:
    if not _needs_ultralytics():
        return 2
    if not args.weights.is_file():
        print(f"weights file {args.weights} does not exist")
        return 2
    from models.training import export_onnx

    h, w = args.imgsz
    out = args.out or args.weights.with_name(f"garbagewatch-{h}x{w}.onnx")
    export_onnx(args.weights, out, (h, w))
    print(f"wrote {out} input {h}x{w} name {out.stem} sha256 {_sha256(out)}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    if not (_model_ok(args.model) and _split_ok(args.data)):
        return 2
    from models.evaluate import evaluate

    report = evaluate(args.model, args.data, letterbox_16x9=args.letterbox_16x9, degrade=args.degrade,
                      limit=args.limit, threads=args.threads, speed_runs=args.speed_runs)
    print("\n".join(report.lines()))
    return 0


def _synthetic_recall(args: argparse.Namespace) -> int:
    if not _model_ok(args.model):
        return 2
    from models.synthetic_recall import synthetic_recall
    from models.training import SYNTHETIC_TRAIN_SEED_LIMIT

    first = SYNTHETIC_TRAIN_SEED_LIMIT if args.first_seed is None else args.first_seed
    if first < SYNTHETIC_TRAIN_SEED_LIMIT:
        print(f"--first-seed {first} may have been trained on: use seeds >= {SYNTHETIC_TRAIN_SEED_LIMIT}")
        return 2
    result = synthetic_recall(args.model, args.images, first_seed=first, conf=args.conf, threads=args.threads)
    print("\n".join(result.lines()))
    return 0


def _quantize(args: argparse.Namespace) -> int:
    if not (_model_ok(args.model) and _split_ok(args.data)):
        return 2
    if not _split_ok(args.calibration, "calibration split", "--calibration"):
        return 2
    if importlib.util.find_spec("onnx") is None:
        print("the onnx package is needed to quantise: pip install onnx (it is in the dev extra)")
        return 2
    import cv2
    import numpy as np

    from edge.detect import default_intra_op_threads
    from models.evaluate import evaluate
    from models.quantize import calibration_images, quantize_int8
    from models.speed import measure

    out: Path = args.out
    # Written beside the target first: a candidate that misses the bar must not replace (or
    # remove) an int8 file already shipped there.
    candidate = out.with_name(out.stem + ".candidate.onnx")
    cal = calibration_images(args.calibration, args.calibration_images)
    quantize_int8(args.model, candidate, cal, keep_head_float=not args.quantize_head,
                  keep_stem_float=args.float_stem, reduce_range=not args.full_range)
    print(f"quantised {args.model.name} (static QDQ int8, {len(cal)} calibration images from {args.calibration})")
    try:
        fp32 = evaluate(args.model, args.data, limit=args.limit, threads=args.threads, speed_runs=0)
        int8 = evaluate(candidate, args.data, limit=args.limit, threads=args.threads, speed_runs=0)
        frames = [np.asarray(cv2.imread(str(p), cv2.IMREAD_COLOR), np.uint8)
                  for p in sorted((args.data / "images").glob("*.jpg"))[:10]]
        threads = args.threads or default_intra_op_threads()
        sp32, sp8 = measure([args.model, candidate], frames, threads=threads, runs=30)
    except BaseException:
        candidate.unlink(missing_ok=True)
        raise
    for name, rep in (("fp32", fp32), ("int8", int8)):
        aps = " ".join(f"{k} {v:.3f}" for k, v in rep.per_class.items())
        print(f"{name} AP50 {aps} exposed_garbage {rep.exposed_ap50:.3f}")
    for name, sp in (("fp32", sp32), ("int8", sp8)):
        print(f"{name} speed {sp.model_only_ips:.1f} images/s model only, "
              f"{sp.with_pre_post_ips:.1f} images/s with pre/post-processing "
              f"({threads} intra-op thread{'s' if threads > 1 else ''}, median of {sp.runs})")
    drop = fp32.exposed_ap50 - int8.exposed_ap50
    ok = drop <= INT8_MAX_AP50_DROP and sp8.with_pre_post_ips > sp32.with_pre_post_ips
    print(f"verdict: exposed_garbage AP50 {-drop:+.3f}, speed x{sp8.with_pre_post_ips / sp32.with_pre_post_ips:.2f}: "
          f"{'keep' if ok else 'do not ship'} (bar: AP50 drop <= {INT8_MAX_AP50_DROP} and faster)")
    if ok or args.keep:
        candidate.replace(out)
        print(f"wrote {out} name {out.stem} sha256 {_sha256(out)}")
    else:
        candidate.unlink()
        print(f"not written: {out} is left as it was")
    return 0


def _errors(args: argparse.Namespace) -> int:
    if not (_model_ok(args.model) and _split_ok(args.data)):
        return 2
    from models.errors import analyse_errors

    report = analyse_errors(args.model, args.data, conf=args.conf, limit=args.limit, threads=args.threads)
    print("\n".join(report.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
