"""Byte ranges received so far, as a sorted list of disjoint half-open [start, end) pairs."""

from __future__ import annotations

__all__ = ["Ranges", "add_range", "covers", "gaps"]

Ranges = list[tuple[int, int]]


def add_range(ranges: Ranges, start: int, end: int) -> Ranges:
    """`ranges` plus [start, end), merged with anything it overlaps or touches."""
    if end <= start:
        return list(ranges)
    out: Ranges = []
    for s, e in ranges:
        if e < start or s > end:
            out.append((s, e))
        else:
            start, end = min(s, start), max(e, end)
    out.append((start, end))
    out.sort()
    return out


def covers(ranges: Ranges, size: int) -> bool:
    return ranges == [(0, size)]


def gaps(ranges: Ranges, size: int) -> Ranges:
    out: Ranges = []
    pos = 0
    for s, e in ranges:
        if s > pos:
            out.append((pos, min(s, size)))
        pos = max(pos, e)
    if pos < size:
        out.append((pos, size))
    return out
