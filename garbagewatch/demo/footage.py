"""The demo camera's footage, drawn by models.synthetic: a street that gets dumped on, then cleaned.

    0 s ............ clean_s ................ clean_s + dirty_s ............ end
    clean street     a garbage pile appears   the pile is gone again (cleaned up)

Seeds at or above models.training.SYNTHETIC_TRAIN_SEED_LIMIT are never used for training, so
the demo shows the model on scenes it has not seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from garbagewatch.devtools.footage import encode_h264
from models.synthetic import draw_bin, draw_pile, make_scene
from models.training import SYNTHETIC_TRAIN_SEED_LIMIT

DEMO_SEED = SYNTHETIC_TRAIN_SEED_LIMIT + 7


def street_frames(seed: int = DEMO_SEED, *, clean_s: float = 6.0, dirty_s: float = 30.0,
                  after_s: float = 20.0, fps: int = 10, size: tuple[int, int] = (1280, 720),
                  ) -> Iterator[np.ndarray]:
    """BGR frames of the demo street (a passer-by walks along the pavement the whole time)."""
    rng = np.random.default_rng(seed)
    scene = make_scene(rng, size)
    clean = scene.background.copy()
    for b in scene.bins:
        draw_bin(rng, clean, b)
    w, h = size
    dirty = clean.copy()
    cy = scene.horizon + 0.55 * (h - scene.horizon)
    draw_pile(rng, dirty, w * 0.42, cy, 0.11 * h)
    total = int((clean_s + dirty_s + after_s) * fps)
    noise_rng = np.random.default_rng(seed + 1)
    # A few sensor-noise patterns, cycled: every frame differs (real P-frames) at little cost.
    noises = [noise_rng.integers(-2, 3, clean.shape, dtype=np.int16) for _ in range(6)]
    for i in range(total):
        t = i / fps
        base = dirty if clean_s <= t < clean_s + dirty_s else clean
        frame = base.copy()
        x = int((t * 60) % (w + 80)) - 40  # a passer-by
        y = int(scene.horizon + 0.3 * (h - scene.horizon))
        frame[y - 90:y, max(x - 12, 0):max(x + 12, 0)] = (90, 60, 40)
        frame[y - 110:y - 90, max(x - 8, 0):max(x + 8, 0)] = (120, 150, 190)
        yield np.clip(frame.astype(np.int16) + noises[i % len(noises)], 0, 255).astype(np.uint8)


def write_demo_footage(path: Path, seed: int = DEMO_SEED, fps: int = 10, **timing: float) -> Path:
    """The demo's MP4 (H.264, a keyframe every second, like a street camera)."""
    return encode_h264(street_frames(seed, fps=fps, **timing), path, fps=fps, gop=fps)  # type: ignore[arg-type]
