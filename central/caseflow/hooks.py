"""The audit hook: every change the case flow makes is reported to it.

`audit(actor, action, subject, reason, detail)`:
- actor: who did it: a user id from the API, `camera:<device>/<camera>`, or `system:<what>`;
- action: `order.<action>` (order.register, order.dispatch, ..., order.reopen),
  `order.escalate`, `order.extension_request`, `order.extension_approve|deny`;
- subject: `order:<id>` (`order_subject`), like `evidence:<sha256>` and `user:<name>` elsewhere;
- reason: the reason given (required for reject and reopen), or why the system did it;
- detail: JSON-able facts (from/to status, assignee, level, due times, evidence sha256s).

It is called inside the transaction that makes the change, on the connection of the caller's
thread. A hook that writes to the same Database joins that transaction (the change and its
audit record commit together, or neither does); it must not write through another connection,
which would wait for this transaction's lock. An exception from the hook undoes the change.

Rows written before the subject convention was settled carry the bare order id. They stay as
they are (rewriting them would break the audit chain's hashes), so whoever reads an order's rows
asks for `order_subjects(order_id)`: both spellings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["ORDER_SUBJECT_PREFIX", "AuditHook", "no_audit", "order_subject", "order_subjects"]

AuditHook = Callable[[str, str, str, str, dict[str, Any]], None]

ORDER_SUBJECT_PREFIX = "order:"


def order_subject(order_id: str) -> str:
    """The audit subject every writer uses for a work order: 'order:WO-20261126-000001'."""
    return ORDER_SUBJECT_PREFIX + order_id


def order_subjects(order_id: str) -> list[str]:
    """Every subject an order's audit rows may carry: the convention, and the bare id of older rows."""
    return [order_subject(order_id), order_id]


def no_audit(actor: str, action: str, subject: str, reason: str, detail: dict[str, Any]) -> None:
    """The default hook: records nothing (the order's own history table still does)."""
