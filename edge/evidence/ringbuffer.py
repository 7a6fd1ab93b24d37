"""Per-camera ring buffer of compressed packets: the pre-roll a clip is cut from, without decoding.

Packets are kept in whole GOPs (a timed keyframe and what follows it up to the next one), so the
buffer always starts at a keyframe and any cut from it can be remuxed as is. The oldest GOP goes
only when the rest still covers `preroll_seconds`, or when the buffer is over `max_bytes`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

__all__ = ["BufferedPacket", "PacketLike", "PacketRingBuffer"]

log = logging.getLogger(__name__)


class PacketLike(Protocol):
    """What the buffer reads from a packet: av.Packet has all of it."""

    @property
    def pts(self) -> int | None: ...
    @property
    def dts(self) -> int | None: ...
    @property
    def duration(self) -> int | None: ...
    @property
    def time_base(self) -> Fraction | None: ...
    @property
    def is_keyframe(self) -> bool: ...
    @property
    def size(self) -> int: ...
    def __bytes__(self) -> bytes: ...


_TIME_BASES: dict[tuple[int, int], Fraction] = {}


def _shared_time_base(tb: Fraction) -> Fraction:
    """One Fraction object per distinct time base: clips compare them per packet, `is` is cheapest."""
    key = (tb.numerator, tb.denominator)
    shared = _TIME_BASES.get(key)
    if shared is None:
        if len(_TIME_BASES) >= 256:  # streams have a handful; never let odd input grow it
            return Fraction(tb)
        shared = _TIME_BASES.setdefault(key, Fraction(tb))
    return shared


@dataclass(frozen=True, slots=True)
class BufferedPacket:
    """A copy of one compressed packet, independent of the demuxer that produced it."""

    data: bytes
    pts: int | None
    dts: int | None
    duration: int | None
    time_base: Fraction
    is_keyframe: bool
    wall: float  # wall-clock seconds when it arrived: how events (wall-clock) map onto packets

    @classmethod
    def copy_of(cls, packet: PacketLike, wall: float, time_base: Fraction | None = None) -> BufferedPacket:
        tb = packet.time_base or time_base
        if tb is None:
            raise ValueError("packet has no time_base and none was given")
        return cls(
            data=bytes(packet),
            pts=packet.pts,
            dts=packet.dts,
            duration=packet.duration,
            time_base=_shared_time_base(tb),
            is_keyframe=bool(packet.is_keyframe),
            wall=wall,
        )


class PacketRingBuffer:
    """Thread-safe: the ingest thread appends, the evidence worker cuts clips."""

    def __init__(
        self,
        preroll_seconds: float = 10.0,
        max_bytes: int = 64 * 1024 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if preroll_seconds < 0 or max_bytes <= 0:
            raise ValueError("preroll_seconds must be >= 0 and max_bytes > 0")
        self.preroll_seconds = preroll_seconds
        self.max_bytes = max_bytes
        self._clock = clock
        self._gops: deque[list[BufferedPacket]] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        # Counters, for stats: packets dropped while waiting for the first keyframe, GOPs dropped
        # early because of max_bytes.
        self.skipped_before_keyframe = 0
        self.dropped_over_budget = 0

    def append(
        self, packet: PacketLike, wall: float | None = None, time_base: Fraction | None = None
    ) -> None:
        """Copy `packet` in; `wall` defaults to now. Empty (flush) packets are ignored."""
        if packet.size == 0:
            return
        item = BufferedPacket.copy_of(packet, self._clock() if wall is None else wall, time_base)
        self.append_buffered(item)

    def append_buffered(self, item: BufferedPacket) -> None:
        # A keyframe opens a GOP only if it has a timestamp: RTSP demuxers often deliver the first
        # one without (before RTCP sync), and a clip cannot be timed from it.
        opens_gop = item.is_keyframe and (item.dts is not None or item.pts is not None)
        with self._lock:
            if opens_gop:
                self._gops.append([item])
            elif self._gops:
                self._gops[-1].append(item)
            else:
                # Nothing before the first keyframe can be decoded, so nothing is worth keeping.
                self.skipped_before_keyframe += 1
                return
            self._bytes += len(item.data)
            self._evict(item.wall)

    def _evict(self, newest_wall: float) -> None:
        # Drop the oldest GOP while the GOPs after it still cover the pre-roll on their own.
        while len(self._gops) > 1 and newest_wall - self._gops[1][0].wall >= self.preroll_seconds:
            self._drop_oldest()
        while self._bytes > self.max_bytes and self._gops:
            if len(self._gops) == 1:
                # A single GOP bigger than the budget: keep nothing until the next keyframe.
                log.warning("packet buffer: one GOP exceeds %d bytes; dropping it", self.max_bytes)
            self._drop_oldest()
            self.dropped_over_budget += 1

    def _drop_oldest(self) -> None:
        gop = self._gops.popleft()
        self._bytes -= sum(len(p.data) for p in gop)

    def clear(self) -> None:
        """Forget everything, e.g. when the stream reconnects and old packets no longer fit its template."""
        with self._lock:
            self._gops.clear()
            self._bytes = 0

    def packets_between(self, start_wall: float, end_wall: float) -> list[BufferedPacket]:
        """Packets from the last keyframe at or before `start_wall` through `end_wall`.

        When `start_wall` is older than the buffer, the cut starts at the oldest keyframe held.
        Empty when nothing at or before `end_wall` is held.
        """
        with self._lock:
            gops = list(self._gops)
        first = 0
        for i, gop in enumerate(gops):
            if gop[0].wall <= start_wall:
                first = i
            else:
                break
        out: list[BufferedPacket] = []
        for gop in gops[first:]:
            for p in gop:
                if p.wall > end_wall:
                    return out
                out.append(p)
        return out

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return sum(len(g) for g in self._gops)

    def span_seconds(self) -> float:
        """Wall-clock seconds from the oldest packet held to the newest; 0 when empty."""
        with self._lock:
            if not self._gops:
                return 0.0
            return self._gops[-1][-1].wall - self._gops[0][0].wall
