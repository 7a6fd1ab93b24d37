"""Signed checkpoints of the audit chain head, and the central's audit signing key.

A checkpoint is {seq, count, head_sha256, at, key_id}, signed with Ed25519 over its RFC 8785
bytes (wire.signing), and published where someone who controls the server cannot take it back:
retained on MQTT at CHECKPOINT_TOPIC and appended to data_dir/audit-checkpoints.jsonl (for
copying off the server). `count` is the number of rows it covers (the seq of the head row);
`seq` numbers the checkpoints themselves.

One line / one MQTT payload:
    {"checkpoint": {"at": ..., "count": ..., "head_sha256": ..., "key_id": ..., "seq": ...},
     "signature": "<base64>"}
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlite_utils import Database

from central.audit.chain import chain_head
from central.timefmt import utc_iso
from wire.errors import WireError
from wire.ids import SHA256_HEX
from wire.signing import DeviceKey, load_public_key, sign_manifest, verify_manifest

__all__ = [
    "CHECKPOINT_FILE",
    "CHECKPOINT_TOPIC",
    "PRIVATE_KEY_FILE",
    "PUBLIC_KEY_FILE",
    "Checkpoint",
    "CheckpointError",
    "append_checkpoint_file",
    "issue_checkpoint",
    "latest_checkpoint",
    "load_or_create_key",
    "load_public_key_of",
    "read_checkpoint_file",
    "stored_checkpoints",
]

# Outside gw/v1/{device}/...: a broker ACL that confines each device to its own subtree keeps
# devices away from it; only the central's MQTT user may publish here.
CHECKPOINT_TOPIC = "gw/central/v1/audit/checkpoint"
CHECKPOINT_FILE = "audit-checkpoints.jsonl"
PRIVATE_KEY_FILE = "audit-key.pem"
PUBLIC_KEY_FILE = "audit-key.pub.pem"


class CheckpointError(ValueError):
    """A checkpoint text that cannot be read; the text says what is wrong."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    count: int
    head_sha256: str
    at: str
    key_id: str
    signature: str

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "count": self.count,
            "head_sha256": self.head_sha256,
            "at": self.at,
            "key_id": self.key_id,
        }

    def to_json(self) -> str:
        return json.dumps({"checkpoint": self.body(), "signature": self.signature}, sort_keys=True)

    def verify(self, public: Ed25519PublicKey) -> bool:
        return verify_manifest(public, self.body(), self.signature)

    @classmethod
    def parse(cls, text: str | bytes) -> Checkpoint:
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"not JSON: {exc}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("checkpoint"), dict):
            raise CheckpointError("no 'checkpoint' object")
        body, sig = raw["checkpoint"], raw.get("signature")
        if set(body) != {"seq", "count", "head_sha256", "at", "key_id"}:
            raise CheckpointError(f"checkpoint fields are {sorted(body)}, not at/count/head_sha256/key_id/seq")
        ints_ok = all(
            isinstance(body[k], int) and not isinstance(body[k], bool) and body[k] >= 0 for k in ("seq", "count")
        )
        if not ints_ok:
            raise CheckpointError("seq and count must be non-negative integers")
        if not isinstance(body["head_sha256"], str) or not SHA256_HEX.fullmatch(body["head_sha256"]):
            raise CheckpointError("head_sha256 is not 64 lower-case hex digits")
        if not isinstance(body["at"], str) or not isinstance(body["key_id"], str) or not isinstance(sig, str):
            raise CheckpointError("at, key_id and signature must be text")
        return cls(
            seq=body["seq"],
            count=body["count"],
            head_sha256=body["head_sha256"],
            at=body["at"],
            key_id=body["key_id"],
            signature=sig,
        )


def load_or_create_key(data_dir: Path) -> DeviceKey:
    """The central's audit signing key in data_dir (created with mode 0600 at first start)."""
    private = data_dir / PRIVATE_KEY_FILE
    if not private.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # FileExistsError: another process of the central created it first; use theirs.
        with contextlib.suppress(FileExistsError):
            DeviceKey.generate().save(private, data_dir / PUBLIC_KEY_FILE)
    try:
        return DeviceKey.load(private)
    except WireError as exc:
        raise CheckpointError(f"{private}: cannot read the audit signing key: {exc}") from None


def load_public_key_of(path: Path) -> Ed25519PublicKey:
    """A public key PEM file (the one next to the private key, or a copy kept off the server)."""
    try:
        return load_public_key(path)
    except WireError as exc:
        raise CheckpointError(str(exc)) from None


def latest_checkpoint(db: Database) -> Checkpoint | None:
    rows = list(db.query("SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1"))
    return _from_row(rows[0]) if rows else None


def stored_checkpoints(db: Database) -> list[Checkpoint]:
    return [_from_row(r) for r in db.query("SELECT * FROM audit_checkpoints ORDER BY seq")]


def _from_row(r: dict[str, Any]) -> Checkpoint:
    return Checkpoint(
        seq=r["seq"],
        count=r["count"],
        head_sha256=r["head_sha256"],
        at=r["at"],
        key_id=r["key_id"],
        signature=r["signature"],
    )


def issue_checkpoint(db: Database, key: DeviceKey, now: float) -> Checkpoint:
    """Sign the current head and record the checkpoint in the database (its own transaction)."""
    conn = db.conn
    # IMMEDIATE: take the write lock before reading the head, so the head signed is the head
    # when the checkpoint row commits (a deferred read-then-write can fail on a busy snapshot).
    conn.execute("BEGIN IMMEDIATE")
    try:
        count, head = chain_head(db)
        last = latest_checkpoint(db)
        seq, at = (last.seq if last else 0) + 1, utc_iso(now)
        body = {"seq": seq, "count": count, "head_sha256": head, "at": at, "key_id": key.key_id}
        cp = Checkpoint(seq, count, head, at, key.key_id, signature=sign_manifest(key, body))
        conn.execute(
            "INSERT INTO audit_checkpoints (seq, at, count, head_sha256, key_id, signature) VALUES (?, ?, ?, ?, ?, ?)",
            [cp.seq, cp.at, cp.count, cp.head_sha256, cp.key_id, cp.signature],
        )
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return cp


def append_checkpoint_file(path: Path, cp: Checkpoint) -> None:
    """Append one line and fsync: the export file survives a crash right after issuing."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (cp.to_json() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_checkpoint_file(path: Path) -> Iterator[tuple[int, Checkpoint | CheckpointError]]:
    """(line number, checkpoint or the reason the line is not one) for each non-empty line."""
    with path.open("rb") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield lineno, Checkpoint.parse(line)
            except CheckpointError as exc:
                yield lineno, exc
