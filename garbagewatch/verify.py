"""`garbagewatch verify BUNDLE.zip --device-key FINGERPRINT`: check an evidence bundle offline.

Trusts nothing in the bundle except what the fingerprint, obtained out of band (from the box's
installer, the device register, a printed label), confirms: the device's public key in the
bundle must have that fingerprint, every manifest must carry that key's signature, every media
file must have the sha256 and size its signed manifest lists, and SHA256SUMS must match. The
audit rows must each hash to what they claim and link to their predecessor; the checkpoint is
checked against the central's key, and that key only counts as trusted when --central-key
gives its fingerprint too. The audit rows run without a gap from the order's first row to the
head the checkpoint signs, each naming its predecessor's hash, so no row of the order can be
edited, removed or added without a failure. Photos people uploaded carry no device signature:
they are checked against their sha256 only, and said so. Every failure is printed as one line
saying exactly what is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import wire
from wire.bundle import FORMAT, SUMS, media_path

MAX_MEMBER_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 10_000

__all__ = ["Verdict", "main", "verify_bundle"]


@dataclass
class Verdict:
    ok_lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def ok(self, text: str) -> None:
        self.ok_lines.append(text)

    def fail(self, text: str) -> None:
        self.failures.append(text)

    @property
    def passed(self) -> bool:
        return not self.failures


def _read_members(path: Path, verdict: Verdict) -> dict[str, bytes] | None:
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        verdict.fail(f"{path}: not a readable zip file: {exc}")
        return None
    members: dict[str, bytes] = {}
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            verdict.fail(f"{path}: {len(infos)} members is more than a bundle holds")
            return None
        for info in infos:
            name = info.filename
            parts = PurePosixPath(name).parts
            if name.startswith("/") or ".." in parts or "\\" in name or info.is_dir():
                verdict.fail(f"{name}: unsafe or unexpected member name")
                continue
            if info.file_size > MAX_MEMBER_BYTES:
                verdict.fail(f"{name}: {info.file_size} bytes is larger than any evidence file")
                continue
            try:
                members[name] = zf.read(info)
            except (zipfile.BadZipFile, OSError) as exc:  # a CRC error: a byte of it changed
                verdict.fail(f"{name}: cannot be read from the zip ({exc})")
    return members


def _check_sums(members: dict[str, bytes], verdict: Verdict) -> None:
    if SUMS not in members:
        verdict.fail(f"{SUMS} is missing")
        return
    listed: dict[str, str] = {}
    for n, line in enumerate(members[SUMS].decode("utf-8", "replace").splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            verdict.fail(f"{SUMS} line {n} is malformed")
            continue
        listed[name] = digest
    for name, data in members.items():
        if name == SUMS:
            continue
        if name not in listed:
            verdict.fail(f"{name}: present in the bundle but not listed in {SUMS}")
        elif hashlib.sha256(data).hexdigest() != listed[name]:
            verdict.fail(f"{name}: sha256 differs from {SUMS} (the file was changed)")
    for name in listed.keys() - members.keys():
        verdict.fail(f"{name}: listed in {SUMS} but missing from the bundle")
    verdict.ok(f"{SUMS}: {len(listed)} files checked")


def _signed_files(manifest: dict[str, Any], base: str, verdict: Verdict) -> list[tuple[str, str, str, int]]:
    """(sha256, media_type, role, size) of each file the manifest lists; a malformed entry is a failure."""
    out = []
    for n, f in enumerate(manifest.get("files", [])):
        try:
            out.append((str(f["sha256"]), str(f["media_type"]), str(f["role"]), int(f["size"])))
        except (KeyError, TypeError, ValueError):
            verdict.fail(f"{base}/manifest.json: file entry {n} lacks sha256, media_type, role or size")
    return out


def _check_events(members: dict[str, bytes], index: dict[str, Any], fingerprint: str, verdict: Verdict) -> set[str]:
    """Check the device key and every signed event; return the media paths the signed manifests cover."""
    covered: set[str] = set()
    events = index.get("events") or []
    if not events:
        verdict.fail("bundle.json lists no event: nothing in this bundle is signed by a device")
        return covered
    pem = members.get("device/public_key.pem")
    if pem is None:
        verdict.fail("device/public_key.pem is missing")
        return covered
    try:
        key = wire.public_key_from_pem(pem)
    except wire.WireError as exc:
        verdict.fail(f"device/public_key.pem: {exc}")
        return covered
    if wire.fingerprint(key) != fingerprint:
        verdict.fail(
            f"device key fingerprint is {wire.fingerprint(key)}, not the {fingerprint} you gave: "
            "this bundle was not signed by that device"
        )
        return covered
    verdict.ok(f"device key matches {fingerprint}")
    for event in events:
        mid = str(event.get("message_id", "")) if isinstance(event, dict) else ""
        base = f"events/{mid}"
        raw, sig = members.get(f"{base}/manifest.json"), members.get(f"{base}/signature.b64")
        if raw is None or sig is None:
            verdict.fail(f"{base}: manifest or signature missing")
            continue
        try:
            manifest = json.loads(raw)
            canonical = wire.canonical_json(manifest)
        except (ValueError, wire.WireError) as exc:
            verdict.fail(f"{base}/manifest.json: not valid JSON: {exc}")
            continue
        if canonical != raw:
            verdict.fail(f"{base}/manifest.json: not in canonical form (it was edited)")
        if not wire.verify_manifest(key, manifest, sig.decode("ascii", "replace").strip()):
            verdict.fail(f"{base}: the device's signature does not verify: the manifest is not what the camera signed")
            continue
        if hashlib.sha256(raw).hexdigest() != mid:
            verdict.fail(f"{base}: the folder name is not the sha256 of the manifest it holds")
        verdict.ok(f"{base}: {manifest.get('kind')} at {manifest.get('at')} signed by the device")
        for sha, media_type, role, size in _signed_files(manifest, base, verdict):
            path = media_path(sha, media_type)
            covered.add(path)
            data = members.get(path)
            if data is None:
                verdict.fail(f"{path}: the signed manifest lists this {role} but the bundle lacks it")
            elif hashlib.sha256(data).hexdigest() != sha or len(data) != size:
                verdict.fail(f"{path}: content differs from the signed manifest's sha256/size (the {role} was changed)")
            else:
                verdict.ok(f"{path}: {role} matches the signed manifest")
    return covered


def _check_uploads(members: dict[str, bytes], index: dict[str, Any], covered: set[str], verdict: Verdict) -> None:
    """Photos people uploaded (no device signature): each must hash to its name; nothing else may ride along."""
    uploads = {}
    for u in index.get("uploads") or []:
        if isinstance(u, dict) and isinstance(u.get("sha256"), str):
            uploads[media_path(u["sha256"], str(u.get("media_type", "")))] = u
    for name in sorted(n for n in members if n.startswith("media/") and n not in covered):
        upload = uploads.get(name)
        if upload is None:
            verdict.fail(f"{name}: neither a signed manifest nor bundle.json's uploads list it")
        elif hashlib.sha256(members[name]).hexdigest() != upload["sha256"]:
            verdict.fail(f"{name}: content differs from its sha256 (the uploaded {upload.get('role')} was changed)")
        else:
            verdict.ok(
                f"{name}: {upload.get('role')} uploaded by {upload.get('uploaded_by')} matches its sha256 "
                "(a person's upload: no device signature)"
            )


def _audit_rows(members: dict[str, bytes], verdict: Verdict) -> list[dict[str, Any]] | None:
    rows_raw = members.get("audit/rows.jsonl")
    if rows_raw is None:
        verdict.fail("audit/rows.jsonl is missing")
        return None
    rows: list[dict[str, Any]] = []
    bad = 0
    for n, line in enumerate(rows_raw.decode("utf-8", "replace").splitlines(), 1):
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not an object")
            body = {k: v for k, v in row.items() if k != "sha256"}
            recomputed = hashlib.sha256(wire.canonical_json(body)).hexdigest()
        except (ValueError, wire.WireError):
            verdict.fail(f"audit/rows.jsonl line {n}: not a JSON object")
            bad += 1
            continue
        if row.get("sha256") != recomputed:
            verdict.fail(f"audit/rows.jsonl line {n} (seq {row.get('seq')}): its hash does not match its content")
            bad += 1
        rows.append(row)
    if rows and not bad:
        verdict.ok(f"audit rows: {len(rows)} rows each hash to their recorded sha256")
    for before, row in itertools.pairwise(rows):
        if not isinstance(row.get("seq"), int) or not isinstance(before.get("seq"), int):
            verdict.fail(f"audit/rows.jsonl: a row without an integer seq after seq {before.get('seq')}")
        elif row["seq"] != before["seq"] + 1:
            verdict.fail(
                f"audit/rows.jsonl: seq {before['seq']} is followed by seq {row['seq']}: rows between them were removed"
            )
        elif row.get("prev_sha256") != before.get("sha256"):
            verdict.fail(
                f"audit/rows.jsonl: seq {row['seq']} does not link to seq {before['seq']} "
                "(its prev_sha256 differs): a row was replaced"
            )
    return rows


def _checkpoint(members: dict[str, bytes], central_key: str | None, verdict: Verdict) -> dict[str, Any] | None:
    """The signed checkpoint body (the central's own format: {"checkpoint": {...}, "signature": ...})."""
    cp_raw, pem = members.get("audit/checkpoint.json"), members.get("audit/central_public_key.pem")
    if cp_raw is None or pem is None:
        verdict.fail("audit checkpoint or the central's public key is missing")
        return None
    try:
        doc = json.loads(cp_raw)
        body, signature = doc["checkpoint"], doc["signature"]
        if set(body) != {"seq", "count", "head_sha256", "at", "key_id"} or not isinstance(signature, str):
            raise ValueError("fields are not checkpoint {seq, count, head_sha256, at, key_id} and signature")
        key = wire.public_key_from_pem(pem)
        good = wire.verify_manifest(key, body, signature)
    except (ValueError, KeyError, TypeError, wire.WireError) as exc:
        verdict.fail(f"audit/checkpoint.json: unreadable: {exc}")
        return None
    if not good:
        verdict.fail("audit/checkpoint.json: the central's signature does not verify")
        return None
    if body["key_id"] != wire.fingerprint(key):
        verdict.fail(
            f"audit/checkpoint.json: names key {body['key_id']} but the bundle's central key is {wire.fingerprint(key)}"
        )
        return None
    if central_key and wire.fingerprint(key) != central_key:
        verdict.fail(f"audit checkpoint signed by {wire.fingerprint(key)}, not the central key {central_key}")
        return None
    trust = "matches --central-key" if central_key else "key taken from the bundle (give --central-key to pin it)"
    verdict.ok(f"audit checkpoint #{body['seq']} of {body['at']} signed by the central ({trust})")
    return dict(body)


def _check_audit(members: dict[str, bytes], index: dict[str, Any], central_key: str | None, verdict: Verdict) -> None:
    rows = _audit_rows(members, verdict)
    checkpoint = _checkpoint(members, central_key, verdict)
    if not rows or checkpoint is None:
        if rows == []:
            verdict.fail("audit/rows.jsonl holds no row")
        return
    last = rows[-1]
    if last.get("seq") != checkpoint["count"]:
        verdict.fail(
            f"audit rows end at seq {last.get('seq')} but the checkpoint signs the chain up to seq "
            f"{checkpoint['count']}: rows are missing or were added"
        )
    elif last.get("sha256") != checkpoint["head_sha256"]:
        verdict.fail(f"audit row seq {last.get('seq')} is not the head the checkpoint signed: the rows were rewritten")
    else:
        verdict.ok(f"audit rows {rows[0].get('seq')}..{last.get('seq')} link up to the signed head")
    wanted = (index.get("audit") or {}).get("order_rows") or []
    have = {r.get("seq") for r in rows}
    lacking = [s for s in wanted if s not in have]
    if lacking:
        verdict.fail(f"bundle.json names the order's audit rows {lacking[:10]} but audit/rows.jsonl lacks them")
    elif wanted:
        verdict.ok(f"the order's {len(wanted)} audit rows are in the signed chain")


def verify_bundle(path: Path, device_key: str, central_key: str | None = None) -> Verdict:
    verdict = Verdict()
    members = _read_members(path, verdict)
    if members is None:
        return verdict
    _check_sums(members, verdict)
    try:
        index = json.loads(members.get("bundle.json", b"{}"))
        if not isinstance(index, dict):
            raise ValueError("not an object")
    except ValueError:
        verdict.fail("bundle.json: not a JSON object")
        return verdict
    if index.get("format") != FORMAT:
        verdict.fail(f"bundle.json: format {index.get('format')!r} is not {FORMAT}")
        return verdict
    covered = _check_events(members, index, device_key, verdict)
    _check_uploads(members, index, covered, verdict)
    _check_audit(members, index, central_key, verdict)
    return verdict


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="garbagewatch verify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("bundle", type=Path)
    p.add_argument("--device-key", required=True, help="the device key fingerprint, e.g. ed25519:56475aa7...")
    p.add_argument("--central-key", help="the central's checkpoint key fingerprint, to pin it too")
    args = p.parse_args(argv)
    verdict = verify_bundle(args.bundle, args.device_key, args.central_key)
    for line in verdict.ok_lines:
        print(f"ok    {line}")
    for line in verdict.failures:
        print(f"FAIL  {line}")
    print("VERIFIED" if verdict.passed else f"NOT VERIFIED: {len(verdict.failures)} problem(s)")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
