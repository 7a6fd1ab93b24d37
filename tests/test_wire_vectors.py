"""The worked example of docs/protocol.md (tests/vectors/manifest_v1.json), recomputed.

Every value is recomputed from the vector's inputs with the wire package, and the key and the
signature also with a small independent Ed25519 (RFC 8032's reference algorithm) and the canonical
bytes with plain json, so the vector is right, not merely consistent with this code. The central's
verify path must accept the vector and refuse it after any one-byte change that alters its meaning.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

import wire
from central.config import DeviceConfig
from central.ingest.refusal import Refusal
from central.ingest.verify import verify_event
from central.store.work_orders import message_id
from wire.signing import public_key_pem
from wire.topics import TopicKind, ack_topic, event_topic, file_topic, parse_topic, stats_topic, status_topic

REPO = Path(__file__).resolve().parents[1]
VECTOR: dict[str, Any] = json.loads((REPO / "tests" / "vectors" / "manifest_v1.json").read_text())
SEED = bytes.fromhex(VECTOR["seed_hex"])

# -- RFC 8032 section 6, reference Ed25519 (slow, tiny, independent of `cryptography`) -------------
_P = 2**255 - 19
_D = -121665 * pow(121666, _P - 2, _P) % _P
_Q = 2**252 + 27742317777372353535851937790883648493
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
Point = tuple[int, int, int, int]


def _add(a: Point, b: Point) -> Point:
    x = (a[1] - a[0]) * (b[1] - b[0]) % _P
    y = (a[1] + a[0]) * (b[1] + b[0]) % _P
    c = 2 * a[3] * b[3] * _D % _P
    d = 2 * a[2] * b[2] % _P
    e, f, g, h = y - x, d - c, d + c, y + x
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(s: int, pt: Point) -> Point:
    out: Point = (0, 1, 1, 0)
    while s > 0:
        if s & 1:
            out = _add(out, pt)
        pt = _add(pt, pt)
        s >>= 1
    return out


def _recover_x(y: int) -> int:
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    return _P - x if x & 1 else x


_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = _recover_x(_GY)
_G: Point = (_GX, _GY, 1, _GX * _GY % _P)


def _compress(pt: Point) -> bytes:
    zinv = pow(pt[2], _P - 2, _P)
    x, y = pt[0] * zinv % _P, pt[1] * zinv % _P
    return int.to_bytes(y | ((x & 1) << 255), 32, "little")


def _expand(seed: bytes) -> tuple[int, bytes]:
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little") & ((1 << 254) - 8) | (1 << 254)
    return a, h[32:]


def _hash_q(data: bytes) -> int:
    return int.from_bytes(hashlib.sha512(data).digest(), "little") % _Q


def ref_public(seed: bytes) -> bytes:
    return _compress(_mul(_expand(seed)[0], _G))


def ref_sign(seed: bytes, msg: bytes) -> bytes:
    a, prefix = _expand(seed)
    public = _compress(_mul(a, _G))
    r = _hash_q(prefix + msg)
    big_r = _compress(_mul(r, _G))
    s = (r + _hash_q(big_r + public + msg) * a) % _Q
    return big_r + int.to_bytes(s, 32, "little")


def plain_canonical(obj: Any) -> bytes:
    """RFC 8785 for what a manifest holds (ASCII keys and strings, integers, short decimals)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- the vector -------------------------------------------------------------------------------------


def test_the_key_from_the_seed() -> None:
    key = wire.DeviceKey.from_seed(SEED)
    raw = key.public.public_bytes_raw()
    assert bytes(range(32)) == SEED
    assert raw.hex() == VECTOR["public_key_raw_hex"] == ref_public(SEED).hex()
    assert public_key_pem(key.public) == VECTOR["public_key_pem"]
    assert key.key_id == VECTOR["key_id"] == "ed25519:" + hashlib.sha256(raw).hexdigest()[:32]
    assert wire.fingerprint(wire.public_key_from_pem(VECTOR["public_key_pem"])) == VECTOR["key_id"]


def test_file_and_model_hashes() -> None:
    listed = {f["sha256"]: f for f in VECTOR["manifest"]["files"]}
    for f in VECTOR["files"]:
        content = f["content_utf8"].encode() * f["repeat"]
        assert (len(content), hashlib.sha256(content).hexdigest()) == (f["size"], f["sha256"])
        assert listed[f["sha256"]] == {k: f[k] for k in ("role", "name", "media_type", "size", "sha256")}
    model = hashlib.sha256(VECTOR["model_content_utf8"].encode()).hexdigest()
    assert VECTOR["manifest"]["model"]["sha256"] == model


def test_canonical_bytes_signature_and_message_id() -> None:
    manifest = VECTOR["manifest"]
    canonical = VECTOR["canonical_manifest"].encode()
    # The edge signs model_dump(mode="json") of the Manifest model: the same object.
    assert wire.Manifest.model_validate(manifest).model_dump(mode="json") == manifest
    assert wire.canonical_json(manifest) == canonical == plain_canonical(manifest)
    assert b"1.0" not in canonical and b'"confidence":1}' in canonical  # RFC 8785 numbers
    key = wire.DeviceKey.from_seed(SEED)
    signature = wire.sign_manifest(key, manifest)
    assert signature == VECTOR["signature_base64"]
    assert base64.b64decode(signature) == ref_sign(SEED, canonical)  # Ed25519 is deterministic
    assert wire.verify_manifest(key.public, manifest, signature)
    assert VECTOR["message_id"] == hashlib.sha256(canonical).hexdigest() == message_id(canonical.decode())


def test_the_messages_as_sent() -> None:
    manifest = wire.Manifest.model_validate(VECTOR["manifest"])
    message = wire.EventMessage(manifest=manifest, signature=VECTOR["signature_base64"], key_id=VECTOR["key_id"])
    assert message.model_dump_json() == VECTOR["event_message_json"]
    assert "dropped" not in json.loads(VECTOR["event_message_json"])
    clip = VECTOR["files"][0]["sha256"]
    with_dropped = wire.EventMessage.model_validate_json(VECTOR["event_message_with_dropped_json"])
    assert with_dropped.dropped == [clip] and with_dropped.manifest == manifest
    assert with_dropped.model_dump_json() == VECTOR["event_message_with_dropped_json"]
    init = wire.FileInit.model_validate_json(VECTOR["file_init_json"])
    assert (init.sha256, init.size, init.event_id) == (clip, VECTOR["files"][0]["size"], manifest.event_id)
    assert init.model_dump_json() == VECTOR["file_init_json"]
    for text in VECTOR["acks_json"].values():
        assert wire.Ack.model_validate_json(text).model_dump_json() == text


def test_topics() -> None:
    t = VECTOR["topics"]
    m = VECTOR["manifest"]
    device, site, camera = m["device_id"], m["site"], m["camera"]
    clip = VECTOR["files"][0]

    def ft(kind: TopicKind, **kw: int) -> str:
        return file_topic(kind, device, site, camera, clip["sha256"], **kw)

    assert t == {
        "status": status_topic(device),
        "stats": stats_topic(device),
        "ack": ack_topic(device),
        "event": event_topic(device, site, camera),
        "file_init": ft(TopicKind.FILE_INIT),
        "file_segment_0": ft(TopicKind.FILE_SEGMENT, offset=0),
        "file_segment_1024": ft(TopicKind.FILE_SEGMENT, offset=1024),
        "file_fin": ft(TopicKind.FILE_FIN, size=clip["size"]),
    }
    assert t["file_fin"].endswith(f"/fin/{clip['size']}") and t["event"] == "gw/v1/edge-01/site-a/cam-1/event"
    for topic in t.values():
        assert str(parse_topic(topic)) == topic


# -- the central's verify path ----------------------------------------------------------------------


def device() -> DeviceConfig:
    return DeviceConfig(device_id="edge-01", public_key_pem=VECTOR["public_key_pem"])


@pytest.mark.parametrize("which", ["event_message_json", "event_message_with_dropped_json"])
def test_the_central_accepts_the_vector(which: str) -> None:
    verified = verify_event(parse_topic(VECTOR["topics"]["event"]), VECTOR[which].encode(), device())
    assert verified.manifest_json == VECTOR["canonical_manifest"]
    assert message_id(verified.manifest_json) == VECTOR["message_id"]
    assert verified.message.manifest.event_id == VECTOR["manifest"]["event_id"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"zone":"z1"', '"zone":"z2"'),  # where
        ('"confidence":0.87', '"confidence":0.97'),  # what was seen
        ("03:52:15.123Z", "03:52:15.124Z"),  # when
        ('"size":1550', '"size":1551'),  # which evidence
    ],
)
def test_the_central_refuses_a_one_byte_change(old: str, new: str) -> None:
    payload = VECTOR["event_message_json"]
    assert payload.count(old) == 1 and len(old) == len(new)
    changed = payload.replace(old, new).encode()
    assert sum(a != b for a, b in zip(changed, payload.encode(), strict=True)) == 1
    with pytest.raises(Refusal) as refused:
        verify_event(parse_topic(VECTOR["topics"]["event"]), changed, device())
    assert refused.value.reason == "bad_signature"
    assert refused.value.ack == ("event", VECTOR["manifest"]["event_id"]) and refused.value.kind == "confirmed"


def test_no_one_byte_change_of_the_manifest_or_signature_changes_what_is_filed() -> None:
    """Every byte flipped in turn: refused, or accepted with the very same canonical manifest.

    (Only spellings RFC 8785 maps to the same bytes survive, e.g. 1.0 written 1e0.)
    """
    payload = VECTOR["event_message_json"].encode()
    start = payload.index(b'"manifest":')
    end = payload.index(b'"key_id"')
    topic = parse_topic(VECTOR["topics"]["event"])
    dev = device()
    for i in range(start, end):
        changed = payload[:i] + bytes([payload[i] ^ 0x01]) + payload[i + 1 :]
        try:
            verified = verify_event(topic, changed, dev)
        except Refusal:
            continue
        assert verified.manifest_json == VECTOR["canonical_manifest"], changed[i - 20 : i + 20]


def test_docs_show_the_vector() -> None:
    doc = (REPO / "docs" / "protocol.md").read_text()
    values = [
        VECTOR["seed_hex"],
        VECTOR["public_key_raw_hex"],
        VECTOR["key_id"],
        VECTOR["public_key_pem"].strip(),
        VECTOR["canonical_manifest"],
        VECTOR["signature_base64"],
        VECTOR["message_id"],
        VECTOR["event_message_json"],
        VECTOR["event_message_with_dropped_json"],
        VECTOR["file_init_json"],
        *VECTOR["acks_json"].values(),
        *VECTOR["topics"].values(),
        *(f["sha256"] for f in VECTOR["files"]),
    ]
    absent = [v[:60] for v in values if v not in doc]
    assert not absent, f"docs/protocol.md lacks: {absent}"
