"""The audit hook: every change the case flow makes is reported to it.

`audit(actor, action, subject, reason, detail)`:
- actor: who did it: a user id from the API, `camera:<device>/<camera>`, or `system:<what>`;
- action: `order.<action>` (order.register, order.dispatch, ..., order.reopen),
  `order.escalate`, `order.extension_request`, `order.extension_approve|deny`;
- subject: the work order id;
- reason: the reason given (required for reject and reopen), or why the system did it;
- detail: JSON-able facts (from/to status, assignee, level, due times, evidence sha256s).

It is called inside the transaction that makes the change, on the connection of the caller's
thread. A hook that writes to the same Database joins that transaction (the change and its
audit record commit together, or neither does); it must not write through another connection,
which would wait for this transaction's lock. An exception from the hook undoes the change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["AuditHook", "no_audit"]

AuditHook = Callable[[str, str, str, str, dict[str, Any]], None]


def no_audit(actor: str, action: str, subject: str, reason: str, detail: dict[str, Any]) -> None:
    """The default hook: records nothing (the order's own history table still does)."""
