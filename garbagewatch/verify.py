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
they are checked against their sha256 only, and said so. A file a signed manifest lists may be
absent only when it was deleted under the central's retention policy and the signed audit chain
says so: an `evidence.purge` row for exactly its sha256 among the rows the checkpoint vouches
for, the checkpoint's key pinned by --central-key; it is printed as purged, with the date.
bundle.json's own word (purged, or dropped by the edge before delivery) is unsigned and excuses
nothing. Every failure is printed as one line
saying exactly what is wrong.
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
from garbagewatch.verify_audit import check_audit
from wire.bundle import FORMAT, SUMS, media_path

MAX_MEMBER_BYTES = 512 * 1024 * 1024
MAX_MEMBERS = 10_000
# The audit action the central's retention sweep writes for each deleted file, subject
# `evidence:<sha256>` (central.retention.purged.PURGE_ACTION; the bundle carries its rows as they are).
PURGE_ACTION = "evidence.purge"

__all__ = ["Verdict", "main", "verify_bundle"]


@dataclass
class Verdict:
    ok_lines: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    purged: list[str] = field(default_factory=list)  # signed files absent because retention deleted them

    def ok(self, text: str) -> None:
        self.ok_lines.append(text)

    def gone(self, text: str) -> None:
        self.purged.append(text)

    def fail(self, text: str) -> None:
        self.failures.append(text)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class _Absent:
    """A file a signed manifest lists that the bundle lacks: excused only by a signed purge row."""

    path: str
    sha256: str
    role: str


def _printable(value: object, limit: int = 200) -> str:
    """Unsigned (or merely stored) text from the bundle, safe to print on one terminal line."""
    text = " ".join(str(value).split())[:limit]
    return "".join(c if c.isprintable() else "?" for c in text)


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


def _check_events(
    members: dict[str, bytes], index: dict[str, Any], fingerprint: str, verdict: Verdict
) -> tuple[set[str], list[_Absent]]:
    """Check the device key and every signed event; return the media paths the signed manifests
    cover, and the files they list that the bundle lacks (judged once the audit rows are read)."""
    covered: set[str] = set()
    absent: list[_Absent] = []
    events = index.get("events") or []
    if not events:
        verdict.fail("bundle.json lists no event: nothing in this bundle is signed by a device")
        return covered, absent
    pem = members.get("device/public_key.pem")
    if pem is None:
        verdict.fail("device/public_key.pem is missing")
        return covered, absent
    try:
        key = wire.public_key_from_pem(pem)
    except wire.WireError as exc:
        verdict.fail(f"device/public_key.pem: {exc}")
        return covered, absent
    if wire.fingerprint(key) != fingerprint:
        verdict.fail(
            f"device key fingerprint is {wire.fingerprint(key)}, not the {fingerprint} you gave: "
            "this bundle was not signed by that device"
        )
        return covered, absent
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
                if path not in {a.path for a in absent}:  # two events may list the same file
                    absent.append(_Absent(path, sha, role))
            elif hashlib.sha256(data).hexdigest() != sha or len(data) != size:
                verdict.fail(f"{path}: content differs from the signed manifest's sha256/size (the {role} was changed)")
            else:
                verdict.ok(f"{path}: {role} matches the signed manifest")
    return covered, absent


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


def _check_absent(
    absent: list[_Absent], index: dict[str, Any], chain: list[dict[str, Any]], pinned: bool, verdict: Verdict
) -> None:
    """Each signed file the bundle lacks: purged (the signed chain holds its `evidence.purge` row,
    and the chain's key is pinned by --central-key) or a failure, which repeats what the bundle
    claims so the reader sees it is only a claim.

    Why the pin: a key taken from the bundle is not trusted (see the module's docstring), and a
    forger holding a key of their own could sign a chain with a purge row for a clip they removed.
    """
    purges: dict[str, dict[str, Any]] = {}
    for row in chain:  # in seq order: a file purged, stored again and purged again keeps its last purge
        subject = row.get("subject")
        if row.get("action") == PURGE_ACTION and isinstance(subject, str) and subject.startswith("evidence:"):
            purges[subject.removeprefix("evidence:")] = row
    listed = index.get("missing")
    claims = {
        str(m["sha256"]): m
        for m in (listed if isinstance(listed, list) else [])
        if isinstance(m, dict) and "sha256" in m
    }
    for f in absent:
        purge = purges.get(f.sha256)
        text = f"{f.path}: the signed manifest lists this {f.role} but the bundle lacks it"
        if purge is not None:
            day, why = _printable(purge.get("at"))[:10], _printable(purge.get("reason"))
            if pinned:
                verdict.gone(
                    f"{f.path}: {f.role} purged on {day} (retention), as audit row seq {purge.get('seq')}"
                    f" of the signed chain records: {why}"
                )
            else:
                verdict.fail(
                    f"{text}; the audit chain says it was purged on {day} (retention), but its key came with"
                    " the bundle: give --central-key to trust it"
                )
            continue
        claim = claims.get(f.sha256) or {}
        if claim.get("purged_at"):
            text += (
                f"; bundle.json says it was purged {_printable(claim['purged_at'])}, but no {PURGE_ACTION}"
                " row for it is in the signed audit chain"
            )
        elif claim.get("reason"):
            text += f"; bundle.json says: {_printable(claim['reason'])} (unsigned: nothing signed confirms it)"
        verdict.fail(text)


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
    covered, absent = _check_events(members, index, device_key, verdict)
    _check_uploads(members, index, covered, verdict)
    chain = check_audit(members, index, central_key, verdict)
    _check_absent(absent, index, chain, central_key is not None, verdict)
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
    for line in verdict.purged:
        print(f"gone  {line}")
    for line in verdict.failures:
        print(f"FAIL  {line}")
    if not verdict.passed:
        print(f"NOT VERIFIED: {len(verdict.failures)} problem(s)")
    elif verdict.purged:
        print(f"VERIFIED ({len(verdict.purged)} file(s) purged under the retention policy, as the audit chain records)")
    else:
        print("VERIFIED")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
