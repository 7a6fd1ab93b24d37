from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import pytest

from edge.evidence import PacketRingBuffer

FPS = 25
TB = Fraction(1, 90000)
TICKS = 90000 // FPS


@dataclass
class FakePacket:
    """A packet's metadata and bytes, shaped like av.Packet (the clip test uses real ones)."""

    payload: bytes
    pts: int | None
    dts: int | None
    duration: int | None
    time_base: Fraction | None
    is_keyframe: bool

    @property
    def size(self) -> int:
        return len(self.payload)

    def __bytes__(self) -> bytes:
        return self.payload


def feed(
    buf: PacketRingBuffer, n: int, gop: int = FPS, start: int = 0, size: int = 100, t0: float = 1000.0
) -> None:
    for i in range(start, start + n):
        pkt = FakePacket(bytes([i % 256]) * size, i * TICKS, i * TICKS, TICKS, TB, i % gop == 0)
        buf.append(pkt, wall=t0 + i / FPS)


def test_buffer_starts_at_a_keyframe_and_covers_the_preroll() -> None:
    buf = PacketRingBuffer(preroll_seconds=3.0)
    feed(buf, 10 * FPS + 7)
    cut = buf.packets_between(0.0, 1e12)
    assert cut[0].is_keyframe
    assert buf.span_seconds() >= 3.0
    # Not more than one GOP beyond the pre-roll is kept.
    assert buf.span_seconds() < 3.0 + 1.0 + 1e-9
    assert len(buf) == len(cut)


def test_packets_before_the_first_keyframe_are_skipped() -> None:
    buf = PacketRingBuffer(preroll_seconds=2.0)
    feed(buf, 30, start=5)  # 5..34: first keyframe at 25
    cut = buf.packets_between(0.0, 1e12)
    assert cut[0].is_keyframe and cut[0].pts == 25 * TICKS
    assert buf.skipped_before_keyframe == 20


def test_packets_are_copies_with_their_timing() -> None:
    buf = PacketRingBuffer()
    pkt = FakePacket(b"abc", 7, 5, 3, TB, True)
    buf.append(pkt, wall=12.5)
    pkt.payload = b"changed"
    (item,) = buf.packets_between(0, 100)
    assert (item.data, item.pts, item.dts, item.duration, item.time_base, item.is_keyframe, item.wall) == (
        b"abc",
        7,
        5,
        3,
        TB,
        True,
        12.5,
    )


def test_empty_packets_are_ignored() -> None:
    buf = PacketRingBuffer()
    buf.append(FakePacket(b"", None, None, None, TB, False), wall=1.0)
    assert len(buf) == 0


def test_packets_between_starts_at_the_keyframe_at_or_before_start() -> None:
    buf = PacketRingBuffer(preroll_seconds=100.0)
    feed(buf, 5 * FPS, t0=0.0)
    cut = buf.packets_between(2.5, 3.5)
    assert cut[0].is_keyframe and cut[0].wall == pytest.approx(2.0)
    assert cut[-1].wall <= 3.5 and cut[-1].wall == pytest.approx(3.48)
    assert [p.pts for p in cut] == [i * TICKS for i in range(2 * FPS, int(3.48 * FPS) + 1)]
    # Start exactly on a keyframe.
    assert buf.packets_between(3.0, 3.0)[0].wall == pytest.approx(3.0)


def test_packets_between_older_than_the_buffer_starts_at_its_oldest_keyframe() -> None:
    buf = PacketRingBuffer(preroll_seconds=2.0)
    feed(buf, 10 * FPS, t0=0.0)
    cut = buf.packets_between(0.0, 100.0)
    assert cut[0].is_keyframe and cut[0].wall == pytest.approx(7.0)
    assert buf.packets_between(-10.0, -5.0) == []


def test_max_bytes_bounds_memory_even_below_the_preroll() -> None:
    buf = PacketRingBuffer(preroll_seconds=60.0, max_bytes=3 * FPS * 100)
    feed(buf, 10 * FPS)
    assert buf.nbytes <= 3 * FPS * 100
    assert buf.dropped_over_budget >= 7
    assert buf.packets_between(0, 1e12)[0].is_keyframe


def test_a_gop_bigger_than_the_budget_is_dropped_until_the_next_keyframe() -> None:
    buf = PacketRingBuffer(preroll_seconds=60.0, max_bytes=1000)
    feed(buf, 20, gop=100, size=100)
    assert buf.nbytes <= 1000
    cut = buf.packets_between(0, 1e12)
    assert cut == [] or cut[0].is_keyframe


def test_clear_forgets_everything() -> None:
    buf = PacketRingBuffer()
    feed(buf, 30)
    buf.clear()
    assert len(buf) == 0 and buf.nbytes == 0 and buf.span_seconds() == 0.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        PacketRingBuffer(preroll_seconds=-1)
    with pytest.raises(ValueError):
        PacketRingBuffer(max_bytes=0)


def test_a_keyframe_without_timestamps_does_not_start_the_buffer() -> None:
    # As an RTSP demuxer delivers the first packets before RTCP sync: no pts, no dts.
    buf = PacketRingBuffer()
    buf.append(FakePacket(b"k", None, None, TICKS, TB, True), wall=1.0)
    buf.append(FakePacket(b"p", 2 * TICKS, None, TICKS, TB, False), wall=1.04)
    assert len(buf) == 0 and buf.skipped_before_keyframe == 2
    feed(buf, 30, start=25)
    cut = buf.packets_between(0, 1e12)
    assert cut[0].is_keyframe and cut[0].dts == 25 * TICKS
