"""Peak memory of the edge daemon with 16 cameras at 4 Mbit/s and 10 s pre-roll each, beside the naive pipeline.

    python3 -m bench.edge_memory         # ~3 min; last line: peak_rss OURS MB baseline BASE MB ratio R

Each pipeline runs alone in a child process (bench/_pipelines.py) on 16 local RTSP cameras
(1080p, 25 fps, H.264 at 4 Mbit/s, a keyframe every 2 s; bench/_common.py). Ours is the edge
daemon with its default evidence settings (10 s pre-roll, 5 s post-roll: every camera's packet
ring buffer holds about 17 s); it runs until every ring buffer is full and then --hold seconds
more. The figure is the child's VmHWM (/proc/PID/status): the most resident memory it ever had,
start-up included, in MB (10**6 bytes). The baseline is the naive OpenCV loop (cv2.VideoCapture
reading every frame, the same detector every 2 s) over the same time; it keeps no pre-roll at
all, so it is a floor for "cameras + detector", not a like-for-like evidence pipeline. For scale,
the line after it computes what a pre-roll of decoded frames would take.
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench._common import (
    CLIP_FPS,
    CLIP_SIZE,
    CameraFarm,
    camera_clip,
    machine_line,
    peak_rss_mb,
    rss_mb,
    wait_for_quiet,
)
from bench._pipelines import PipelineProcess, Spec

__all__ = ["main", "measure"]


def measure(pipeline: str, cameras: int, clip: Path, workdir: Path, *, preroll: float, fill_timeout: float,
            hold: float) -> tuple[float, float, str]:
    """(peak RSS MB, median RSS MB over the hold, a note) of `pipeline` on `cameras` cameras."""
    from garbagewatch.devtools.mosquitto import Mosquitto

    with CameraFarm(workdir / "cameras", clip, cameras) as farm, \
            Mosquitto(workdir / "broker", persistence=False) as broker:
        child = PipelineProcess(pipeline, Spec(urls=list(farm), workdir=str(workdir / pipeline),
                                               broker_port=broker.port, preroll_seconds=preroll)).start()
        try:
            full = preroll + 5.0  # the daemon keeps pre-roll + post-roll (+ up to a GOP)
            deadline = time.monotonic() + fill_timeout
            note = "buffers full"
            while True:
                if not child.running():
                    raise RuntimeError(f"{pipeline} exited: {child.log_tail()}")
                st = child.status()
                if st and len(st["cameras"]) == cameras and all(c["analyses"] >= 1 for c in st["cameras"].values()) \
                        and (pipeline != "ours" or st.get("ring_span_min", 0.0) >= full):
                    break
                if time.monotonic() > deadline:
                    note = f"not full within {fill_timeout:.0f} s"
                    break
                time.sleep(0.5)
            samples = []
            end = time.monotonic() + hold
            while time.monotonic() < end:
                samples.append(rss_mb(child.pid))
                time.sleep(1.0)
            st = child.status() or {}
            if pipeline == "ours":
                note += (f"; ring buffers {st.get('ring_mb', 0.0):.0f} MB, "
                         f"shortest {st.get('ring_span_min', 0):.1f} s")
            peak = peak_rss_mb(child.pid)
        finally:
            child.stop()
    return peak, statistics.median(samples), note


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.edge_memory", description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=16)
    ap.add_argument("--preroll", type=float, default=10.0)
    ap.add_argument("--hold", type=float, default=30.0, help="seconds measured after the buffers are full")
    ap.add_argument("--fill-timeout", type=float, default=90.0)
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: stop the servers, broker and child
    print(f"# {machine_line()}", flush=True)
    clip = camera_clip()
    results = {}
    for pipeline in ("ours", "naive"):
        wait_for_quiet()
        with tempfile.TemporaryDirectory(prefix=f"gw-memory-{pipeline}-") as tmp:
            peak, steady, note = measure(pipeline, args.cameras, clip, Path(tmp), preroll=args.preroll,
                                         fill_timeout=args.fill_timeout, hold=args.hold)
        results[pipeline] = peak
        print(f"{pipeline:8s} {args.cameras} cameras: peak rss {peak:.0f} MB, rss over {args.hold:.0f} s "
              f"median {steady:.0f} MB ({note})", flush=True)
    w, h = CLIP_SIZE
    decoded = args.cameras * (args.preroll + 5) * CLIP_FPS * w * h * 3 / 1e6
    print(f"# for scale: the same pre-roll as decoded BGR frames would be {decoded:,.0f} MB", flush=True)
    ours, base = results["ours"], results["naive"]
    print(f"peak_rss {ours:.0f} MB baseline {base:.0f} MB ratio {base / ours:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
