"""Detector speed on this CPU: the shipped model beside a baseline, ratios first.

    python3 -m bench.detector --baseline /tmp/mdl/garbagewatch-640x640.onnx

Measures images per second of each model at its own input size, with 1 and 2 intra-op
threads, two ways (models.speed): the model alone (session.run on a prepared tensor) and with
the edge's pre/post-processing (OnnxDetector.detect on a 1920x1080 camera frame: letterbox,
run, decode, NMS). Frames are synthetic street scenes (models.synthetic, unseen seeds), so the
bench needs no dataset. Models are interleaved run by run and medians reported: the machine is
shared, and a burst of load elsewhere then hits every model alike.

The baseline is the naive choice, the same weights exported at 640x640 (a 16:9 frame then fills
only 360 of its 640 rows); it is not shipped: make it with
`garbagewatch model export --weights best.pt --imgsz 640x640`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.cli import DEFAULT_MODEL, INT8_MODEL
from models.speed import Speed, measure
from models.synthetic import render_training_image
from models.training import SYNTHETIC_TRAIN_SEED_LIMIT


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def _cpu_ticks() -> tuple[float, float, float]:
    """(busy, steal, total) seconds of all CPUs since boot, from /proc/stat; zeros where there is none.

    Steal is time the hypervisor gave our virtual CPUs to someone else: contention we cannot see
    in our own process list.
    """
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0, 0.0
    fields += [0.0] * (8 - len(fields))
    hz = float(os.sysconf("SC_CLK_TCK"))
    idle, steal = fields[3] + fields[4], fields[7]  # idle + iowait; steal
    return (sum(fields) - idle - steal) / hz, steal / hz, sum(fields) / hz


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _frames(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    return [render_training_image(SYNTHETIC_TRAIN_SEED_LIMIT + 500_000 + i, size).image for i in range(count)]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.detector", description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--int8", type=Path, default=INT8_MODEL, help="measured too when the file exists")
    ap.add_argument("--baseline", type=Path, help="e.g. the 640x640 export of the same weights")
    ap.add_argument("--alone", action="store_true", help="only the shipped fp32 model, not interleaved")
    ap.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--frames", type=int, default=5)
    args = ap.parse_args(argv)

    models = [("shipped fp32", args.model)]
    if args.alone:
        args.baseline = None
    elif args.int8.is_file():
        models.append(("shipped int8", args.int8))
    if args.baseline is not None:
        if not args.baseline.is_file():
            print(f"baseline {args.baseline} does not exist (see the module docstring to make it)")
            return 2
        models.append(("baseline fp32", args.baseline))
    frames = _frames(args.frames, (1920, 1080))
    load_before = _load()
    busy0, steal0, total0 = _cpu_ticks()
    own0 = _own_cpu()
    results: dict[int, list[Speed]] = {}
    for threads in (int(t) for t in args.threads.split(",")):
        results[threads] = measure([p for _, p in models], frames, threads=threads, runs=args.runs)
    busy1, steal1, total1 = _cpu_ticks()
    cores = os.cpu_count() or 1
    wall = (total1 - total0) / cores
    others = max(0.0, (busy1 - busy0) - (_own_cpu() - own0)) / wall if wall > 0 else float("nan")
    print(f"# {_cpu_name()}, {cores} cores, onnxruntime {ort.__version__}, "
          f"python {platform.python_version()}; load average before {load_before}, after {_load()}")
    # The machine is shared: how much CPU other processes took while we measured says how far to
    # trust the absolute figures (ratios between interleaved models suffer much less).
    stolen = (steal1 - steal0) / wall if wall > 0 else float("nan")
    print(f"# other processes used {others:.2f} of {cores} cores on average during the run, "
          f"the hypervisor took {stolen:.2f}")
    print(f"# {args.runs} timed runs per model and setting (after 3 warm-up), medians, 1920x1080 frames")
    labels = [label for label, _ in models]
    base = labels.index("baseline fp32") if "baseline fp32" in labels else None
    for threads, speeds in results.items():
        for i, label in enumerate(labels):
            if base is not None and i != base:
                b = speeds[base]
                print(f"ratio {label} / baseline, {threads} thread(s): "
                      f"model only x{speeds[i].model_only_ips / b.model_only_ips:.2f}, "
                      f"with pre/post x{speeds[i].with_pre_post_ips / b.with_pre_post_ips:.2f}")
        if "shipped int8" in labels:
            f32, i8 = speeds[labels.index("shipped fp32")], speeds[labels.index("shipped int8")]
            print(f"ratio int8 / fp32, {threads} thread(s): model only x{i8.model_only_ips / f32.model_only_ips:.2f}, "
                  f"with pre/post x{i8.with_pre_post_ips / f32.with_pre_post_ips:.2f}")
    print()
    print("| model | file | input HxW | threads | model only, images/s | with pre/post, images/s |")
    print("|---|---|---|---|---|---|")
    for threads, speeds in results.items():
        for label, sp in zip(labels, speeds, strict=True):
            print(f"| {label} | {sp.model} | {sp.input_hw[0]}x{sp.input_hw[1]} | {threads} | "
                  f"{sp.model_only_ips:.1f} | {sp.with_pre_post_ips:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
