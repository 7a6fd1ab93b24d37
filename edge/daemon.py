"""The edge daemon: every camera of one box, one detector worker, one spool, one uplink.

    cameras (one thread each) --AnalysisFrame--> detector worker --Detections--> CameraPipeline
        --signed bundle--> Spool --> Uplink (MQTT) --> central

One detector serves all cameras, from one thread per core its own threads leave: its queue holds at
most the newest frame per camera, so a slow detector makes analyses late (counted) instead of
making memory grow.
"""

from __future__ import annotations

import ctypes
import logging
import os
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import wire
from edge.camera_pipeline import CameraPipeline
from edge.config import EdgeConfig
from edge.detect import OnnxDetector, default_intra_op_threads
from edge.evidence import PacketRingBuffer
from edge.ingest import AnalysisFrame, CameraStream
from edge.spool import Spool
from edge.uplink import Uplink

log = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc malloc.h
MMAP_THRESHOLD_BYTES = 128 * 1024


def fix_malloc_mmap_threshold(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Serve every allocation over `threshold` with its own mmap, returned to the system when freed (glibc).

    glibc raises its mmap threshold to the size of any large block freed (up to 32 MiB). After the
    first decoded frame is freed, frames (3 MB of YUV, 6 MB of BGR, made and freed by every camera
    thread at every analysis) come from per-thread arenas, which keep what was freed: with 16
    cameras the daemon's peak was 538 MB instead of 467 (bench/edge_memory.py, the former with
    MALLOC_MMAP_THRESHOLD_=33554432, glibc's highest dynamic value). A fixed threshold costs a
    page-fault pass over each large block instead. MALLOC_MMAP_THRESHOLD_ in the environment wins.
    Returns whether the threshold was set.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        return False


class DetectorWorker:
    """Threads running the detector for all cameras: the newest frame per camera, first come first served.

    Several threads analyse different cameras side by side, so analyses can use every core the
    detector's own intra-op threads leave (one thread could not keep 16 cameras at 1080p on time on
    2 cores with 40% of the CPU still free: bench/edge_capacity.py). A camera's frames are never
    analysed at the same time, so each camera's results arrive in order.
    """

    def __init__(self, detector: OnnxDetector, deliver: Callable[[AnalysisFrame, object], None],
                 threads: int = 1) -> None:
        self.detector = detector
        self._deliver = deliver
        self._pending: OrderedDict[str, AnalysisFrame] = OrderedDict()
        self._busy: set[str] = set()  # cameras whose frame a thread is analysing
        self._cond = threading.Condition()
        self._stop = False
        self.analyses = 0
        self.late = 0  # a camera's frame replaced before it was analysed
        self.failures = 0
        self.busy_seconds = 0.0  # summed over the threads
        self._threads = [
            threading.Thread(target=self._run, name="detector" if threads == 1 else f"detector-{i}", daemon=True)
            for i in range(max(1, threads))
        ]

    def start(self) -> DetectorWorker:
        for thread in self._threads:
            thread.start()
        return self

    def submit(self, frame: AnalysisFrame) -> None:
        with self._cond:
            if frame.camera in self._pending:
                self.late += 1
                del self._pending[frame.camera]
            self._pending[frame.camera] = frame
            self._cond.notify()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def _take(self) -> AnalysisFrame | None:
        """The oldest pending frame of a camera no thread is analysing (the lock held)."""
        for camera, frame in self._pending.items():
            if camera not in self._busy:
                del self._pending[camera]
                self._busy.add(camera)
                return frame
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                frame = None
                while not self._stop and (frame := self._take()) is None:
                    self._cond.wait()
                if self._stop or frame is None:
                    return
            t0 = time.perf_counter()
            failed = False
            try:
                detections = self.detector.detect(frame.image, frame.size)
                self._deliver(frame, detections)
            except Exception:  # one bad frame never stops the worker
                failed = True
                log.exception("camera %s: analysis failed", frame.camera)
            with self._cond:
                self._busy.discard(frame.camera)
                self.busy_seconds += time.perf_counter() - t0
                self.failures += failed
                self.analyses += 1
                self._cond.notify()  # a frame of this camera may be waiting for it


def detector_threads(intra_op_threads: int | None) -> int:
    """How many detector threads: one per core the detector's intra-op threads leave, 1 to 4."""
    intra = intra_op_threads or default_intra_op_threads()
    return max(1, min(4, (os.cpu_count() or 1) // intra))


def tls_context(config: EdgeConfig) -> ssl.SSLContext | None:
    tls = config.broker.tls
    if tls is None:
        return None
    ctx = ssl.create_default_context(cafile=str(tls.ca))
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    return ctx


class EdgeDaemon:
    def __init__(self, config: EdgeConfig, *, version: str = "") -> None:
        self.config = config
        fix_malloc_mmap_threshold()
        self.key = wire.DeviceKey.load(config.key_file)
        det = config.detector
        self.detector = OnnxDetector(det.model_path, conf_default=det.confidence,
                                     per_class_conf=det.per_class_confidence, iou=det.iou,
                                     intra_op_threads=det.threads)
        self.model = wire.ModelRef(name=self.detector.info.name, sha256=self.detector.info.sha256)
        config.spool.dir.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(config.spool.dir, quota_bytes=config.spool.quota_mb * 1024 * 1024)
        self.uplink = Uplink(
            self.spool, device_id=config.device_id, host=config.broker.host, port=config.broker.port,
            client_id=f"gw-edge-{config.device_id}", tls=tls_context(config),
            session_expiry=config.broker.session_expiry_seconds, ack_timeout=config.broker.ack_timeout_seconds,
            keepalive=config.broker.keepalive, cameras=[c.id for c in config.cameras], version=version,
        )
        self.pipelines: dict[str, CameraPipeline] = {}
        self.streams: dict[str, CameraStream] = {}
        self.worker = DetectorWorker(self.detector, self._deliver, threads=detector_threads(det.threads))
        ev, st = config.evidence, config.stream
        for cam in config.cameras:
            ring = PacketRingBuffer(preroll_seconds=ev.preroll_seconds + ev.postroll_seconds + 2,
                                    max_bytes=ev.max_buffer_mb * 1024 * 1024)
            pipeline = CameraPipeline(cam, config, self.key, self.spool, self.model, ring,
                                      on_spooled=self.uplink.wake)
            self.pipelines[cam.id] = pipeline
            self.streams[cam.id] = CameraStream(
                cam.id, cam.url, ring, self.worker.submit, pipeline.set_template,
                interval=config.analysis_interval_seconds, open_timeout=st.open_timeout_seconds,
                read_timeout=st.read_timeout_seconds, reconnect_max=st.reconnect_max_seconds,
                analysis_hw=self.detector.info.input_hw)
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick_loop, name="evidence", daemon=True)
        self._last_stats = 0.0

    def _deliver(self, frame: AnalysisFrame, detections: object) -> None:
        self.pipelines[frame.camera].on_detections(frame, detections)  # type: ignore[arg-type]

    def start(self) -> EdgeDaemon:
        self.uplink.start()
        self.worker.start()
        for stream in self.streams.values():
            stream.start()
        self._ticker.start()
        log.info("edge %s: %d camera(s), model %s sha256 %s", self.config.device_id, len(self.streams),
                 self.model.name, self.model.sha256[:12])
        return self

    def _tick_loop(self) -> None:
        while not self._stop.wait(0.25):
            for pipeline in self.pipelines.values():
                try:
                    pipeline.tick()
                except Exception:  # a failed bundle is logged; the others go on
                    log.exception("camera %s: spooling evidence failed", pipeline.camera.id)
            now = time.monotonic()
            if now - self._last_stats >= self.config.stats_interval_seconds:
                self._last_stats = now
                self.uplink.publish_stats(self.camera_stats())
                self.spool.purge_finished(time.time() - 7 * 86400)

    def camera_stats(self) -> dict[str, dict[str, float]]:
        now = time.time()
        return {cid: {**s.stats.as_dict(now), **self.pipelines[cid].events} for cid, s in self.streams.items()}

    def dead_threads(self) -> list[str]:
        """The daemon's threads that are not alive (none once started and healthy)."""
        alive = {"detector": self.worker.alive(), "evidence": self._ticker.is_alive()}
        alive.update({f"camera {cid}": s.alive() for cid, s in self.streams.items()})
        alive["uplink"] = self.uplink.alive()
        return [name for name, ok in alive.items() if not ok]

    def healthy(self) -> bool:
        """All threads alive: what the systemd watchdog is petted on."""
        return not self.dead_threads()

    def status_line(self) -> str:
        """One line for systemd's STATUS= (`systemctl status`): cameras, broker, spool, detector."""
        connected = sum(s.stats.connected for s in self.streams.values())
        spool = self.spool.stats()
        mb = 1024 * 1024
        return (f"cameras {connected}/{len(self.streams)} connected; "
                f"broker {'connected' if self.uplink.connected else 'disconnected'}; "
                f"spool {spool.pending_bundles} pending ({spool.used_bytes / mb:.0f}/{spool.quota_bytes // mb} MB"
                f"{f', {spool.dropped} dropped' if spool.dropped else ''}); "
                f"{self.worker.analyses} analyses, {self.worker.late} late, {self.worker.failures} failed")

    def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop reading, spool what is complete, give the uplink `drain_timeout` to deliver."""
        for stream in self.streams.values():
            stream.stop(timeout=0)  # ask them all first: they wind down together, not one by one
        for stream in self.streams.values():
            stream.stop()
        self.worker.stop()
        self._stop.set()
        self._ticker.join(5)
        for pipeline in self.pipelines.values():
            pipeline.tick(now_wall=float("inf"))
        self.uplink.stop(drain_timeout)
        self.spool.close()
