"""`garbagewatch verify`: an evidence bundle checked offline against a device key fingerprint."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

import wire
from garbagewatch.verify import main, verify_bundle
from wire.bundle import FORMAT, BundleEntry, media_path, write_bundle
from wire.signing import public_key_pem

CLIP = b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8
SNAP = b"\xff\xd8\xff\xe0" + b"jpeg" * 300


def make_bundle(tmp_path: Path, device: wire.DeviceKey, central: wire.DeviceKey) -> Path:
    files = [("clip", "clip.mp4", "video/mp4", CLIP), ("snapshot", "snapshot.jpg", "image/jpeg", SNAP)]
    manifest = {
        "protocol": 1,
        "event_id": "0123456789abcdef",
        "kind": "confirmed",
        "device_id": "box-1",
        "site": "site-1",
        "camera": "cam-1",
        "zone": "all",
        "first_seen": "2026-11-26T03:00:00.000Z",
        "at": "2026-11-26T03:01:00.000Z",
        "clock_synced": True,
        "frame_size": [1280, 720],
        "detections": [{"class_name": "garbage", "confidence": 0.9, "box": [1, 2, 3, 4]}],
        "model": {"name": "garbagewatch", "sha256": "0" * 64},
        "files": [
            {"role": r, "name": n, "media_type": t, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for r, n, t, d in files
        ],
    }
    canonical = wire.canonical_json(manifest)
    message_id = hashlib.sha256(canonical).hexdigest()
    # Audit rows and the checkpoint in the central's own shapes (central/audit/chain.py, checkpoints.py).
    rows, prev = [], "0" * 64
    for seq, action in enumerate(["order.register", "order.export"], 1):
        row = {
            "seq": seq,
            "at": "2026-11-26T04:00:00.000Z",
            "actor": "user:auditor-1",
            "action": action,
            "subject": "order:WO-1",
            "reason": "",
            "detail": "null",
            "prev_sha256": prev,
        }
        row["sha256"] = prev = hashlib.sha256(wire.canonical_json(row)).hexdigest()
        rows.append(row)
    body = {"seq": 1, "count": 2, "head_sha256": prev, "at": "2026-11-26T04:00:01.000Z", "key_id": central.key_id}
    checkpoint = {"checkpoint": body, "signature": wire.sign_manifest(central, body)}
    index = {"format": FORMAT, "events": [{"message_id": message_id}], "audit": {"order_rows": [1, 2]}}
    entries = [
        BundleEntry("bundle.json", json.dumps(index).encode()),
        BundleEntry(f"events/{message_id}/manifest.json", canonical),
        BundleEntry(f"events/{message_id}/signature.b64", wire.sign_manifest(device, manifest).encode()),
        BundleEntry("device/public_key.pem", public_key_pem(device.public).encode()),
        BundleEntry("audit/rows.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode()),
        BundleEntry("audit/checkpoint.json", json.dumps(checkpoint).encode()),
        BundleEntry("audit/central_public_key.pem", public_key_pem(central.public).encode()),
        *[BundleEntry(media_path(hashlib.sha256(d).hexdigest(), t), d) for _, _, t, d in files],
    ]
    path = tmp_path / "bundle.zip"
    path.write_bytes(write_bundle(entries))
    return path


def rewrite(path: Path, member: str, change: bytes | None, fix_sums: bool = False) -> None:
    """Replace (or with None, delete) one member, optionally recomputing SHA256SUMS like a forger would."""
    with zipfile.ZipFile(path) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    if change is None:
        del members[member]
    else:
        members[member] = change
    if fix_sums:
        members["SHA256SUMS"] = "".join(
            f"{hashlib.sha256(d).hexdigest()}  {n}\n" for n, d in sorted(members.items()) if n != "SHA256SUMS"
        ).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    path.write_bytes(buf.getvalue())


@pytest.fixture
def keys() -> tuple[wire.DeviceKey, wire.DeviceKey]:
    return wire.DeviceKey.from_seed(bytes(range(32))), wire.DeviceKey.from_seed(bytes(range(1, 33)))


def test_an_untouched_bundle_verifies(
    tmp_path: Path, keys: tuple[wire.DeviceKey, wire.DeviceKey], capsys: pytest.CaptureFixture[str]
) -> None:
    device, central = keys
    bundle = make_bundle(tmp_path, device, central)
    assert main([str(bundle), "--device-key", device.key_id, "--central-key", central.key_id]) == 0
    assert capsys.readouterr().out.strip().endswith("VERIFIED")


def test_another_devices_fingerprint_is_refused(tmp_path: Path, keys: tuple[wire.DeviceKey, wire.DeviceKey]) -> None:
    device, central = keys
    verdict = verify_bundle(make_bundle(tmp_path, device, central), central.key_id)
    assert not verdict.passed
    assert any("not signed by that device" in f for f in verdict.failures)


def test_one_changed_byte_in_the_clip_is_named_even_with_forged_sums(
    tmp_path: Path, keys: tuple[wire.DeviceKey, wire.DeviceKey]
) -> None:
    device, central = keys
    bundle = make_bundle(tmp_path, device, central)
    clip_path = media_path(hashlib.sha256(CLIP).hexdigest(), "video/mp4")
    tampered = bytearray(CLIP)
    tampered[100] ^= 1
    rewrite(bundle, clip_path, bytes(tampered), fix_sums=True)
    failures = verify_bundle(bundle, device.key_id).failures
    assert failures == [f"{clip_path}: content differs from the signed manifest's sha256/size (the clip was changed)"]


def test_an_edited_manifest_fails_its_signature(tmp_path: Path, keys: tuple[wire.DeviceKey, wire.DeviceKey]) -> None:
    device, central = keys
    bundle = make_bundle(tmp_path, device, central)
    with zipfile.ZipFile(bundle) as zf:
        name = next(n for n in zf.namelist() if n.endswith("manifest.json"))
        manifest = json.loads(zf.read(name))
    manifest["at"] = "2026-11-27T03:01:00.000Z"
    rewrite(bundle, name, wire.canonical_json(manifest), fix_sums=True)
    assert any("signature does not verify" in f for f in verify_bundle(bundle, device.key_id).failures)


def test_unlisted_missing_and_audit_edits_are_each_reported(
    tmp_path: Path, keys: tuple[wire.DeviceKey, wire.DeviceKey]
) -> None:
    device, central = keys
    bundle = make_bundle(tmp_path, device, central)
    snap_path = media_path(hashlib.sha256(SNAP).hexdigest(), "image/jpeg")
    rewrite(bundle, snap_path, None)
    rewrite(bundle, "extra.txt", b"hello")
    with zipfile.ZipFile(bundle) as zf:
        rows = zf.read("audit/rows.jsonl").replace(b"auditor-1", b"auditor-2", 1)
    rewrite(bundle, "audit/rows.jsonl", rows)
    failures = "\n".join(verify_bundle(bundle, device.key_id).failures)
    assert f"{snap_path}: listed in SHA256SUMS but missing" in failures
    assert "extra.txt: present in the bundle but not listed" in failures
    assert "audit/rows.jsonl line 1 (seq 1): its hash does not match" in failures
    assert "audit/rows.jsonl: sha256 differs from SHA256SUMS" in failures


def test_unsafe_member_names_and_non_zips_are_refused(tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../etc/passwd", b"x")
    assert any("unsafe" in f for f in verify_bundle(evil, "ed25519:00").failures)
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    assert verify_bundle(junk, "ed25519:00").failures[0].startswith(f"{junk}: not a readable zip")


def test_a_removed_or_rewritten_audit_row_and_a_forged_checkpoint_are_named(
    tmp_path: Path, keys: tuple[wire.DeviceKey, wire.DeviceKey]
) -> None:
    device, central = keys
    bundle = make_bundle(tmp_path, device, central)
    with zipfile.ZipFile(bundle) as zf:
        lines = zf.read("audit/rows.jsonl").decode().splitlines()
    rewrite(bundle, "audit/rows.jsonl", (lines[1] + "\n").encode(), fix_sums=True)  # row 1 removed
    failures = "\n".join(verify_bundle(bundle, device.key_id).failures)
    assert "bundle.json names the order's audit rows [1] but audit/rows.jsonl lacks them" in failures

    bundle = make_bundle(tmp_path, device, central)
    with zipfile.ZipFile(bundle) as zf:
        checkpoint = json.loads(zf.read("audit/checkpoint.json"))
    checkpoint["checkpoint"]["count"] = 1
    rewrite(bundle, "audit/checkpoint.json", json.dumps(checkpoint).encode(), fix_sums=True)
    assert verify_bundle(bundle, device.key_id).failures == [
        "audit/checkpoint.json: the central's signature does not verify"
    ]

    other = wire.DeviceKey.from_seed(bytes(range(2, 34)))
    assert any(
        "not the central key" in f
        for f in verify_bundle(make_bundle(tmp_path, device, central), device.key_id, other.key_id).failures
    )
