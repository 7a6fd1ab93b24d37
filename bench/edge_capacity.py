"""Cameras per edge box: the most 1080p cameras analysed every 2 s on time within 80% of this machine's CPU.

    python3 -m bench.edge_capacity            # ~15-20 min on 2 cores; last line: cameras OURS baseline BASE ratio R

Cameras are real RTSP streams served locally (garbagewatch.devtools.rtsp_server, sent as stored,
looping): 1920x1080, 25 fps, H.264 at 4 Mbit/s, a keyframe every 2 s (bench/_common.py makes the
clip once and caches it in bench/.cache). For each camera count tried, the pipeline runs alone in
a child process (bench/_pipelines.py) and is measured over a window after warm-up. A count passes when

- the child's own CPU (utime + stime from /proc, all its threads; not the RTSP servers') averages
  at most --cpu-limit cores (default 80% of the cores);
- every camera was analysed at least 90% of window / interval times;
- at most 2% of analyses were overdue (finished more than one interval after their frame arrived)
  or dropped as late by the daemon's detector queue;
- every camera's stream was read at >= 90% of its 25 fps (a reader that falls behind the stream
  would otherwise lag without limit).

Both pipelines are searched with the same rule: double from --start until a count fails, then
bisect; a failed count is retried once. The machine is shared: before each count the bench waits
(at most --quiet-wait s) until the rest of the machine uses at most --quiet-cores, and each line
reports what the rest used during the window ("others"). Pipelines: `ours` is the edge
daemon (edge.daemon.EdgeDaemon, keyframe-only decoding when keyframes come at least every 2 s);
`baseline` is the naive OpenCV loop (bench/_pipelines.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._common import (
    CLIP_FPS,
    CameraFarm,
    CpuSample,
    camera_clip,
    cpu_sample,
    machine_cpu,
    machine_line,
    peak_rss_mb,
    wait_for_quiet,
)
from bench._pipelines import PipelineProcess, Spec

__all__ = ["StepResult", "main", "measure_step", "search"]

MIN_ANALYSES_RATIO = 0.9
MAX_OVERDUE_FRACTION = 0.02
MIN_FRAMES_RATIO = 0.9


@dataclass(frozen=True)
class StepResult:
    pipeline: str
    cameras: int
    passed: bool
    why: str  # what failed, or "ok"
    cores: float  # the child's CPU over the window
    server_cores: float  # the RTSP servers' CPU over the window, for information
    other_cores: float  # everything else on the machine over the window: the neighbours' load
    analyses_ratio: float  # the worst camera's analyses / expected
    frames_ratio: float  # the worst camera's frames received / expected
    overdue: int  # overdue + late analyses in the window
    analyses: int
    lag_mean: float  # seconds from a frame's arrival to the end of its analysis
    peak_rss_mb: float
    load: float
    breakdown: str = ""  # ours: CPU per analysis by thread

    @property
    def per_camera_ms(self) -> float:
        """CPU milliseconds per second per camera: what one camera costs, whatever the neighbours do."""
        return 1000 * self.cores / self.cameras

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (f"{self.pipeline:8s} {self.cameras:3d} cameras: {verdict} cpu {self.cores:.2f} cores "
                f"({self.per_camera_ms:.0f} ms/s a camera; servers {self.server_cores:.2f}, "
                f"others {self.other_cores:.2f}), "
                f"analyses min {self.analyses_ratio:.0%}, "
                f"stream read min {self.frames_ratio:.0%}, overdue/late {self.overdue}/{self.analyses}, "
                f"lag {self.lag_mean:.2f} s, peak rss {self.peak_rss_mb:.0f} MB, load {self.load:.1f}"
                f"{'' if self.passed else ' -- ' + self.why}{self.breakdown}")


def _wait_warm(child: PipelineProcess, cameras: int, timeout: float, settle: float) -> str | None:
    """Wait until every camera has been analysed twice, then `settle` s more; None when warm, else why not.

    `timeout` counts from the child's first status: importing onnxruntime and OpenCV is not the
    pipeline's start-up, and takes long on a busy machine.
    """
    started = time.monotonic()
    while child.status() is None:
        if not child.running():
            return f"child exited: {child.log_tail()}"
        if time.monotonic() - started > 180:
            return "the child wrote no status within 180 s"
        time.sleep(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.running():
            return f"child exited: {child.log_tail()}"
        st = child.status()
        if st and len(st["cameras"]) == cameras and all(c["analyses"] >= 2 for c in st["cameras"].values()):
            time.sleep(settle)
            return None
        time.sleep(0.5)
    st = child.status() or {"cameras": {}}
    slow = sum(1 for c in st["cameras"].values() if c["analyses"] < 2)
    return f"{slow or cameras} camera(s) not analysed twice within {timeout:.0f} s"


def measure_step(pipeline: str, cameras: int, clip: Path, workdir: Path, *, interval: float = 2.0,
                 window: float = 30.0, cpu_limit: float = 1.6, warm_timeout: float = 45.0,
                 settle: float = 4.0, model: str = "") -> StepResult:
    """Run `pipeline` ('ours' or 'naive') on `cameras` local cameras and judge one window."""
    from garbagewatch.devtools.mosquitto import Mosquitto

    def failed(why: str, cores: float = 0.0) -> StepResult:
        return StepResult(pipeline, cameras, False, why, cores, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0, 0.0,
                          os.getloadavg()[0])

    with CameraFarm(workdir / "cameras", clip, cameras) as farm, \
            Mosquitto(workdir / "broker", persistence=False) as broker:
        child = PipelineProcess(pipeline, Spec(urls=list(farm), workdir=str(workdir / pipeline),
                                               interval=interval, broker_port=broker.port, model=model)).start()
        try:
            why = _wait_warm(child, cameras, warm_timeout, settle)
            if why is not None:
                return failed(why)
            s0, c0, m0 = child.status(), cpu_sample(child.pid), machine_cpu()
            srv0 = [cpu_sample(p) for p in farm.pids]
            time.sleep(window)
            s1, c1, m1 = child.status(), cpu_sample(child.pid), machine_cpu()
            srv1 = [cpu_sample(p) for p in farm.pids]
            rss = peak_rss_mb(child.pid)
        finally:
            child.stop()
    assert s0 is not None and s1 is not None
    result = _judge(pipeline, cameras, s0, s1, c0, c1, srv0, srv1, rss, interval=interval, cpu_limit=cpu_limit)
    others = max(0.0, m1.cores_since(m0) - result.cores - result.server_cores)
    return dataclasses.replace(result, other_cores=others, breakdown=_breakdown(s0, s1, c1.cpu_s - c0.cpu_s))


def _breakdown(s0: dict[str, Any], s1: dict[str, Any], cpu_s: float) -> str:
    """Where ours spends its CPU, per analysis: detector threads, camera threads, the rest."""
    if "cpu_detector" not in s1:
        return ""
    n = max(1, s1["worker_analyses"] - s0["worker_analyses"])
    detector = s1["cpu_detector"] - s0["cpu_detector"]
    cameras = s1["cpu_cameras"] - s0["cpu_cameras"]
    rest = cpu_s - detector - cameras
    return (f"; CPU per analysis: detector threads {1000 * detector / n:.0f} ms, camera threads (RTSP, ring, "
            f"decode, BGR) {1000 * cameras / n:.0f} ms, decoder slice threads and the rest {1000 * rest / n:.0f} ms")


def _judge(pipeline: str, cameras: int, s0: dict[str, object], s1: dict[str, object], c0: CpuSample,
           c1: CpuSample, srv0: Sequence[CpuSample], srv1: Sequence[CpuSample], rss: float, *,
           interval: float, cpu_limit: float) -> StepResult:
    span = float(s1["mono"]) - float(s0["mono"])  # type: ignore[arg-type]
    cams0, cams1 = s0["cameras"], s1["cameras"]
    assert isinstance(cams0, dict) and isinstance(cams1, dict)
    analyses = [cams1[k]["analyses"] - cams0[k]["analyses"] for k in cams1]
    frames = [cams1[k]["frames_in"] - cams0[k]["frames_in"] for k in cams1]
    overdue = sum(cams1[k]["overdue"] - cams0[k]["overdue"] for k in cams1)
    lag = sum(cams1[k]["lag_sum"] - cams0[k]["lag_sum"] for k in cams1)
    overdue += int(s1.get("late", 0)) - int(s0.get("late", 0))  # type: ignore[call-overload]
    analyses_ratio = min(analyses) / (span / interval)
    frames_ratio = min(frames) / (span * CLIP_FPS)
    cores = c1.cores_since(c0)
    server = sum(b.cores_since(a) for a, b in zip(srv0, srv1, strict=True))
    reasons = []
    if cores > cpu_limit:
        reasons.append(f"cpu {cores:.2f} > {cpu_limit:.2f} cores")
    if analyses_ratio < MIN_ANALYSES_RATIO:
        reasons.append(f"a camera got {analyses_ratio:.0%} of its analyses")
    if overdue > max(1, MAX_OVERDUE_FRACTION * sum(analyses)):
        reasons.append(f"{overdue} analyses overdue or late")
    if frames_ratio < MIN_FRAMES_RATIO:
        reasons.append(f"a stream was read at {frames_ratio:.0%} of its rate")
    return StepResult(pipeline, cameras, not reasons, "; ".join(reasons) or "ok", cores, server, 0.0, analyses_ratio,
                      frames_ratio, overdue, sum(analyses), lag / max(1, sum(analyses)), rss,
                      os.getloadavg()[0])


def search(try_count: Callable[[int], bool], start: int, maximum: int, deadline: float) -> int:
    """The largest count that passes: double from `start` until one fails, then bisect (to within 1)."""
    good, bad = 0, maximum + 1
    n = start
    while n <= maximum and time.monotonic() < deadline:
        if try_count(n):
            good = n
            n *= 2
        else:
            bad = n
            break
    else:
        return good
    while bad - good > 1 and time.monotonic() < deadline:
        mid = (good + bad) // 2
        if try_count(mid):
            good = mid
        else:
            bad = mid
    return good


def _default_model() -> str:
    from edge.config import default_model_path
    from edge.detect.cpu_features import int8_support

    return f"{default_model_path().name} (the daemon's default, variant auto: {int8_support().reason})"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.edge_capacity", description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-limit", type=float, default=0.8 * (os.cpu_count() or 2), help="cores (default 80%%)")
    ap.add_argument("--window", type=float, default=30.0, help="seconds measured per camera count")
    ap.add_argument("--interval", type=float, default=2.0, help="analysis interval, seconds")
    ap.add_argument("--start", type=int, default=8, help="first count tried by ours (baseline: a quarter)")
    ap.add_argument("--max", type=int, default=64)
    ap.add_argument("--minutes", type=float, default=20.0, help="time budget of the whole run")
    ap.add_argument("--only", choices=["ours", "naive"], help="search one pipeline only")
    ap.add_argument("--retries", type=int, default=1, help="reruns of a failed count")
    ap.add_argument("--model", type=Path, help="detector for both pipelines (default: the shipped model)")
    ap.add_argument("--quiet-cores", type=float, default=0.3,
                    help="before each count, wait until the rest of the machine uses at most this many cores")
    ap.add_argument("--quiet-wait", type=float, default=120.0, help="... but at most this many seconds")
    ap.add_argument("--ours", help="comma-separated camera counts to try instead of searching, e.g. 16,24,32")
    ap.add_argument("--baseline", help="the same for the baseline, e.g. 4,6,8")
    args = ap.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the RTSP servers, the broker and the child are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    print(f"# {machine_line()}", flush=True)
    clip = camera_clip()
    print(f"# clip {clip.name}; window {args.window:.0f} s; cpu limit {args.cpu_limit:.2f} cores; "
          f"model {args.model or _default_model()}", flush=True)
    start_all = time.monotonic()
    best: dict[str, int] = {}
    plan = [("ours", args.start, 0.6, args.ours), ("naive", max(1, args.start // 4), 1.0, args.baseline)]
    for pipeline, first, share, counts in plan:
        if args.only and args.only != pipeline:
            continue
        left = args.minutes * 60 - (time.monotonic() - start_all)
        deadline = time.monotonic() + left * share

        passed: list[StepResult] = []

        def try_count(n: int, pipeline: str = pipeline, passed: list[StepResult] = passed) -> bool:
            attempts, disturbed = 0, 0
            # A failed count is tried again: once in any case, and up to twice more when neighbours
            # used more than twice --quiet-cores during the failed window.
            while attempts <= args.retries + min(disturbed, 2):
                wait_for_quiet(args.quiet_cores, args.quiet_wait)
                with tempfile.TemporaryDirectory(prefix=f"gw-capacity-{pipeline}-") as tmp:
                    result = measure_step(pipeline, n, clip, Path(tmp), interval=args.interval,
                                          window=args.window, cpu_limit=args.cpu_limit,
                                          model=str(args.model or ""))
                print(result.line() + (f" (retry {attempts})" if attempts else ""), flush=True)
                if result.passed:
                    passed.append(result)
                    return True
                attempts += 1
                disturbed += result.other_cores > 2 * args.quiet_cores
            return False

        if counts:
            best[pipeline] = max([n for n in map(int, counts.split(",")) if try_count(n)], default=0)
        else:
            best[pipeline] = search(try_count, first, args.max, deadline)
        if passed:  # what the CPU limit alone would allow, at the largest count that passed
            top = max(passed, key=lambda r: r.cameras)
            print(f"# {pipeline}: {top.per_camera_ms:.0f} ms of CPU a second per camera at {top.cameras} cameras: "
                  f"{args.cpu_limit:.2f} cores would carry {1000 * args.cpu_limit / top.per_camera_ms:.0f}",
                  flush=True)
        print(f"# {pipeline}: {best[pipeline]} cameras ({(time.monotonic() - start_all) / 60:.1f} min so far)",
              flush=True)
    ours, base = best.get("ours", 0), best.get("naive", 0)
    ratio = f"{ours / base:.2f}" if base else ("inf" if ours else "n/a")
    print(f"cameras {ours} baseline {base} ratio {ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
