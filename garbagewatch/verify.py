"""`garbagewatch verify BUNDLE.zip --device-key FINGERPRINT`: check an evidence bundle offline.

Trusts nothing in the bundle except what the fingerprint, obtained out of band (from the box's
installer, the device register, a printed label), confirms: the device's public key in the
bundle must have that fingerprint, every manifest must carry that key's signature, every media
file must have the sha256 and size its signed manifest lists, and SHA256SUMS must match. The
audit rows must each hash to what they claim and link to their predecessor; the checkpoint is
checked against the central's key, and that key only counts as trusted when --central-key
gives its fingerprint too. Every failure is printed as one line saying exactly what is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
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


def _check_events(members: dict[str, bytes], index: dict[str, Any], fingerprint: str, verdict: Verdict) -> None:
    pem = members.get("device/public_key.pem")
    if pem is None:
        verdict.fail("device/public_key.pem is missing")
        return
    try:
        key = wire.public_key_from_pem(pem)
    except wire.WireError as exc:
        verdict.fail(f"device/public_key.pem: {exc}")
        return
    if wire.fingerprint(key) != fingerprint:
        verdict.fail(f"device key fingerprint is {wire.fingerprint(key)}, not the {fingerprint} you gave: "
                     "this bundle was not signed by that device")
        return
    verdict.ok(f"device key matches {fingerprint}")
    for event in index.get("events", []):
        mid = str(event.get("message_id", ""))
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
        verdict.ok(f"{base}: {manifest.get('kind')} at {manifest.get('at')} signed by the device")
        for f in manifest.get("files", []):
            path = media_path(f["sha256"], f["media_type"])
            data = members.get(path)
            if data is None:
                verdict.fail(f"{path}: the signed manifest lists this {f['role']} but the bundle lacks it")
            elif hashlib.sha256(data).hexdigest() != f["sha256"] or len(data) != f["size"]:
                verdict.fail(f"{path}: content differs from the signed manifest's sha256/size (the {f['role']} "
                             "was changed)")
            else:
                verdict.ok(f"{path}: {f['role']} matches the signed manifest")


def _check_audit(members: dict[str, bytes], central_key: str | None, verdict: Verdict) -> None:
    rows_raw = members.get("audit/rows.jsonl")
    if rows_raw is None:
        verdict.fail("audit/rows.jsonl is missing")
        return
    for n, line in enumerate(rows_raw.decode("utf-8", "replace").splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError:
            verdict.fail(f"audit/rows.jsonl line {n}: not JSON")
            continue
        claimed = row.pop("sha256", None)
        if claimed != hashlib.sha256(wire.canonical_json(row)).hexdigest():
            verdict.fail(f"audit/rows.jsonl line {n} (seq {row.get('seq')}): its hash does not match its content")
    verdict.ok("audit rows: each hashes to its recorded sha256")
    cp_raw, pem = members.get("audit/checkpoint.json"), members.get("audit/central_public_key.pem")
    if cp_raw is None or pem is None:
        verdict.fail("audit checkpoint or the central's public key is missing")
        return
    try:
        checkpoint = json.loads(cp_raw)
        key = wire.public_key_from_pem(pem)
        body = {k: v for k, v in checkpoint.items() if k != "signature"}
        good = wire.verify_manifest(key, body, str(checkpoint.get("signature", "")))
    except (ValueError, wire.WireError) as exc:
        verdict.fail(f"audit/checkpoint.json: unreadable: {exc}")
        return
    if not good:
        verdict.fail("audit/checkpoint.json: the central's signature does not verify")
    elif central_key and wire.fingerprint(key) != central_key:
        verdict.fail(f"audit checkpoint signed by {wire.fingerprint(key)}, not the central key {central_key}")
    else:
        trust = "matches --central-key" if central_key else "key taken from the bundle (give --central-key to pin it)"
        verdict.ok(f"audit checkpoint seq {checkpoint.get('seq')} signed by the central ({trust})")


def verify_bundle(path: Path, device_key: str, central_key: str | None = None) -> Verdict:
    verdict = Verdict()
    members = _read_members(path, verdict)
    if members is None:
        return verdict
    _check_sums(members, verdict)
    try:
        index = json.loads(members.get("bundle.json", b"{}"))
    except ValueError:
        verdict.fail("bundle.json: not JSON")
        return verdict
    if index.get("format") != FORMAT:
        verdict.fail(f"bundle.json: format {index.get('format')!r} is not {FORMAT}")
        return verdict
    _check_events(members, index, device_key, verdict)
    _check_audit(members, central_key, verdict)
    return verdict


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="garbagewatch verify", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
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
