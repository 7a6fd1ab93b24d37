"""Recompute the audit chain and hold it against the signed checkpoints.

Finds: an edited row (its content no longer hashes to its sha256, or the next row's link breaks),
a deleted row (a gap in seq, a broken link), a rewritten chain (a checkpoint's head differs from
the row it covers) and a truncated tail (a checkpoint covers more rows than are there). Rows
appended after the latest checkpoint and then removed cannot be told apart from rows never
written: the checkpoint interval bounds that window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlite_utils import Database

from central.audit.chain import GENESIS_SHA256, iter_rows, row_sha256
from central.audit.checkpoints import Checkpoint
from wire.errors import WireError
from wire.signing import fingerprint

__all__ = ["AuditProblem", "AuditReport", "SourcedCheckpoint", "verify_audit"]


@dataclass(frozen=True)
class AuditProblem:
    kind: str  # edited | deleted | broken_link | rewritten | truncated | checkpoint | no_checkpoint
    message: str
    seq: int | None = None


@dataclass(frozen=True)
class SourcedCheckpoint:
    """A checkpoint and where it came from ('file audit-checkpoints.jsonl line 7', 'mqtt', 'database')."""

    checkpoint: Checkpoint
    source: str


@dataclass
class AuditReport:
    rows: int = 0
    last_seq: int = 0
    head_sha256: str = GENESIS_SHA256
    checkpoints_valid: int = 0
    latest: SourcedCheckpoint | None = None
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.ok:
            assert self.latest is not None
            cp = self.latest.checkpoint
            return (
                f"audit trail OK: {self.rows} rows, head {self.head_sha256}; checked against "
                f"{self.checkpoints_valid} signed checkpoint(s), the latest #{cp.seq} at {cp.at} "
                f"covering {cp.count} rows ({self.latest.source})"
            )
        return f"audit trail FAILED: {len(self.problems)} problem(s) in {self.rows} rows"


def _check_rows(db: Database, report: AuditReport, wanted: set[int]) -> dict[int, str]:
    """Walk the chain; return the stored sha256 of the rows whose seq is in `wanted`."""
    found: dict[int, str] = {}
    expected_seq, prev = 1, GENESIS_SHA256
    for row in iter_rows(db):
        report.rows += 1
        if row.seq != expected_seq:
            gap = f"row {expected_seq}" if row.seq == expected_seq + 1 else f"rows {expected_seq}..{row.seq - 1}"
            report.problems.append(AuditProblem("deleted", f"{gap} missing: deleted (seq jumps to {row.seq})", row.seq))
        elif row.prev_sha256 != prev:
            report.problems.append(
                AuditProblem(
                    "broken_link",
                    f"row {row.seq}: prev_sha256 {row.prev_sha256[:16]}... does not match row {row.seq - 1}'s "
                    f"sha256 {prev[:16]}...: row {row.seq - 1} was edited and re-hashed, or rows were replaced",
                    row.seq,
                )
            )
        try:
            recomputed = row_sha256(
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                reason=row.reason,
                detail=row.detail,
                prev_sha256=row.prev_sha256,
            )
        except WireError:
            recomputed = ""
        if recomputed != row.sha256:
            report.problems.append(
                AuditProblem(
                    "edited",
                    f"row {row.seq} ({row.action} by {row.actor} at {row.at}): its content does not hash to "
                    "its sha256: the row was edited",
                    row.seq,
                )
            )
        if row.seq in wanted:
            found[row.seq] = row.sha256
        prev, expected_seq = row.sha256, row.seq + 1
        report.last_seq, report.head_sha256 = row.seq, row.sha256
    return found


def _valid_checkpoints(
    checkpoints: Iterable[SourcedCheckpoint], public: Ed25519PublicKey, report: AuditReport
) -> list[SourcedCheckpoint]:
    key_id = fingerprint(public)
    valid: list[SourcedCheckpoint] = []
    by_seq: dict[int, SourcedCheckpoint] = {}
    for sc in checkpoints:
        cp = sc.checkpoint
        if cp.key_id != key_id or not cp.verify(public):
            report.problems.append(
                AuditProblem(
                    "checkpoint",
                    f"checkpoint #{cp.seq} ({sc.source}): signature does not verify with key {key_id}: "
                    "forged or altered",
                )
            )
            continue
        other = by_seq.get(cp.seq)
        if other is not None and other.checkpoint.body() != cp.body():
            report.problems.append(
                AuditProblem(
                    "checkpoint",
                    f"checkpoint #{cp.seq} was issued twice with different content ({other.source}; {sc.source}): "
                    "the checkpoint table was reset",
                )
            )
        by_seq.setdefault(cp.seq, sc)
        valid.append(sc)
    return valid


def verify_audit(db: Database, checkpoints: Iterable[SourcedCheckpoint], public: Ed25519PublicKey) -> AuditReport:
    """Check every row's hash and link, then every validly signed checkpoint against the rows."""
    report = AuditReport()
    valid = _valid_checkpoints(checkpoints, public, report)
    report.checkpoints_valid = len(valid)
    found = _check_rows(db, report, {sc.checkpoint.count for sc in valid})
    if not valid:
        report.problems.append(
            AuditProblem(
                "no_checkpoint",
                "no validly signed checkpoint found: edits re-hashed through to the end and a truncated tail "
                "cannot be ruled out (give --checkpoints, or check that the central publishes them)",
            )
        )
        return report
    report.latest = max(valid, key=lambda sc: (sc.checkpoint.count, sc.checkpoint.seq))
    cp = report.latest.checkpoint
    if cp.count > report.last_seq:
        report.problems.append(
            AuditProblem(
                "truncated",
                f"the trail ends at row {report.last_seq} but checkpoint #{cp.seq} "
                f"({report.latest.source}, at {cp.at}) covers {cp.count} rows: the tail was truncated "
                f"(rows {report.last_seq + 1}..{cp.count} are gone)",
                report.last_seq + 1,
            )
        )
    seen: set[tuple[int, str]] = set()
    for sc in sorted(valid, key=lambda s: s.checkpoint.count):
        c = sc.checkpoint
        if c.count == 0 or (c.count, c.head_sha256) in seen or c.count > report.last_seq:
            continue
        seen.add((c.count, c.head_sha256))
        stored = found.get(c.count)
        if stored is None:
            continue  # that row is gone: reported as deleted above
        if stored != c.head_sha256:
            report.problems.append(
                AuditProblem(
                    "rewritten",
                    f"checkpoint #{c.seq} ({sc.source}, at {c.at}) signed head {c.head_sha256[:16]}... for row "
                    f"{c.count}, but row {c.count} has sha256 {stored[:16]}...: rows up to {c.count} were rewritten",
                    c.count,
                )
            )
    return report
