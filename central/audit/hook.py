"""The audit hook: how any part of the central reports what it did, and to whom.

    audit(actor, action, subject, reason, detail)

- actor: who ('user:alice', 'token:hotline-12345', 'camera:box-1/cam-1', 'system:sweep', 'cli:root');
- action: what, dotted ('order.dispatch', 'evidence.read', 'user.add', 'token.revoke', 'audit.export');
- subject: on what ('order:WO-20261126-000001' (central.caseflow.hooks.order_subject; older rows carry
  the bare id, see order_subjects), 'evidence:<sha256>', 'user:bob', 'token:<name>');
- reason: the free text a person gave ('' if none);
- detail: a JSON-able mapping with the rest (from/to states, sha256, sizes).

The type is the case flow's (central.caseflow.hooks), re-exported so that both name one thing.
Called inside the caller's transaction, the row commits (or rolls back) with the change it records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from central.caseflow.hooks import AuditHook

__all__ = ["AuditHook", "Detail", "discard"]

# What AuditTrail accepts as detail: any mapping (a hook's callers pass dicts), or None for none.
Detail = Mapping[str, Any] | None


def discard(actor: str, action: str, subject: str, reason: str, detail: Detail) -> None:
    """A hook that records nothing (tools and tests that do not audit)."""
