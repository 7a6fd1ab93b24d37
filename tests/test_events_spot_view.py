"""Seen clean, not merely undetected: a car parked over a pile, or a missed pile, never clears it.

Frames are rendered street scenes (models/synthetic.py: textured pavement, bins, a heap of bags);
the "detector" is played by the test, so what is checked is how the camera pipeline tells a
spot seen clean from one that is hidden (edge/events/spot_view.py), on a fake clock.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

import wire
from edge.camera_pipeline import CameraPipeline
from edge.config import CameraConfig, EdgeConfig, ExposureSettings
from edge.detect import Detections
from edge.events.spot_view import SpotReference
from edge.evidence import PacketRingBuffer
from edge.ingest import AnalysisFrame
from edge.spool import Spool
from models.synthetic import draw_bin, draw_pile, make_scene

Image = npt.NDArray[np.uint8]
NAMES = ("garbage", "garbage_bin", "overflow")
SIZE = (640, 360)


def scene(seed: int = 7) -> tuple[Image, Image, tuple[float, float, float, float]]:
    """A clean street, the same street with a pile, and the pile's box."""
    rng = np.random.default_rng(seed)
    street = make_scene(rng, SIZE)
    clean = street.background.copy()
    for b in street.bins:
        draw_bin(rng, clean, b)
    dirty = clean.copy()
    w, h = SIZE
    x1, y1, x2, y2 = draw_pile(rng, dirty, w * 0.45, street.horizon + 0.55 * (h - street.horizon), 0.1 * h)
    return clean, dirty, (float(x1), float(y1), float(x2), float(y2))


def parked_van(image: Image, box: tuple[float, float, float, float]) -> Image:
    """A van stopped over the spot: a body wider than the pile, a window band, a wheel."""
    out = image.copy()
    x1, y1, x2, y2 = (int(v) for v in box)
    pad = (x2 - x1) // 2
    cv2.rectangle(out, (x1 - pad, y1 - pad), (x2 + pad, y2 + 4), (200, 200, 205), -1)
    cv2.rectangle(out, (x1 - pad + 6, y1 - pad + 6), (x2 + pad - 6, y1), (60, 50, 40), -1)
    cv2.circle(out, (x1, y2), max(4, pad // 3), (20, 20, 20), -1)
    return out


def noisy(image: Image, seed: int) -> Image:
    noise = np.random.default_rng(seed).integers(-3, 4, image.shape)
    out: Image = np.clip(image.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return out


def pile_found(box: tuple[float, float, float, float]) -> Detections:
    return Detections([box], [0.9], [0], NAMES)


# -- SpotReference on its own ---------------------------------------------------------------------


def test_a_spot_is_trusted_only_after_it_was_seen_free() -> None:
    clean, _, box = scene()
    spots = SpotReference(min_clean_looks=3)
    for i in range(2):
        _, small = spots.hidden_hook(noisy(clean, i))
        spots.learn(small, [])
    assert not spots.trusted(box)
    _, small = spots.hidden_hook(noisy(clean, 2))
    spots.learn(small, [])
    assert spots.trusted(box)


def test_clean_ground_looks_clean_but_a_pile_or_a_van_does_not() -> None:
    clean, dirty, box = scene()
    spots = SpotReference()
    for i in range(6):
        _, small = spots.hidden_hook(noisy(clean, i))
        spots.learn(small, [])
    for i in range(10):  # the pile is tracked: its spot is not learned, however long it stays
        _, small = spots.hidden_hook(noisy(dirty, 10 + i))
        spots.learn(small, [box])
    assert spots.hidden_hook(noisy(dirty, 30))[0](box), "an undetected pile is not clean ground"
    assert spots.hidden_hook(parked_van(clean, box))[0](box), "a van over the spot hides it"
    assert not spots.hidden_hook(noisy(clean, 31))[0](box), "the ground seen again is clean"
    dusk = np.clip(noisy(clean, 32).astype(np.float32) * 0.6 + 8, 0, 255).astype(np.uint8)
    assert not spots.hidden_hook(dusk)[0](box), "darker light is still clean ground"


def test_a_pile_there_from_the_start_has_no_reference_and_clears_as_before() -> None:
    _, dirty, box = scene()
    clean = scene()[0]
    spots = SpotReference()
    for i in range(8):
        _, small = spots.hidden_hook(noisy(dirty, i))
        spots.learn(small, [box])
    assert not spots.trusted(box)
    assert not spots.hidden_hook(parked_van(clean, box))[0](box)  # cannot tell: counts as clean


def test_the_reference_follows_the_camera_across_sizes() -> None:
    clean, _, box = scene()
    spots = SpotReference()
    for i in range(6):
        _, small = spots.hidden_hook(noisy(clean, i))
        spots.learn(small, [])
    # The same view at twice the size (the camera's main stream instead of its substream): kept.
    hidden, _ = spots.hidden_hook(np.asarray(cv2.resize(clean, (1280, 720)), np.uint8))
    double = (2 * box[0], 2 * box[1], 2 * box[2], 2 * box[3])
    assert spots.trusted(double) and not hidden(double)
    # Another shape is another view (the installer changed the camera): learned again from scratch.
    _, small = spots.hidden_hook(np.asarray(cv2.resize(clean, (640, 480)), np.uint8))
    spots.learn(small, [])
    assert not spots.trusted(box)


# -- the camera pipeline, on a fake clock ---------------------------------------------------------


@pytest.fixture
def pipeline(tmp_path: Path) -> CameraPipeline:
    camera = CameraConfig(id="cam-1", url="rtsp://127.0.0.1/cam-1")
    config = EdgeConfig(device_id="box-1", site="site-a", key_file=tmp_path / "key", cameras=[camera],
                        exposure=ExposureSettings(confirm_seconds=10, clear_seconds=20, update_seconds=3600))
    spool = Spool(tmp_path / "spool")
    model = wire.ModelRef(name="test", sha256="ab" * 32)
    return CameraPipeline(camera, config, wire.DeviceKey.generate(), spool, model, PacketRingBuffer())


def play(pipeline: CameraPipeline, timeline: list[tuple[int, Image, Detections]]) -> list[tuple[str, float]]:
    kinds: list[tuple[str, float]] = []
    for t, image, detections in timeline:
        for event in pipeline.on_detections(AnalysisFrame("cam-1", image, 1_800_000_000 + t, t), detections):
            kinds.append((event.kind, t))
    return kinds


def test_a_van_parked_over_the_pile_and_a_missed_pile_do_not_clear_it(pipeline: CameraPipeline) -> None:
    clean, dirty, box = scene()
    none = Detections.empty()
    timeline = [(t, noisy(clean, int(t)), none) for t in range(0, 12, 2)]  # the clean street
    timeline += [(t, noisy(dirty, int(t)), pile_found(box)) for t in range(12, 32, 2)]  # dumped, confirmed
    timeline += [(t, parked_van(dirty, box), none) for t in range(32, 72, 2)]  # 40 s behind a van
    timeline += [(t, noisy(dirty, int(t)), none) for t in range(72, 82, 2)]  # the van left; pile missed
    timeline += [(t, noisy(clean, int(t)), none) for t in range(82, 120, 2)]  # cleaned up
    events = play(pipeline, timeline)
    assert [k for k, _ in events] == ["confirmed", "cleared"]
    cleared_at = events[1][1]
    assert 82 + 20 <= cleared_at <= 82 + 20 + 4, f"cleared at {cleared_at}: only clean ground counts"


def test_a_van_over_a_pile_never_seen_clean_still_clears_as_before(pipeline: CameraPipeline) -> None:
    # No clean reference (the pile was there when the camera started): not detected counts as clean.
    _, dirty, box = scene()
    timeline = [(t, noisy(dirty, int(t)), pile_found(box)) for t in range(0, 20, 2)]
    timeline += [(t, parked_van(dirty, box), Detections.empty()) for t in range(20, 60, 2)]
    assert [k for k, _ in play(pipeline, timeline)] == ["confirmed", "cleared"]
