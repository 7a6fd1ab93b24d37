from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import wire
from edge.evidence import EvidenceFile, build_event_message, detection_records
from wire.timefmt import format_ts, parse_ts

KEY = wire.DeviceKey.from_seed(bytes(range(32)))
MODEL = wire.ModelRef(name="garbage-yolo-n", sha256="ab" * 32)


def build(files: list[Any], **over: Any) -> tuple[wire.EventMessage, list[EvidenceFile]]:
    args: dict[str, Any] = dict(
        event_id="0190f3a2b4c5d6e7f8a9b0c1",
        kind="confirmed",
        device_id="edge-01",
        site="xuhui",
        camera="cam-3",
        zone="curb-a",
        first_seen=1_764_129_135.1239,
        at=1_764_129_195.5,
        clock_synced=True,
        frame_size=(1920, 1080),
        detections=[wire.DetectionRecord(class_name="garbage", confidence=0.87, box=(10, 20, 300, 400))],
        model=MODEL,
        files=files,
    )
    args.update(over)
    return build_event_message(KEY, **args)


def test_bundle_hashes_files_and_signs_the_manifest(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4000)
    snap = b"\xff\xd8jpeg\xff\xd9"
    message, files = build(
        [("clip", "clip.mp4", "video/mp4", clip), ("snapshot", "snap.jpg", "image/jpeg", snap)]
    )
    refs = message.manifest.files
    assert refs[0].sha256 == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert refs[0].size == clip.stat().st_size
    assert refs[1].sha256 == hashlib.sha256(snap).hexdigest() and refs[1].size == len(snap)
    assert [f.ref for f in files] == refs and files[0].content == clip and files[1].content == snap
    assert message.key_id == KEY.key_id
    assert message.manifest.first_seen == "2025-11-26T03:52:15.123Z"
    assert message.manifest.at == "2025-11-26T03:53:15.500Z"
    # What the central does: verify the manifest exactly as it arrives in JSON.
    received = json.loads(message.model_dump_json())
    assert wire.verify_manifest(KEY.public, received["manifest"], received["signature"])
    received["manifest"]["zone"] = "curb-b"
    assert not wire.verify_manifest(KEY.public, received["manifest"], received["signature"])


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match="kind"):
        build([], kind="maybe")
    with pytest.raises(ValueError, match="name"):
        build([("clip", "../etc/passwd", "video/mp4", b"x")])
    with pytest.raises(ValueError):
        build(
            [("snapshot", "a.jpg", "image/jpeg", b"same"), ("snapshot_boxes", "b.jpg", "image/jpeg", b"same")]
        )


@dataclass(frozen=True)
class Boxes:
    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    class_names: tuple[str, ...]


def test_detection_records_fit_the_wire() -> None:
    dets = Boxes(
        xyxy=np.array([[-5.2, 10.6, 2000.0, 50.4], [1, 2, 3, 4]], np.float32),
        confidence=np.array([1.0000001, 0.25], np.float32),
        class_id=np.array([0, 3]),
        class_names=("Garbage Bag",),
    )
    records = detection_records(dets, (1920, 1080))
    assert records[0] == wire.DetectionRecord(class_name="garbage_bag", confidence=1.0, box=(0, 11, 1920, 50))
    assert records[1].class_name == "class_3" and records[1].confidence == pytest.approx(0.25)


def test_timestamps() -> None:
    assert format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert format_ts(1.001) == "1970-01-01T00:00:01.001Z"
    assert format_ts(1.9999) == "1970-01-01T00:00:01.999Z"  # truncated, never the next second
    assert parse_ts("2025-11-26T03:52:15.123Z") == 1_764_129_135.123
    for bad in ["2025-11-26T03:52:15Z", "2025-11-26 03:52:15.123Z", "2025-13-26T03:52:15.123Z", "x", 5]:
        with pytest.raises(wire.WireError):
            parse_ts(bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_timestamps_round_trip(ms: int) -> None:
    text = format_ts(ms / 1000)
    assert parse_ts(text) == ms / 1000
    assert format_ts(parse_ts(text)) == text
