"""The escalation ladder as a pure plan: reminder, levels, catch-up after downtime, repeats."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.caseflow import (
    ROUND_THE_CLOCK,
    EscalationPolicy,
    EscalationState,
    LadderStep,
    WorkCalendar,
    WorkdayCalendar,
    due_at,
    plan,
)
from central.caseflow.ladder import MemoCalendar, PlanMemo

START = 1_000_000.0
DUE = START + 4 * 3600.0
POLICY = EscalationPolicy(
    ladder=(LadderStep("responsible", 0.0), LadderStep("supervisor", 600.0), LadderStep("district_lead", 1800.0)),
    reminder_before_s=900.0,
    repeat_s=3600.0,
)


def step(state: EscalationState, now: float, policy: EscalationPolicy = POLICY):  # type: ignore[no-untyped-def]
    return plan(due=DUE, clock_start=START, state=state, now=now, policy=policy, calendar=ROUND_THE_CLOCK)


def test_a_fresh_order_is_next_looked_at_for_its_reminder() -> None:
    p = step(EscalationState(), START)
    assert p.steps == () and p.next_at == DUE - 900.0 and not p.changed


def test_reminder_then_each_level_then_repeats_of_the_top() -> None:
    state = EscalationState()
    seen = []
    for now in (DUE - 900, DUE, DUE + 600, DUE + 1800, DUE + 1800 + 3600, DUE + 1800 + 7200):
        p = step(state, now)
        seen.append([(s.kind, s.level, s.role) for s in p.steps])
        state = p.state
        assert p.next_at is not None and p.next_at > now
    assert seen == [
        [("reminder", 0, None)],
        [("overdue", 1, "responsible")],
        [("overdue", 2, "supervisor")],
        [("overdue", 3, "district_lead")],
        [("still_overdue", 3, "district_lead")],
        [("still_overdue", 3, "district_lead")],
    ]
    assert state == EscalationState(level=3, reminded=True, repeats=2)


def test_after_downtime_every_missed_level_goes_out_once_and_the_stale_reminder_does_not() -> None:
    p = step(EscalationState(), DUE + 1800 + 3 * 3600 + 5)
    # Three repeats of the top were missed too: its own level-3 notice covers them.
    assert [(s.kind, s.level) for s in p.steps] == [("overdue", 1), ("overdue", 2), ("overdue", 3)]
    assert p.state == EscalationState(3, True, 3)
    assert p.next_at == DUE + 1800 + 4 * 3600
    assert step(p.state, DUE + 1800 + 3 * 3600 + 10).steps == ()


def test_a_limit_shorter_than_the_reminder_gets_no_reminder_and_no_repeat_means_done() -> None:
    short = plan(
        due=START + 600, clock_start=START, state=EscalationState(), now=START, policy=POLICY, calendar=ROUND_THE_CLOCK
    )
    assert short.next_at == START + 600  # straight to level 1
    once = EscalationPolicy(ladder=(LadderStep("responsible"),), reminder_before_s=0, repeat_s=0)
    p = step(EscalationState(), DUE, once)
    assert [s.kind for s in p.steps] == ["overdue"] and p.next_at is None


def test_delays_count_in_working_time() -> None:
    # Due at 17:00 UTC with office hours 09:00-17:00 every day: one working hour later is 10:00.
    cal = WorkCalendar("UTC", [(9 * 60, 17 * 60)], WorkdayCalendar("every_day"))
    due = 17 * 3600.0
    ladder = EscalationPolicy(ladder=(LadderStep("responsible"), LadderStep("supervisor", 3600.0)), repeat_s=0)
    p = plan(due=due, clock_start=due - 3600, state=EscalationState(1, True), now=due, policy=ladder, calendar=cal)
    assert p.next_at == 86400 + 10 * 3600.0
    assert due_at(9 * 3600.0, 8 * 3600.0, 3600.0, cal) == 86400 + 10 * 3600.0


def test_a_ladder_whose_delays_decrease_is_refused() -> None:
    with pytest.raises(ValueError, match="not decrease"):
        EscalationPolicy(ladder=(LadderStep("a", 600.0), LadderStep("b", 0.0)))


OFFICE = WorkCalendar("UTC", [(9 * 60, 12 * 60), (13 * 60, 17 * 60)], WorkdayCalendar("every_day"))


@settings(deadline=None, max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([DUE, DUE + 7200]),  # few due times and states: answers get reused
            st.one_of(  # the clock's start, on both sides of the reminder's moment
                st.sampled_from([START, DUE - 3600, DUE - 600]),
                st.floats(min_value=START - 7200, max_value=DUE + 100, allow_nan=False),
            ),
            st.integers(min_value=0, max_value=3),
            st.booleans(),
            st.integers(min_value=0, max_value=1),
        ),
        min_size=1,
        max_size=30,
    ),
    st.floats(min_value=START, max_value=DUE + 6 * 3600, allow_nan=False),
    st.sampled_from([POLICY, EscalationPolicy(reminder_before_s=0), EscalationPolicy(repeat_s=0)]),
)
def test_the_sweeps_memo_plans_exactly_as_plan_does(
    orders: list[tuple[float, float, int, bool, int]], now: float, policy: EscalationPolicy
) -> None:
    memo = PlanMemo(policy, MemoCalendar(OFFICE), now)
    for due, start, level, reminded, repeats in orders:
        state = EscalationState(level, reminded, repeats)
        expected = plan(due=due, clock_start=start, state=state, now=now, policy=policy, calendar=OFFICE)
        got = memo.plan(due=due, clock_start=start, level=level, reminded=reminded, repeats=repeats)
        assert got == expected
