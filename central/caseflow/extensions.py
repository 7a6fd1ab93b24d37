"""An approved extension's effect on an order's clock (CaseFlow.decide_extension writes it).

An extension pauses the deadline clock for its working time: `extension_s` grows and the due
time is computed again on the site's calendar. Kept apart from central.caseflow.flow, which
decides when this applies and records it.
"""

from __future__ import annotations

from typing import Any

from central.caseflow.ladder import EscalationState
from central.caseflow.rules import CaseRules
from central.store.order_changes import clock_fields

__all__ = ["extended_clock"]


def extended_clock(order: dict[str, Any], seconds: float, rules: CaseRules, now: float) -> dict[str, Any]:
    """The order's clock fields with `seconds` more working time; escalation starts over if it is no longer overdue."""
    clock_start = float(order["clock_start_ts"])
    extension = float(order["extension_s"] or 0.0) + seconds
    fields = clock_fields(
        clock_start=clock_start, limit_s=float(order["limit_s"]), extension_s=extension, rules=rules, now=now
    )
    if float(fields["due_ts"]) <= now:
        # Still overdue: keep what was sent; the sweep looks at once and sends what is new.
        state = EscalationState(
            int(order["escalation_level"]), bool(order["reminded"]), int(order["escalation_repeats"])
        )
        fields = clock_fields(
            clock_start=clock_start,
            limit_s=float(order["limit_s"]),
            extension_s=extension,
            rules=rules,
            now=now,
            state=state,
        )
    return fields
