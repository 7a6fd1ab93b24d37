"""DetectorWorker with several threads: cameras analysed side by side, one camera's frames never at once, in order.

The detector here is a stand-in that records which camera each call is for and can hold a call
until the test lets it go (a deterministic hook); the worker's scheduling is what is tested.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from edge.daemon import DetectorWorker, detector_threads
from edge.ingest import AnalysisFrame

CAMERAS = ["a", "b", "c"]


class _HeldDetector:
    """detect() records the camera (pixel [0, 0, 0] is its index) and waits while the camera is held."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.active: dict[str, int] = dict.fromkeys(CAMERAS, 0)
        self.max_active_total = 0
        self.max_active_one_camera = 0
        self.release = {cam: threading.Event() for cam in CAMERAS}
        for event in self.release.values():
            event.set()

    def detect(self, image: np.ndarray, frame_size: tuple[int, int] | None = None) -> object:
        camera = CAMERAS[int(image[0, 0, 0])]
        with self.lock:
            self.started.append(camera)
            self.active[camera] += 1
            self.max_active_total = max(self.max_active_total, sum(self.active.values()))
            self.max_active_one_camera = max(self.max_active_one_camera, self.active[camera])
        assert self.release[camera].wait(30), "held too long"
        with self.lock:
            self.active[camera] -= 1
        return camera


def _frame(camera: str, n: int) -> AnalysisFrame:
    image = np.zeros((4, 4, 3), np.uint8)
    image[0, 0, 0] = CAMERAS.index(camera)
    return AnalysisFrame(camera, image, wall=float(n), mono=float(n))


def _poll(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_cameras_are_analysed_side_by_side_but_one_camera_never_twice_at_once() -> None:
    detector = _HeldDetector()
    delivered: list[tuple[str, float]] = []
    worker = DetectorWorker(detector, lambda f, d: delivered.append((f.camera, f.mono)), threads=3)  # type: ignore[arg-type]
    worker.start()
    try:
        detector.release["a"].clear()
        worker.submit(_frame("a", 1))
        _poll(lambda: detector.started == ["a"], "camera a's first analysis to start")
        worker.submit(_frame("a", 2))  # a is busy: this one waits, idle threads must leave it
        worker.submit(_frame("b", 3))
        _poll(lambda: ("b", 3.0) in delivered, "camera b analysed while a is held")
        assert detector.started.count("a") == 1
        assert detector.max_active_total == 2  # a and b at the same time
        detector.release["a"].set()
        _poll(lambda: worker.analyses == 3, "all three analyses")
    finally:
        worker.stop()
    assert detector.max_active_one_camera == 1
    assert [m for cam, m in delivered if cam == "a"] == [1.0, 2.0]
    assert worker.late == 0 and worker.failures == 0
    assert not worker.alive()


def test_a_newer_frame_replaces_a_waiting_one_and_counts_late() -> None:
    detector = _HeldDetector()
    delivered: list[tuple[str, float]] = []
    worker = DetectorWorker(detector, lambda f, d: delivered.append((f.camera, f.mono)), threads=2)  # type: ignore[arg-type]
    worker.start()
    try:
        detector.release["a"].clear()
        worker.submit(_frame("a", 1))
        _poll(lambda: detector.started == ["a"], "camera a's first analysis to start")
        worker.submit(_frame("a", 2))
        worker.submit(_frame("a", 3))  # replaces 2, which was never analysed
        detector.release["a"].set()
        _poll(lambda: worker.analyses == 2, "two analyses")
    finally:
        worker.stop()
    assert delivered == [("a", 1.0), ("a", 3.0)]
    assert worker.late == 1


def test_detector_threads_leave_the_intra_op_threads_their_cores() -> None:
    assert 1 <= detector_threads(None) <= 4
    assert detector_threads(64) == 1
