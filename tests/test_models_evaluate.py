"""models.evaluate: AP50 on hand-made cases, the 16:9 canvas, and the photometric degradations."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.augment import DEGRADATIONS, degrade_photo
from models.evaluate import ClassRecords, pad_16x9, read_labels


def boxes(*rows: tuple[float, float, float, float]) -> np.ndarray:
    return np.array(rows, np.float32).reshape(-1, 4)


def ap(pred: np.ndarray, conf: list[float], true: np.ndarray) -> float:
    records = ClassRecords()
    records.add(pred, np.array(conf, np.float32), true)
    return records.ap50()


TRUE = boxes((0, 0, 10, 10), (20, 20, 40, 40))
BACKGROUND = (100, 100, 120, 120)


def test_perfect_predictions_score_one() -> None:
    assert ap(TRUE.copy(), [0.9, 0.8], TRUE) == pytest.approx(1.0)


def test_no_predictions_score_zero() -> None:
    assert ap(boxes(), [], TRUE) == 0.0


def test_no_labels_is_undefined_not_zero() -> None:
    assert math.isnan(ap(boxes((0, 0, 5, 5)), [0.9], boxes()))


def test_false_positive_ranked_above_the_true_positive_halves_precision() -> None:
    pred = boxes(BACKGROUND, (0, 0, 10, 10))
    assert ap(pred, [0.9, 0.5], TRUE[:1]) == pytest.approx(0.5)


def test_false_positive_ranked_below_the_true_positive_costs_nothing() -> None:
    pred = boxes(BACKGROUND, (0, 0, 10, 10))
    assert ap(pred, [0.5, 0.9], TRUE[:1]) == pytest.approx(1.0)


def test_finding_half_the_boxes_gives_about_half() -> None:
    # 101-point interpolation: recall points 0.00..0.50 (51 of 101) at precision 1.
    assert ap(TRUE[:1].copy(), [0.9], TRUE) == pytest.approx(51 / 101)


def test_a_second_box_on_the_same_label_is_a_false_positive() -> None:
    records = ClassRecords()
    records.add(boxes((0, 0, 10, 10), (0, 0, 10, 9)), np.array([0.9, 0.8], np.float32), TRUE[:1])
    assert records.hits == [True, False]
    assert records.ap50() == pytest.approx(1.0)


def test_overlap_below_iou_half_is_a_miss() -> None:
    assert ap(boxes((5, 0, 15, 10)), [0.9], TRUE[:1]) == 0.0  # IoU 1/3


def test_records_accumulate_over_images_and_recall_at_threshold() -> None:
    records = ClassRecords()
    records.add(TRUE[:1].copy(), np.array([0.9], np.float32), TRUE[:1])
    records.add(TRUE[1:].copy(), np.array([0.1], np.float32), TRUE[1:])
    assert records.n_true == 2
    assert records.recall_at(0.25) == pytest.approx(0.5)
    assert records.ap50() == pytest.approx(1.0)


def test_read_labels_converts_normalised_centres_to_pixels(tmp_path: Path) -> None:
    label = tmp_path / "a.txt"
    label.write_text("2 0.5 0.25 0.5 0.1\n\n")
    xyxy, cls = read_labels(label, 640, 400)
    assert cls.tolist() == [2]
    assert xyxy[0].tolist() == pytest.approx([160, 80, 480, 120])
    empty, none = read_labels(tmp_path / "missing.txt", 640, 400)
    assert empty.shape == (0, 4) and none.shape == (0,)


@pytest.mark.parametrize(("h", "w"), [(640, 640), (720, 1280), (100, 50), (100, 400)])
def test_pad_16x9_centres_the_image_on_a_16_9_grey_canvas(h: int, w: int) -> None:
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8)
    canvas, ox, oy = pad_16x9(img)
    ch, cw = canvas.shape[:2]
    assert canvas.dtype == np.uint8 and canvas.shape[2] == 3
    assert cw >= w and ch >= h
    assert abs(cw / ch - 16 / 9) < 0.01
    assert np.array_equal(canvas[oy:oy + h, ox:ox + w], img)
    assert abs((cw - w) - 2 * ox) <= 1 and abs((ch - h) - 2 * oy) <= 1
    mask = np.ones((ch, cw), bool)
    mask[oy:oy + h, ox:ox + w] = False
    assert (canvas[mask] == 114).all()


def test_square_640_goes_to_1138_wide() -> None:
    canvas, ox, oy = pad_16x9(np.zeros((640, 640, 3), np.uint8))
    assert canvas.shape == (640, 1138, 3) and (ox, oy) == (249, 0)


@pytest.mark.parametrize("kind", sorted(DEGRADATIONS))
def test_degradations_keep_shape_and_dtype_and_are_deterministic(kind: str) -> None:
    img = np.random.default_rng(1).integers(0, 255, (96, 160, 3), np.uint8)
    out = DEGRADATIONS[kind](np.random.default_rng(7), img.copy())
    again = DEGRADATIONS[kind](np.random.default_rng(7), img.copy())
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out, again)
    assert not np.array_equal(out, img)


def test_degrade_photo_keeps_shape_and_dtype() -> None:
    img = np.full((64, 64, 3), 128, np.uint8)
    for seed in range(5):
        out = degrade_photo(np.random.default_rng(seed), img)
        assert out.shape == img.shape and out.dtype == np.uint8
