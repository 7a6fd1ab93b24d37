"""The two pipelines the edge benches compare, each run alone in a child process that reports to a status file.

    python3 -m bench._pipelines ours  --spec SPEC.json --status STATUS.json
    python3 -m bench._pipelines naive --spec SPEC.json --status STATUS.json

- `ours`: edge.daemon.EdgeDaemon as `garbagewatch edge run` starts it, on a config whose cameras are
  the spec's URLs (defaults everywhere else: 1 detector thread, 10 s pre-roll, 2 s analyses).
- `naive`: what people write first: per camera a thread with cv2.VideoCapture(url) reading every
  frame (cap.read() decodes and converts each to BGR) and running the same ONNX detector
  (edge.detect.OnnxDetector, shared) on one frame every 2 s.

The child writes STATUS.json (atomically, once a second): per camera the frames (or packets) it
received, analyses completed, and analyses that finished more than one interval after their frame
arrived ("overdue"); for `ours` also the detector worker's `late` count. The parent reads the
child's CPU and memory from /proc; this file only observes, it changes nothing in the pipelines.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CameraCounts", "PipelineProcess", "Spec", "main"]

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CameraCounts:
    frames_in: int = 0  # packets (ours) or decoded frames (naive) received
    analyses: int = 0
    overdue: int = 0  # analyses finished more than one interval after their frame arrived
    lag_sum: float = 0.0  # seconds from a frame's arrival to the end of its analysis, summed

    def analysed(self, arrived_mono: float, interval: float) -> None:
        lag = time.monotonic() - arrived_mono
        self.analyses += 1
        self.lag_sum += lag
        if lag > interval:
            self.overdue += 1


@dataclass(frozen=True)
class Spec:
    urls: list[str]
    workdir: str
    interval: float = 2.0
    broker_port: int = 0  # ours only: the private Mosquitto the uplink connects to
    preroll_seconds: float = 10.0
    model: str = ""  # the detector file; "" the daemon's default (the shipped model)

    @classmethod
    def load(cls, path: Path) -> Spec:
        return cls(**json.loads(path.read_text()))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))


@dataclass
class _Status:
    cameras: dict[str, CameraCounts] = field(default_factory=dict)
    extra: Callable[[], dict[str, Any]] = lambda: {}

    def write(self, path: Path) -> None:
        doc = {"mono": time.monotonic(), "cameras": {k: asdict(v) for k, v in self.cameras.items()}, **self.extra()}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)


_TICKS = os.sysconf("SC_CLK_TCK")


def _thread_cpu(prefixes: dict[str, str]) -> dict[str, float]:
    """CPU seconds of this process's live threads, summed per thread-name prefix (-> key)."""
    out = dict.fromkeys(prefixes.values(), 0.0)
    for thread in threading.enumerate():
        key = next((k for p, k in prefixes.items() if thread.name.startswith(p)), None)
        if key is None or thread.native_id is None:
            continue
        try:
            text = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:
            continue  # it has just ended
        fields = text[text.rindex(")") + 2 :].split()
        out[key] += (int(fields[11]) + int(fields[12])) / _TICKS
    return out


def _run_ours(spec: Spec, status: _Status, stop: threading.Event) -> Callable[[], None]:
    import wire
    from edge.config import BrokerConfig, CameraConfig, DetectorConfig, EdgeConfig, EvidenceConfig, SpoolConfig
    from edge.daemon import EdgeDaemon
    from edge.detect import Detections
    from edge.ingest import AnalysisFrame

    work = Path(spec.workdir)
    key_file = work / "device.key"
    if not key_file.exists():
        wire.DeviceKey.generate().save(key_file, work / "device.pub")
    config = EdgeConfig(
        device_id="bench-box", site="bench", key_file=key_file,
        analysis_interval_seconds=spec.interval,
        broker=BrokerConfig(host="127.0.0.1", port=spec.broker_port),
        spool=SpoolConfig(dir=work / "spool"),
        evidence=EvidenceConfig(preroll_seconds=spec.preroll_seconds),
        detector=DetectorConfig(model=Path(spec.model) if spec.model else None),
        cameras=[CameraConfig(id=f"cam{i:03d}", url=url) for i, url in enumerate(spec.urls)],
    )
    daemon = EdgeDaemon(config)
    for cam_id, pipeline in daemon.pipelines.items():
        counts = status.cameras[cam_id] = CameraCounts()
        original = pipeline.on_detections

        def observed(frame: AnalysisFrame, detections: Detections, _orig: Any = original,
                     _counts: CameraCounts = counts) -> Any:
            _counts.analysed(frame.mono, spec.interval)
            return _orig(frame, detections)

        pipeline.on_detections = observed  # type: ignore[method-assign]

    def extra() -> dict[str, Any]:
        for cam_id, stream in daemon.streams.items():
            status.cameras[cam_id].frames_in = stream.stats.packets
        w = daemon.worker
        return {"late": w.late, "worker_analyses": w.analyses, "failures": w.failures,
                "busy_seconds": w.busy_seconds,
                "events": sum(p.events["confirmed"] for p in daemon.pipelines.values()),
                "ring_mb": sum(p.ring.nbytes for p in daemon.pipelines.values()) / 1e6,
                "ring_span_min": min((p.ring.span_seconds() for p in daemon.pipelines.values()), default=0.0),
                **_thread_cpu({"detector": "cpu_detector", "camera-": "cpu_cameras"})}

    status.extra = extra
    daemon.start()
    return lambda: daemon.stop(drain_timeout=1.0)


def _naive_camera(url: str, detect: Callable[[Any], object], interval: float, counts: CameraCounts,
                  stop: threading.Event) -> None:
    import cv2

    while not stop.is_set():
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
        last = -1e18
        while not stop.is_set():
            ok, frame = cap.read()
            if not ok:
                break
            now = time.monotonic()
            counts.frames_in += 1
            if now - last >= interval:
                last = now
                detect(frame)
                counts.analysed(now, interval)
        cap.release()
        stop.wait(1.0)


def _run_naive(spec: Spec, status: _Status, stop: threading.Event) -> Callable[[], None]:
    # What people set so OpenCV reads RTSP over TCP like the daemon does (its default is UDP).
    os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
    from edge.config import default_model_path
    from edge.detect import OnnxDetector

    detector = OnnxDetector(spec.model or default_model_path(), conf_default=0.35)
    threads = []
    for i, url in enumerate(spec.urls):
        counts = status.cameras[f"cam{i:03d}"] = CameraCounts()
        t = threading.Thread(target=_naive_camera, args=(url, detector.detect, spec.interval, counts, stop),
                             name=f"naive-{i}", daemon=True)
        t.start()
        threads.append(t)

    def join() -> None:
        for t in threads:
            t.join(5.0)

    return join


class PipelineProcess:
    """Parent side: one pipeline child (`ours` or `naive`) and its status file."""

    def __init__(self, pipeline: str, spec: Spec) -> None:
        self.pipeline, self.spec = pipeline, spec
        work = Path(spec.workdir)
        work.mkdir(parents=True, exist_ok=True)
        self.spec_path, self.status_path, self.log = work / "spec.json", work / "status.json", work / "child.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PipelineProcess:
        self.spec.save(self.spec_path)
        self.status_path.unlink(missing_ok=True)
        path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        env = {**os.environ, "PYTHONPATH": path}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench._pipelines", self.pipeline, "--spec", str(self.spec_path),
                 "--status", str(self.status_path)],
                cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def status(self) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = json.loads(self.status_path.read_text())
            return doc
        except (OSError, ValueError):
            return None

    def log_tail(self, chars: int = 600) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench._pipelines")
    ap.add_argument("pipeline", choices=["ours", "naive"])
    ap.add_argument("--spec", type=Path, required=True)
    ap.add_argument("--status", type=Path, required=True)
    args = ap.parse_args(argv)
    spec = Spec.load(args.spec)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    status = _Status()
    parent = os.getppid()
    finish = (_run_ours if args.pipeline == "ours" else _run_naive)(spec, status, stop)
    while not stop.wait(1.0):
        if os.getppid() != parent:  # the bench died without stopping us: do not run on
            break
        status.write(args.status)
    stop.set()
    finish()
    return 0


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
