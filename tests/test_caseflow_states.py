"""The case flow's state machine: the allowed moves, the reasons it insists on, what it refuses."""

from __future__ import annotations

import pytest

from central.caseflow import (
    OPEN_STATUSES,
    TRANSITIONS,
    Action,
    Status,
    TransitionError,
    allowed_actions,
    transition,
)


def test_the_full_case_flow_from_report_to_close() -> None:
    order: dict[str, str | None] = {"status": None}
    path = [
        (Action.REPORT, Status.REPORTED),
        (Action.REGISTER, Status.REGISTERED),
        (Action.DISPATCH, Status.DISPATCHED),
        (Action.START, Status.IN_PROGRESS),
        (Action.RESOLVE, Status.RESOLVED),
        (Action.VERIFY, Status.VERIFIED),
        (Action.CLOSE, Status.CLOSED),
    ]
    for action, expected in path:
        t = transition(order, action, "user:li")
        assert (t.from_status, t.to_status) == (order["status"], expected)
        order["status"] = t.to_status.value
    assert order["status"] == "closed"


def test_a_new_order_can_only_be_reported_or_registered() -> None:
    assert allowed_actions(None) == [Action.REPORT, Action.REGISTER]
    with pytest.raises(TransitionError, match="cannot dispatch a new order"):
        transition(None, "dispatch", "user:li")


def test_the_camera_verifies_from_any_working_status_but_not_a_report() -> None:
    for status in ("registered", "dispatched", "in_progress", "resolved", "reopened"):
        assert transition({"status": status}, "verify", "camera:box-1/cam-1").to_status is Status.VERIFIED
    with pytest.raises(TransitionError, match="cannot verify an order in status 'reported'"):
        transition({"status": "reported"}, "verify", "camera:box-1/cam-1")


def test_reject_and_reopen_need_a_reason_and_keep_it() -> None:
    with pytest.raises(TransitionError, match="reject needs a reason"):
        transition({"status": "registered"}, Action.REJECT, "user:li", "  ")
    t = transition({"status": "registered"}, Action.REJECT, "user:li", " a shadow, not a bag ")
    assert t.to_status is Status.REJECTED and t.reason == "a shadow, not a bag"
    with pytest.raises(TransitionError, match="reopen needs a reason"):
        transition({"status": "closed"}, Action.REOPEN, "user:li")
    assert transition({"status": "closed"}, "reopen", "user:li", "still there").to_status is Status.REOPENED


def test_moves_the_table_does_not_list_are_refused_with_what_is_allowed() -> None:
    with pytest.raises(TransitionError) as info:
        transition({"status": "closed"}, "dispatch", "user:li")
    assert "allowed: reopen" in str(info.value)
    with pytest.raises(TransitionError, match="unknown action"):
        transition({"status": "closed"}, "explode", "user:li")
    with pytest.raises(TransitionError, match="unknown status"):
        transition({"status": "open"}, "close", "user:li")
    with pytest.raises(TransitionError, match="actor"):
        transition({"status": "registered"}, "dispatch", "")


def test_terminal_statuses_only_reopen_and_open_ones_are_not_terminal() -> None:
    for status in (Status.CLOSED, Status.REJECTED):
        assert allowed_actions(status) == [Action.REOPEN]
    for status in OPEN_STATUSES:
        assert allowed_actions(status), status
    # Every target is a real status and every move out of reopened matches one out of registered.
    assert all(isinstance(to, Status) for to in TRANSITIONS.values())
    from_reopened = {a for (s, a) in TRANSITIONS if s is Status.REOPENED}
    from_registered = {a for (s, a) in TRANSITIONS if s is Status.REGISTERED}
    assert from_reopened == from_registered
