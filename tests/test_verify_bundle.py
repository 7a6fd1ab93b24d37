"""`garbagewatch verify`: an evidence bundle checked offline against a device key fingerprint.

The first tests forge bundles by hand; the last ones verify bundles the central exported (its
real export, on a data directory filed the production way) after its retention sweep deleted
an order's files."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from console_seed import ConsoleSeed, clone, seed_console

import wire
from central.audit.chain import AuditTrail
from central.audit.checkpoints import PUBLIC_KEY_FILE
from central.config import RetentionConfig
from central.evidence_store import ContentStore
from central.export.bundle import export_order_bundle
from central.retention.sweep import sweep
from central.store.database import open_database
from central.timefmt import utc_iso
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


# -- bundles the central exported after its retention sweep purged an order's files -------------

DAY = 86400.0


@dataclass(frozen=True)
class Exported:
    """Two bundles of one central, a year after the seed: the closed order's, whose files the
    retention sweep purged, and the open h264 order's, whose files are all there."""

    purged: Path
    intact: Path
    device_key: str
    central_key: str
    purged_on: str  # the UTC day of the purge
    after_snapshot: str  # media path of the closed order's after-snapshot (purged)
    intact_media: dict[str, str]  # role -> media path of the h264 order's files (clip, snapshot, snapshot_boxes)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    seed: ConsoleSeed = seed_console(tmp_path_factory.mktemp("verify-seed"))
    out = tmp_path_factory.mktemp("verify-exports")
    data_dir = clone(seed, out / "central")
    config = seed.config(data_dir)
    closed, intact = seed.orders["closed"], seed.orders["h264"]
    a_year_on = closed.filed_at + 365 * DAY
    db = open_database(config.db_path)
    try:
        store = ContentStore(config.evidence_dir)
        trail = AuditTrail(db, lambda: a_year_on)
        result = sweep(db, store, RetentionConfig(evidence_days=30), a_year_on, audit=trail)
        assert result.purged == 2 and not store.has(closed.files["after_snapshot"])  # the closed order's two
        for order, name in ((closed, "purged.zip"), (intact, "intact.zip")):
            export_order_bundle(
                db,
                order.id,
                config=config,
                store=store,
                actor="user:auditor-1",
                audit=trail,
                now=a_year_on,
                dest=out / name,
            )
    finally:
        db.close()
    central_pem = (data_dir / PUBLIC_KEY_FILE).read_bytes()
    return Exported(
        purged=out / "purged.zip",
        intact=out / "intact.zip",
        device_key=seed.keys["box-1"].key_id,
        central_key=wire.fingerprint(wire.public_key_from_pem(central_pem)),
        purged_on=utc_iso(a_year_on)[:10],
        after_snapshot=media_path(closed.files["after_snapshot"], "image/jpeg"),
        intact_media={
            role: media_path(sha, "video/mp4" if role == "clip" else "image/jpeg") for role, sha in intact.files.items()
        },
    )


def copy_of(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(bundle, tmp_path / bundle.name))


def audit_lines(bundle: Path) -> list[str]:
    with zipfile.ZipFile(bundle) as zf:
        return zf.read("audit/rows.jsonl").decode().splitlines()


def purge_row_of(lines: list[str], media: str) -> int:
    """The line number (0-based) of the `evidence.purge` row of the file at `media`."""
    subject = "evidence:" + media.removeprefix("media/").split(".")[0]
    (n,) = [
        n
        for n, line in enumerate(lines)
        if (r := json.loads(line))["action"] == "evidence.purge" and r["subject"] == subject
    ]
    return n


def test_a_bundle_exported_after_a_purge_verifies_and_names_the_purged_files(
    exported: Exported, capsys: pytest.CaptureFixture[str]
) -> None:
    verdict = verify_bundle(exported.purged, exported.device_key, exported.central_key)
    assert verdict.passed, verdict.failures
    assert len(verdict.purged) == 2  # the confirmed event's snapshot_boxes and the cleared event's after-snapshot
    line = next(p for p in verdict.purged if p.startswith(exported.after_snapshot))
    assert line.startswith(f"{exported.after_snapshot}: after_snapshot purged on {exported.purged_on} (retention)")
    assert "retention: 30 days after WO-" in line  # the purge's reason, as its signed audit row gives it
    assert main([str(exported.purged), "--device-key", exported.device_key, "--central-key", exported.central_key]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"gone  {line}" in out
    assert out[-1] == "VERIFIED (2 file(s) purged under the retention policy, as the audit chain records)"


def test_a_purge_counts_only_with_the_central_key_pinned(exported: Exported) -> None:
    """Without --central-key the chain's key is the bundle's own: a forger's key would do as well."""
    verdict = verify_bundle(exported.purged, exported.device_key)
    assert verdict.purged == []
    assert (
        f"{exported.after_snapshot}: the signed manifest lists this after_snapshot but the bundle lacks it;"
        f" the audit chain says it was purged on {exported.purged_on} (retention), but its key came with the"
        " bundle: give --central-key to trust it" in verdict.failures
    )


def _rehashed(line: str, **change: str) -> str:
    """The row with `change` applied and its own sha256 recomputed, as a forger would."""
    row = {**json.loads(line), **change}
    body = {k: v for k, v in row.items() if k != "sha256"}
    row["sha256"] = hashlib.sha256(wire.canonical_json(body)).hexdigest()
    return json.dumps(row, ensure_ascii=False, sort_keys=True)


@pytest.mark.parametrize("forgery", ["removed", "edited", "edited and rehashed"])
def test_without_its_purge_row_in_the_signed_chain_a_purged_file_fails(
    exported: Exported, tmp_path: Path, forgery: str
) -> None:
    bundle = copy_of(exported.purged, tmp_path)
    lines = audit_lines(bundle)
    n = purge_row_of(lines, exported.after_snapshot)
    if forgery == "removed":
        del lines[n]
    elif forgery == "edited":
        lines[n] = lines[n].replace("retention: 30 days", "retention: 3 days")
    else:  # its hash fits its content again, but its successor names the real row's hash
        lines[n] = _rehashed(lines[n], at="2020-01-01T00:00:00.000Z")
    rewrite(bundle, "audit/rows.jsonl", ("\n".join(lines) + "\n").encode(), fix_sums=True)
    verdict = verify_bundle(bundle, exported.device_key, exported.central_key)
    assert not verdict.passed
    assert not any(p.startswith(exported.after_snapshot) for p in verdict.purged)
    (failure,) = [f for f in verdict.failures if f.startswith(exported.after_snapshot)]
    assert failure.startswith(
        f"{exported.after_snapshot}: the signed manifest lists this after_snapshot but the bundle lacks it;"
        f" bundle.json says it was purged {exported.purged_on}"
    )
    assert failure.endswith("but no evidence.purge row for it is in the signed audit chain")


def test_a_purge_row_outside_the_signed_chain_excuses_nothing(exported: Exported, tmp_path: Path) -> None:
    """A forger deletes a clip and appends a well-formed purge row for it after the signed head."""
    bundle = copy_of(exported.intact, tmp_path)
    with zipfile.ZipFile(bundle) as zf:
        index = json.loads(zf.read("bundle.json"))
    clip = exported.intact_media["clip"]
    sha = clip.removeprefix("media/").removesuffix(".mp4")
    lines = audit_lines(bundle)
    head = json.loads(lines[-1])
    forged = _rehashed(
        lines[-1], seq=head["seq"] + 1, prev_sha256=head["sha256"], action="evidence.purge", subject=f"evidence:{sha}"
    )
    index["missing"] = [{"sha256": sha, "role": "clip", "purged_at": "2027-01-01T00:00:00.000Z"}]
    rewrite(bundle, clip, None)
    rewrite(bundle, "audit/rows.jsonl", ("\n".join([*lines, forged]) + "\n").encode())
    rewrite(bundle, "bundle.json", json.dumps(index).encode(), fix_sums=True)
    verdict = verify_bundle(bundle, exported.device_key, exported.central_key)
    assert verdict.purged == []
    assert any(
        f.startswith(f"{clip}: the signed manifest lists this clip but the bundle lacks it") for f in verdict.failures
    )
    assert any("the checkpoint signs the chain up to seq" in f for f in verdict.failures)


def test_a_file_missing_without_a_purge_row_still_fails_whatever_bundle_json_says(
    exported: Exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = copy_of(exported.intact, tmp_path)
    assert verify_bundle(bundle, exported.device_key, exported.central_key).passed  # before: all there
    with zipfile.ZipFile(bundle) as zf:
        index = json.loads(zf.read("bundle.json"))
    clip, snapshot = exported.intact_media["clip"], exported.intact_media["snapshot"]
    # The clip: bundle.json claims the edge dropped it (an unsigned claim); the snapshot: no word at all.
    dropped = clip.removeprefix("media/").removesuffix(".mp4")
    index["missing"] = [{"sha256": dropped, "role": "clip", "reason": "dropped by the edge before delivery"}]
    rewrite(bundle, clip, None)
    rewrite(bundle, snapshot, None)
    rewrite(bundle, "bundle.json", json.dumps(index).encode(), fix_sums=True)
    verdict = verify_bundle(bundle, exported.device_key, exported.central_key)
    assert verdict.purged == []
    assert [f for f in verdict.failures if f.startswith("media/")] == [
        f"{clip}: the signed manifest lists this clip but the bundle lacks it; bundle.json says:"
        " dropped by the edge before delivery (unsigned: nothing signed confirms it)",
        f"{snapshot}: the signed manifest lists this snapshot but the bundle lacks it",
    ]
    assert main([str(bundle), "--device-key", exported.device_key]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "NOT VERIFIED: 2 problem(s)"
