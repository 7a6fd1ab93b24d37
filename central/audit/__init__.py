"""The audit trail: a hash-chained, append-only log of every state change, notification and read
of evidence, with signed checkpoints of its head published off the server, and its verifier.

    trail = AuditTrail(db)                      # one per connection; it is an AuditHook
    trail("user:alice", "order.dispatch", "WO-20261126-000001", "sent team 3", {"from": "registered"})
"""

from central.audit.chain import GENESIS_SHA256, AuditRow, AuditTrail, chain_head, iter_rows, row_sha256
from central.audit.checkpoints import (
    CHECKPOINT_FILE,
    CHECKPOINT_TOPIC,
    PUBLIC_KEY_FILE,
    Checkpoint,
    CheckpointError,
    issue_checkpoint,
    load_or_create_key,
    read_checkpoint_file,
)
from central.audit.hook import AuditHook, Detail, discard
from central.audit.publisher import CheckpointPublisher
from central.audit.schema import ensure_schema
from central.audit.verify import AuditProblem, AuditReport, SourcedCheckpoint, verify_audit

__all__ = [
    "CHECKPOINT_FILE",
    "CHECKPOINT_TOPIC",
    "GENESIS_SHA256",
    "PUBLIC_KEY_FILE",
    "AuditHook",
    "AuditProblem",
    "AuditReport",
    "AuditRow",
    "AuditTrail",
    "Checkpoint",
    "CheckpointError",
    "CheckpointPublisher",
    "Detail",
    "SourcedCheckpoint",
    "chain_head",
    "discard",
    "ensure_schema",
    "issue_checkpoint",
    "iter_rows",
    "load_or_create_key",
    "read_checkpoint_file",
    "row_sha256",
    "verify_audit",
]
