"""Analysis cadence with keyframe-only decoding: every keyframe is taken when keyframes come as often as analyses.

The rule (edge.ingest.rtsp.analysis_due) is checked on simulated keyframe arrivals with jitter,
and once on a real RTSP stream, counting analyses against keyframes received (no durations).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.evidence import PacketRingBuffer, StreamTemplate
from edge.ingest.rtsp import AnalysisFrame, CameraStream, analysis_due, analysis_size
from garbagewatch.devtools.footage import clip_from_images
from garbagewatch.devtools.rtsp_server import RtspServer


def _analysed_at(arrivals: list[float], interval: float, next_chance: float) -> list[float]:
    last = -1e18
    taken = []
    for t in arrivals:
        if analysis_due(t - last, interval, next_chance):
            last = t
            taken.append(t)
    return taken


def _keyframes(period: float, count: int, jitter: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [k * period + rng.uniform(-jitter, jitter) for k in range(count)]


def test_keyframe_interval_equal_to_analysis_interval_takes_every_keyframe() -> None:
    arrivals = _keyframes(2.0, 300, jitter=0.05)
    assert len(_analysed_at(arrivals, 2.0, next_chance=2.0)) == 300
    # Without the slack about half the keyframes arrive "early" and are skipped: the bug it fixes.
    assert len(_analysed_at(arrivals, 2.0, next_chance=0.0)) < 0.8 * 300


def test_frequent_keyframes_give_the_interval_on_average_and_never_early_by_half_a_gop() -> None:
    for period, interval in [(1.0, 2.0), (0.5, 2.0), (0.4, 1.0)]:
        arrivals = _keyframes(period, 1000, jitter=0.03)
        taken = _analysed_at(arrivals, interval, next_chance=period)
        gaps = np.diff(taken)
        assert abs(gaps.mean() - interval) < 0.05 * interval, (period, interval, gaps.mean())
        assert gaps.min() >= interval - period / 2 - 1e-9


def test_every_frame_decoded_is_never_early() -> None:
    arrivals = [k * 0.04 for k in range(2000)]  # 25 fps, every frame decodable
    gaps = np.diff(_analysed_at(arrivals, 2.0, next_chance=0.0))
    assert gaps.min() >= 2.0 - 1e-9


def _poll(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


FPS, GOP = 10, 5  # a keyframe every 0.5 s


def _camera(tmp_path: Path, rtsp_server: Callable[[Mapping[str, str | Path]], RtspServer],
            interval: float, analysis_hw: tuple[int, int] | None = None,
            analysed: list[AnalysisFrame] | None = None) -> CameraStream:
    frames = []
    for i in range(4 * FPS):
        image = np.full((180, 320, 3), 40, np.uint8)
        image[50:130, 10 + 6 * i : 70 + 6 * i] = (30, 200, 60)
        frames.append((image, 1 / FPS))
    clip = clip_from_images(frames, tmp_path / "cam.mp4", size=(320, 180), fps=FPS, gop=GOP)
    server = rtsp_server({"cam": clip})
    lock = threading.Lock()
    analysed = [] if analysed is None else analysed

    def on_frame(frame: AnalysisFrame) -> None:
        with lock:
            analysed.append(frame)

    def on_template(template: StreamTemplate) -> None:
        return

    ring = PacketRingBuffer(preroll_seconds=2.0)
    return CameraStream("cam", server.url("cam"), ring, on_frame, on_template, interval=interval,
                        analysis_hw=analysis_hw).start()


def test_a_live_camera_is_analysed_at_nearly_every_keyframe(
    tmp_path: Path, rtsp_server: Callable[[Mapping[str, str | Path]], RtspServer]
) -> None:
    gop = GOP
    stream = _camera(tmp_path, rtsp_server, interval=0.5)  # analyses asked as often as keyframes come
    try:
        # Warm up until keyframe-only decoding is on, then count over the next 40 keyframes.
        _poll(lambda: stream.stats.keyframe_interval > 0 and stream.stats.analyses_offered >= 3, 60, "analyses")
        packets0, offered0 = stream.stats.packets, stream.stats.analyses_offered
        decoded0 = stream.stats.frames_decoded
        _poll(lambda: stream.stats.packets >= packets0 + 40 * gop, 120, "40 keyframes' worth of packets")
        offered = stream.stats.analyses_offered - offered0
        decoded = stream.stats.frames_decoded - decoded0
    finally:
        stream.stop()
    assert decoded <= 42, f"{decoded} frames decoded for about 40 keyframes: not keyframe-only"
    assert offered >= 32, f"{offered} analyses for about 40 keyframes due"


def test_analyses_a_second_apart_decode_keyframes_only_from_the_start(
    tmp_path: Path, rtsp_server: Callable[[Mapping[str, str | Path]], RtspServer]
) -> None:
    stream = _camera(tmp_path, rtsp_server, interval=1.0)
    try:
        _poll(lambda: stream.stats.packets >= 6 * GOP and stream.stats.analyses_offered >= 2, 60,
              "six keyframes' worth of packets and two analyses")
    finally:
        stream.stop()
    assert not stream.alive()
    decoded, offered = stream.stats.frames_decoded, stream.stats.analyses_offered
    # Keyframes only: a frame is decoded only when it is analysed. Decoding every frame until the
    # GOP is known would have decoded the P-frames after the first keyframe too.
    assert decoded == offered, (decoded, offered)


@pytest.mark.parametrize(("frame", "input_hw", "expected"), [
    ((1920, 1080), (384, 640), (640, 360)),  # the letterbox's own scale: no resize left for the detector
    ((1280, 720), (384, 640), (640, 360)),
    ((2560, 1920), (384, 640), (512, 384)),  # 4:3 is limited by the height
    ((640, 360), (384, 640), (640, 360)),  # never scaled up
    ((1920, 1080), None, (1920, 1080)),  # no detector size given: full size
])
def test_frames_are_analysed_at_the_detectors_size(
        frame: tuple[int, int], input_hw: tuple[int, int] | None, expected: tuple[int, int]) -> None:
    assert analysis_size(*frame, input_hw) == expected


def test_frames_are_converted_small_and_full_size_only_on_demand(
    tmp_path: Path, rtsp_server: Callable[[Mapping[str, str | Path]], RtspServer]
) -> None:
    analysed: list[AnalysisFrame] = []
    stream = _camera(tmp_path, rtsp_server, interval=0.5, analysis_hw=(96, 160), analysed=analysed)
    try:
        _poll(lambda: len(analysed) >= 2, 60, "two analysed frames")
    finally:
        stream.stop()
    frame = analysed[-1]
    assert frame.image.shape == (90, 160, 3) and frame.size == (320, 180)
    full = frame.full_image()
    assert full.shape == (180, 320, 3) and full.dtype == np.uint8
    # The same picture: the small one is the full one scaled down (the green block included).
    small_again = cv2.resize(full, (160, 90), interpolation=cv2.INTER_AREA)
    assert np.abs(small_again.astype(int) - frame.image.astype(int)).mean() < 6
