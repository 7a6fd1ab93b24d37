"""`garbagewatch model ...` (models.cli.main): eval on a few validation images, and clear refusals."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from models.cli import main
from models.errors import analyse_errors, size_bucket

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "garbagewatch.onnx"
VALID = ROOT.parent / "shared" / "datasets" / "garbage-cn" / "valid"


@pytest.fixture
def valid_split() -> Path:
    if not (VALID / "images").is_dir():
        pytest.skip(f"validation split not found at {VALID} (../shared/datasets/garbage-cn next to the repo)")
    return VALID


def test_eval_on_five_images_prints_every_line(valid_split: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--data", str(valid_split), "--limit", "5", "--threads", "1", "--speed-runs", "3"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == "model garbagewatch.onnx input 384x640 images 5 variant as labelled"
    for i, name in enumerate(["garbage", "garbage_bin", "overflow", "exposed_garbage"], start=1):
        assert re.fullmatch(rf"AP50 {name} +(\d\.\d{{3}}|n/a \(no labelled boxes\))", out[i]), out[i]
    assert re.fullmatch(r"recall exposed_garbage @0\.35 \(edge default\) \d\.\d{3}", out[5]), out[5]
    assert re.fullmatch(r"speed [\d.]+ images/s model only, [\d.]+ images/s with pre/post-processing "
                        r"\(384x640, 1 intra-op thread, median of 3, this CPU\)", out[6]), out[6]


def test_eval_letterboxed_and_degraded(valid_split: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--data", str(valid_split), "--limit", "3", "--letterbox-16x9", "--degrade", "dusk",
                 "--speed-runs", "0"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].endswith("images 3 variant 16:9 letterboxed, dusk")
    assert not any(line.startswith("speed") for line in out)


def test_errors_counts_every_label_once(valid_split: Path) -> None:
    report = analyse_errors(MODEL, valid_split, limit=5, threads=1)
    for name in report.class_names:
        missed = sum(n for (c, _), n in report.misses.items() if c == name)
        assert report.hits[name] + missed == report.labels[name]
        assert sum(n for (c, _), n in report.labels_by_size.items() if c == name) == report.labels[name]
    assert report.images == 5
    assert any(line.startswith("exposed_garbage") for line in report.lines())


def test_the_edge_threshold_is_the_edges_default() -> None:
    from edge.config import DetectorConfig
    from models.cli import EDGE_CONFIDENCE as CLI_EDGE_CONFIDENCE
    from models.speed import EDGE_CONFIDENCE

    assert DetectorConfig().confidence == EDGE_CONFIDENCE == CLI_EDGE_CONFIDENCE


def test_size_buckets() -> None:
    assert [size_bucket(f) for f in (0.001, 0.05, 0.5)] == ["small", "medium", "large"]


def test_eval_without_the_dataset_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(tmp_path / "nowhere")]) == 2
    assert f"dataset split not found at {tmp_path / 'nowhere'}" in capsys.readouterr().out


def test_eval_of_a_missing_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--model", str(tmp_path / "none.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().out


def test_synthetic_recall_refuses_trained_seeds(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synthetic-recall", "--first-seed", "12"]) == 2
    assert "may have been trained on" in capsys.readouterr().out


def test_usage_errors_return_2_without_raising(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--weights", "w.pt", "--imgsz", "100x640"]) == 2
    assert "multiple of 32" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is not None, reason="ultralytics is installed here")
def test_train_without_ultralytics_says_to_install_the_train_extra(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--out", str(tmp_path / "run")]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and ".[train]" in out[0] and "own venv" in out[0]
    assert not (tmp_path / "run").exists()
