"""One resumable training run on a lent GPU machine, copying results out as it goes.

Run from the repository root on the GPU machine (see models/README.md, "Training on a GPU"):

    python3 -m models.train_gpu --data /tmp/ds --out "$OUT" --hours 0.13

It assembles the dataset with models.training.build_dataset, trains with the recipe, copies
last.pt and results.csv to --out every few epochs (so a run cut short still returns its
weights), and at the end exports ONNX at the candidate input sizes.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from models.training import Recipe, build_dataset, export_onnx, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="dataset root with train/ and valid/")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gw-train"))
    ap.add_argument("--hours", type=float, default=0.13)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=14)
    ap.add_argument("--model", default="yolo11n.yaml")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--export", default="640x640,384x640,480x480", help="comma-separated HxW")
    ap.add_argument("--device", default="0")
    ap.add_argument("--synthetic", type=int, default=Recipe.synthetic_images)
    ap.add_argument("--epochs", type=int, default=Recipe.epochs)
    args = ap.parse_args()
    t0 = time.time()
    recipe = Recipe(model_cfg=args.model, imgsz=args.imgsz, batch=args.batch, epochs=args.epochs,
                    time_hours=args.hours or None, synthetic_images=args.synthetic)
    data_yaml = build_dataset(args.data, args.work / "dataset", recipe, workers=min(16, args.workers + 2))
    print(f"dataset ready in {time.time() - t0:.0f} s", flush=True)
    run_dir = args.work / "run"
    args.out.mkdir(parents=True, exist_ok=True)

    def copy_out(trainer: object) -> None:
        epoch = int(getattr(trainer, "epoch", 0))
        csv = run_dir / "results.csv"
        if csv.exists():
            shutil.copy2(csv, args.out / "results.csv")
        if epoch % 5 == 4 and (run_dir / "weights" / "last.pt").exists():
            shutil.copy2(run_dir / "weights" / "last.pt", args.out / "last.pt")

    best = train(data_yaml, run_dir, recipe, device=args.device, workers=args.workers,
                 callbacks=[("on_fit_epoch_end", copy_out)])
    for name in ("best.pt", "last.pt"):
        if (run_dir / "weights" / name).exists():
            shutil.copy2(run_dir / "weights" / name, args.out / name)
    if (run_dir / "results.csv").exists():
        shutil.copy2(run_dir / "results.csv", args.out / "results.csv")
    print(f"trained in {time.time() - t0:.0f} s", flush=True)
    for size in args.export.split(","):
        h, w = (int(v) for v in size.split("x"))
        try:
            export_onnx(best, args.out / f"garbagewatch-{h}x{w}.onnx", (h, w))
        except Exception as exc:  # the weights are out already; export can be redone on the CPU
            print(f"export {size} failed: {exc!r}", flush=True)
    print(f"done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
