"""The edge benches' own logic: the capacity search, the pass/fail rule, /proc readings, the malloc setting.

Nothing here measures speed; the benches themselves are run by hand (docs/benchmarks.md).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from bench._common import CpuSample, cpu_sample, peak_rss_mb, rss_mb
from bench.edge_capacity import _judge, search
from edge.daemon import fix_malloc_mmap_threshold


def test_search_doubles_then_bisects_to_the_largest_passing_count() -> None:
    tried: list[int] = []

    def passes(n: int) -> bool:
        tried.append(n)
        return n <= 13

    assert search(passes, start=4, maximum=64, deadline=time.monotonic() + 60) == 13
    assert tried[:3] == [4, 8, 16]  # doubling until 16 fails
    assert set(tried[3:]) <= set(range(9, 16))


def test_search_stops_at_the_maximum_and_on_a_first_failure() -> None:
    assert search(lambda n: True, start=4, maximum=20, deadline=time.monotonic() + 60) == 16
    assert search(lambda n: False, start=4, maximum=64, deadline=time.monotonic() + 60) == 0


def _status(mono: float, per_camera: dict[str, tuple[int, int, int]], late: int = 0) -> dict[str, Any]:
    cams = {cid: {"analyses": a, "frames_in": f, "overdue": o, "lag_sum": 0.1 * a}
            for cid, (a, f, o) in per_camera.items()}
    return {"mono": mono, "cameras": cams, "late": late}


def _judged(s1_cams: dict[str, tuple[int, int, int]], cpu_s: float, late: int = 0) -> Any:
    s0 = _status(100.0, {c: (0, 0, 0) for c in s1_cams})
    s1 = _status(130.0, s1_cams, late=late)
    return _judge("ours", len(s1_cams), s0, s1, CpuSample(0.0, 100.0), CpuSample(cpu_s, 130.0), [], [], 100.0,
                  interval=2.0, cpu_limit=1.6)


def test_a_window_where_every_camera_keeps_up_passes() -> None:
    result = _judged({"a": (15, 750, 0), "b": (14, 748, 0)}, cpu_s=30.0)
    assert result.passed, result.why
    assert result.cores == pytest.approx(1.0)
    assert result.per_camera_ms == pytest.approx(500.0)


@pytest.mark.parametrize(("cams", "cpu_s", "late", "why"), [
    ({"a": (15, 750, 0)}, 60.0, 0, "cpu 2.00 > 1.60"),
    ({"a": (15, 750, 0), "b": (12, 750, 0)}, 10.0, 0, "80% of its analyses"),
    ({"a": (15, 750, 3)}, 10.0, 0, "overdue or late"),
    ({"a": (15, 750, 0)}, 10.0, 4, "overdue or late"),
    ({"a": (15, 600, 0)}, 10.0, 0, "read at 80%"),
])
def test_each_rule_fails_a_window(cams: dict[str, tuple[int, int, int]], cpu_s: float, late: int, why: str) -> None:
    result = _judged(cams, cpu_s, late)
    assert not result.passed
    assert why in result.why


def test_proc_readings_of_this_process() -> None:
    before = cpu_sample(os.getpid())
    x = 0
    while cpu_sample(os.getpid()).cpu_s <= before.cpu_s:  # burn CPU until the clock ticks
        x += 1
    assert cpu_sample(os.getpid()).cores_since(before) > 0
    now = rss_mb(os.getpid())  # first: the peak read after it can only be as high or higher
    assert peak_rss_mb(os.getpid()) >= now > 1


def test_the_malloc_threshold_is_left_alone_when_the_environment_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert fix_malloc_mmap_threshold() is False
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    libc_is_glibc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
    assert fix_malloc_mmap_threshold() is bool(libc_is_glibc)
