"""The evidence bundle: a zip an auditor can verify offline, trusting only a device key fingerprint.

Written by the central's export, read by `garbagewatch verify`. Layout (docs/protocol.md, "Evidence bundle"):

    bundle.json                          what is inside: order, events, device, exporter
    events/<message_id>/manifest.json    the manifest, exactly the canonical bytes the device signed
    events/<message_id>/signature.b64    the device's Ed25519 signature (base64)
    device/public_key.pem                the device's public key (checked against the given fingerprint)
    media/<sha256>.<mp4|jpg>             every evidence file, named by its content hash
    audit/rows.jsonl                     the order's audit rows (each carries its own and the previous hash)
    audit/checkpoint.json                the latest signed checkpoint of the audit chain
    audit/central_public_key.pem         the key that signed the checkpoint
    SHA256SUMS                           "<sha256>  <path>" for every other file
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

FORMAT = "garbagewatch-evidence-bundle/1"
SUMS = "SHA256SUMS"
MEDIA_EXT = {"video/mp4": "mp4", "image/jpeg": "jpg"}


@dataclass(frozen=True)
class BundleEntry:
    path: str
    data: bytes


def media_path(sha256: str, media_type: str) -> str:
    return f"media/{sha256}.{MEDIA_EXT.get(media_type, 'bin')}"


def sums_text(entries: Iterable[BundleEntry]) -> str:
    return "".join(f"{hashlib.sha256(e.data).hexdigest()}  {e.path}\n" for e in sorted(entries, key=lambda e: e.path))


def write_bundle(entries: list[BundleEntry]) -> bytes:
    """The zip bytes: every entry plus SHA256SUMS over them, stored in a stable order."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for e in sorted(entries, key=lambda e: e.path):
            # Already-compressed media is stored as is; JSON and text are deflated.
            kind = zipfile.ZIP_STORED if e.path.startswith("media/") else zipfile.ZIP_DEFLATED
            zf.writestr(zipfile.ZipInfo(e.path, date_time=(2000, 1, 1, 0, 0, 0)), e.data, compress_type=kind)
        zf.writestr(zipfile.ZipInfo(SUMS, date_time=(2000, 1, 1, 0, 0, 0)), sums_text(entries))
    return buf.getvalue()
