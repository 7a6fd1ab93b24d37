"""Message models of protocol v1: what they accept, what they refuse, and that refusing never crashes."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

import wire
from wire import WireError, format_ts, parse_ts

SHA = "ab" * 32
SHA2 = "cd" * 32
KEY = wire.DeviceKey.from_seed(bytes(range(32)))


def manifest_dict(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "protocol": 1,
        "event_id": "019ac46d2a7f9c3b5d7a1e2f4a6b",
        "kind": "confirmed",
        "device_id": "edge-01",
        "site": "site-a",
        "camera": "cam-1",
        "zone": "z1",
        "first_seen": "2026-11-26T03:51:45.250Z",
        "at": "2026-11-26T03:52:15.123Z",
        "clock_synced": True,
        "frame_size": [1920, 1080],
        "detections": [{"class_name": "garbage", "confidence": 0.87, "box": [412, 530, 655, 801]}],
        "model": {"name": "garbagewatch", "sha256": SHA2},
        "files": [
            {"role": "clip", "name": "clip.mp4", "media_type": "video/mp4", "size": 1550, "sha256": SHA},
            {
                "role": "snapshot",
                "name": "snapshot.jpg",
                "media_type": "image/jpeg",
                "size": 35,
                "sha256": SHA2,
            },
        ],
    }
    base.update(changes)
    return base


def event_dict(manifest: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    m = manifest or manifest_dict()
    body: dict[str, Any] = {
        "protocol": 1,
        "manifest": m,
        "signature": wire.sign_manifest(KEY, m),
        "key_id": KEY.key_id,
    }
    body.update(changes)
    return body


INIT = {
    "protocol": 1,
    "event_id": "019ac46d2a7f9c3b5d7a1e2f4a6b",
    "role": "clip",
    "name": "clip.mp4",
    "media_type": "video/mp4",
    "size": 1550,
    "sha256": SHA,
    "segment_bytes": 262144,
}
ACK = {
    "protocol": 1,
    "ref_type": "event",
    "ref": "019ac46d2a7f9c3b5d7a1e2f4a6b",
    "status": "ok",
    "kind": "update",
}
STATUS = {
    "protocol": 1,
    "state": "online",
    "at": "2026-11-26T03:52:15.123Z",
    "cameras": ["cam-1"],
    "version": "0.1",
}
STATS = {
    "protocol": 1,
    "at": "2026-11-26T03:52:15.123Z",
    "spool_pending": 2,
    "cameras": {"cam-1": {"fps": 2.0}},
}


def test_valid_messages_are_accepted_and_round_trip() -> None:
    examples: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (wire.Manifest, manifest_dict()),
        (wire.EventMessage, event_dict()),
        (wire.EventMessage, event_dict(dropped=[SHA])),
        (wire.FileInit, INIT),
        (wire.Ack, ACK),
        (wire.Availability, STATUS),
        (wire.Availability, {"state": "offline"}),
        (wire.Stats, STATS),
    ]
    for model, body in examples:
        parsed = model.model_validate(body)
        again = model.model_validate_json(parsed.model_dump_json())
        assert again == parsed


def test_old_acks_without_kind_and_events_without_dropped_stay_valid() -> None:
    ack = wire.Ack.model_validate({"ref_type": "event", "ref": "019ac46d2a7f9c3b", "status": "ok"})
    assert ack.kind is None and ack.missing == []
    message = wire.EventMessage.model_validate(event_dict())
    assert message.dropped == []
    # An event with nothing dropped serialises exactly as before the field existed.
    body = json.loads(message.model_dump_json())
    assert "dropped" not in body and "dropped" not in message.model_dump()
    assert list(body) == ["protocol", "manifest", "signature", "key_id"]


def test_dropped_is_outside_the_signed_manifest() -> None:
    body = event_dict(dropped=[SHA2, SHA])
    message = wire.EventMessage.model_validate(body)
    assert message.dropped == [SHA2, SHA]
    assert wire.verify_manifest(KEY.public, message.manifest.model_dump(mode="json"), message.signature)
    assert json.loads(message.model_dump_json())["dropped"] == [SHA2, SHA]


@pytest.mark.parametrize(
    ("dropped", "words"),
    [
        (["ef" * 32], "does not"),  # a file the manifest does not list
        ([SHA, SHA], "twice"),
        ([SHA.upper()], "pattern"),
        (["nope"], "pattern"),
        (SHA, "list"),
    ],
)
def test_dropped_must_name_files_of_the_manifest_once(dropped: object, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        wire.EventMessage.model_validate(event_dict(dropped=dropped))


BAD_MANIFESTS = [
    {"protocol": 2},
    {"event_id": "SHORT"},
    {"event_id": "0190f3a2"[:7]},
    {"event_id": "a" * 65},
    {"event_id": "0190f3a2b4c5d601\n"},
    {"kind": "opened"},
    {"device_id": "Edge-01"},
    {"device_id": "edge/01"},
    {"site": ".."},
    {"camera": "cam+1"},
    {"zone": ""},
    {"zone": "z1\n"},
    {"first_seen": "2026-11-26T03:51:45Z"},  # no milliseconds
    {"first_seen": "2026-11-26T03:51:45.250+00:00"},  # not Z
    {"at": "2026-11-26 03:52:15.123Z"},
    {"at": "2026-13-26T03:52:15.123Z"},  # month 13
    {"at": "2026-02-30T03:52:15.123Z"},
    {"at": "２０２６-11-26T03:52:15.123Z"},  # full-width digits
    {"at": "2026-11-26T03:52:15.123Z\n"},
    {"at": 1795665135.123},
    {"clock_synced": "maybe"},
    {"frame_size": [1920]},
    {"frame_size": [1920, 1080, 3]},
    {"detections": [{"class_name": "Garbage", "confidence": 0.5, "box": [0, 0, 1, 1]}]},
    {"detections": [{"class_name": "garbage", "confidence": 1.5, "box": [0, 0, 1, 1]}]},
    {"detections": [{"class_name": "garbage", "confidence": -0.1, "box": [0, 0, 1, 1]}]},
    {"detections": [{"class_name": "garbage", "confidence": 0.5, "box": [0, 0, 1]}]},
    {"detections": [{"class_name": "garbage", "confidence": 0.5, "box": [0.5, 0, 1, 1]}]},
    {"model": {"name": "", "sha256": SHA}},
    {"model": {"name": "m", "sha256": "00"}},
    {"files": [{"role": "clip", "name": "../clip.mp4", "media_type": "video/mp4", "size": 1, "sha256": SHA}]},
    {"files": [{"role": "clip", "name": "clip.exe", "media_type": "video/mp4", "size": 1, "sha256": SHA}]},
    {"files": [{"role": "clip", "name": "clip.mp4", "media_type": "text/plain", "size": 1, "sha256": SHA}]},
    {"files": [{"role": "audio", "name": "clip.mp4", "media_type": "video/mp4", "size": 1, "sha256": SHA}]},
    {"files": [{"role": "clip", "name": "clip.mp4", "media_type": "video/mp4", "size": 0, "sha256": SHA}]},
    {"files": [{"role": "clip", "name": "clip.mp4", "media_type": "video/mp4", "size": 2**40, "sha256": SHA}]},
    {
        "files": [
            {"role": "clip", "name": "a.mp4", "media_type": "video/mp4", "size": 1, "sha256": SHA},
            {"role": "snapshot", "name": "b.jpg", "media_type": "image/jpeg", "size": 1, "sha256": SHA},
        ]
    },
    {"extra": 1},  # unknown fields are refused: a typo fails loudly
]


@pytest.mark.parametrize("change", BAD_MANIFESTS)
def test_bad_manifests_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        wire.Manifest.model_validate(manifest_dict(**change))


@pytest.mark.parametrize(
    ("model", "body"),
    [
        (wire.EventMessage, event_dict(signature="c2ln")),  # too short for 64 bytes
        (wire.EventMessage, event_dict(key_id=None)),
        (wire.EventMessage, {k: v for k, v in event_dict().items() if k != "manifest"}),
        (wire.EventMessage, event_dict(extra=True)),
        (wire.FileInit, {**INIT, "segment_bytes": 1023}),
        (wire.FileInit, {**INIT, "segment_bytes": 4 * 1024 * 1024 + 1}),
        (wire.FileInit, {**INIT, "size": 0}),
        (wire.FileInit, {**INIT, "sha256": SHA[:-1]}),
        (wire.FileInit, {**INIT, "name": "clip.mp4/x"}),
        (wire.FileInit, {**INIT, "event_id": "UPPER0000"}),
        (wire.Ack, {**ACK, "status": "maybe"}),
        (wire.Ack, {**ACK, "ref_type": "segment"}),
        (wire.Ack, {**ACK, "kind": "opened"}),
        (wire.Ack, {**ACK, "missing": ["xyz"]}),
        (wire.Availability, {"state": "sleeping"}),
        (wire.Availability, {"state": "online", "at": "yesterday"}),
        (wire.Stats, {"protocol": 1}),
        (wire.Stats, {**STATS, "spool_pending": "many"}),
    ],
)
def test_bad_messages_are_refused(model: type[BaseModel], body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body)


def test_timestamps() -> None:
    assert format_ts(1_795_665_135.123) == "2026-11-26T03:52:15.123Z"
    assert format_ts(1_795_665_135.9999) == "2026-11-26T03:52:15.999Z"  # truncated, never rounded up
    assert format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert parse_ts("2026-11-26T03:52:15.123Z") == 1_795_665_135.123
    for bad in [
        "2026-11-26T03:52:15Z",
        "2026-11-26T03:52:15.123",
        "2026-11-26T03:52:15.123z",
        "2026-02-29T00:00:00.000Z",
    ]:
        with pytest.raises(WireError):
            parse_ts(bad)


# -- properties: refusing is always a ValidationError (or WireError), never a crash ---------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
MODELS: list[type[BaseModel]] = [
    wire.Manifest,
    wire.EventMessage,
    wire.FileInit,
    wire.Ack,
    wire.Availability,
    wire.Stats,
    wire.DetectionRecord,
    wire.FileRef,
    wire.ModelRef,
]
VALID: dict[type[BaseModel], dict[str, Any]] = {
    wire.Manifest: manifest_dict(),
    wire.EventMessage: event_dict(),
    wire.FileInit: INIT,
    wire.Ack: ACK,
    wire.Availability: STATUS,
    wire.Stats: STATS,
}


@settings(deadline=None)
@given(st.sampled_from(MODELS), json_values)
def test_any_json_value_is_accepted_or_refused_with_a_validation_error(model: type[BaseModel], value: Any) -> None:
    with contextlib.suppress(ValidationError):
        model.model_validate(value)


@settings(deadline=None)
@given(st.sampled_from(MODELS), st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_accepted_or_refused_with_a_validation_error(model: type[BaseModel], data: bytes) -> None:
    with contextlib.suppress(ValidationError):
        model.model_validate_json(data)


@settings(deadline=None)
@given(st.sampled_from(list(VALID)), st.data())
def test_a_valid_message_with_one_field_replaced_is_accepted_or_refused_cleanly(
    model: type[BaseModel], data: st.DataObject
) -> None:
    body = json.loads(json.dumps(VALID[model]))
    target = body["manifest"] if model is wire.EventMessage and data.draw(st.booleans()) else body
    field = data.draw(st.sampled_from(sorted(target)))
    target[field] = data.draw(json_values)
    try:
        parsed = model.model_validate(body)
    except ValidationError:
        return
    assert model.model_validate_json(parsed.model_dump_json()) == parsed


@settings(deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)))
def test_format_and_parse_are_inverse(moment: datetime) -> None:
    text = moment.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert format_ts(parse_ts(text)) == text
    epoch = moment.replace(tzinfo=UTC).timestamp()
    assert 0 <= epoch - parse_ts(format_ts(epoch)) < 0.001 + 1e-6


@settings(deadline=None)
@given(st.text(max_size=40))
def test_parse_ts_refuses_with_wire_error_only(text: str) -> None:
    with contextlib.suppress(WireError):
        parse_ts(text)
