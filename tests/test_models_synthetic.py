"""models.synthetic (the demo's street renderer) and the held-out synthetic recall check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.synthetic import BIN, GARBAGE, OVERFLOW, render_training_image, to_yolo_lines
from models.synthetic_recall import greedy_match, synthetic_recall
from models.training import SYNTHETIC_TRAIN_SEED_LIMIT

MODEL = Path(__file__).resolve().parents[1] / "models" / "garbagewatch.onnx"
SEEDS = [0, 1, 2, SYNTHETIC_TRAIN_SEED_LIMIT, SYNTHETIC_TRAIN_SEED_LIMIT + 1]


@pytest.mark.parametrize("seed", SEEDS)
def test_rendered_boxes_lie_inside_the_image(seed: int) -> None:
    item = render_training_image(seed, (640, 360))
    h, w = item.image.shape[:2]
    assert (h, w) == (360, 640) and item.image.dtype == np.uint8
    assert item.boxes, "every scene has at least one labelled object"
    for cls, (x1, y1, x2, y2) in item.boxes:
        assert cls in (GARBAGE, BIN, OVERFLOW)
        assert 0 <= x1 < x2 <= w - 1 and 0 <= y1 < y2 <= h - 1
    for line in to_yolo_lines(item):
        cls_text, *values = line.split()
        assert int(cls_text) in (GARBAGE, BIN, OVERFLOW)
        assert all(0.0 <= float(v) <= 1.0 for v in values)


def test_rendering_is_deterministic_per_seed() -> None:
    a, b = render_training_image(SYNTHETIC_TRAIN_SEED_LIMIT, (640, 360)), render_training_image(
        SYNTHETIC_TRAIN_SEED_LIMIT, (640, 360))
    assert np.array_equal(a.image, b.image) and a.boxes == b.boxes
    c = render_training_image(SYNTHETIC_TRAIN_SEED_LIMIT + 1, (640, 360))
    assert not np.array_equal(a.image, c.image)


def test_greedy_match_takes_the_most_confident_first() -> None:
    true = np.array([[0, 0, 10, 10]], np.float32)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 9]], np.float32)
    pred_hit, true_hit = greedy_match(pred, np.array([0.2, 0.9], np.float32), true, 0.5)
    assert pred_hit.tolist() == [False, True] and true_hit.tolist() == [True]
    none_hit, none_true = greedy_match(pred[:0], np.zeros(0, np.float32), true, 0.5)
    assert none_hit.shape == (0,) and none_true.tolist() == [False]


def test_synthetic_recall_refuses_seeds_that_may_have_been_trained_on() -> None:
    with pytest.raises(ValueError, match="trained on"):
        synthetic_recall(MODEL, 1, first_seed=SYNTHETIC_TRAIN_SEED_LIMIT - 1)


def test_synthetic_recall_on_unseen_scenes() -> None:
    result = synthetic_recall(MODEL, 3, threads=1)
    assert result.first_seed == SYNTHETIC_TRAIN_SEED_LIMIT and result.images == 3
    assert result.exposed_true > 0
    assert 0 <= result.found_at_05 <= result.found_at_03 <= result.exposed_true
    lines = result.lines()
    assert lines[0].startswith("model garbagewatch.onnx synthetic images 3 seeds 1000000..1000002")
    assert lines[1].startswith("recall exposed_garbage IoU>=0.5 ")
