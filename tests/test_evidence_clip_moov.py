"""The clip's moov goes first without a faststart rewrite (room is reserved); a short reservation still gives a clip."""

from __future__ import annotations

import logging
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.stream import VideoStream

from edge.evidence import BufferedPacket, PacketRingBuffer, StreamTemplate, write_clip
from edge.evidence import clip as clip_module

FPS, GOP, FRAMES = 25, 25, 75
T0 = 1_700_000_000.0


def _source(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.options = {"preset": "veryfast", "keyint_min": str(GOP), "sc_threshold": "0"}
        rng = np.random.default_rng(3)
        for i in range(FRAMES):
            img = rng.integers(0, 60, (96, 160, 3), dtype=np.uint8)
            img[:, (i * 2) % 140 : (i * 2) % 140 + 20] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def buffered(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[BufferedPacket], StreamTemplate]:
    src = _source(tmp_path_factory.mktemp("src") / "src.mp4")
    ring = PacketRingBuffer(preroll_seconds=60.0)
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        template = StreamTemplate.from_stream(stream)
        for packet in container.demux(stream):
            if packet.size and packet.dts is not None:
                ring.append(packet, wall=T0 + float(packet.dts * packet.time_base))
    return ring.packets_between(0, 1e12), template


def _top_level_boxes(data: bytes) -> list[tuple[str, int]]:
    boxes: list[tuple[str, int]] = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        boxes.append((kind.decode("latin-1"), size))
        if size < 8:
            break
        pos += size
    return boxes


def _check(path: Path, packets: list[BufferedPacket]) -> list[tuple[str, int]]:
    boxes = _top_level_boxes(path.read_bytes())
    kinds = [kind for kind, _ in boxes]
    assert kinds.index("moov") < kinds.index("mdat"), boxes
    with av.open(str(path)) as container:
        got = [bytes(p) for p in container.demux(video=0) if p.size]
    assert got == [p.data for p in packets]
    return boxes


def test_room_for_the_moov_is_reserved_so_no_rewrite_is_needed(
    buffered: tuple[list[BufferedPacket], StreamTemplate], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    packets, template = buffered
    with caplog.at_level(logging.WARNING, logger="edge.evidence.clip"):
        clip = write_clip(packets, template, tmp_path / "clip.mp4")
    boxes = _check(clip, packets)
    assert not caplog.records  # no fallback
    # What is left of the reservation pads the space between the moov and the media data.
    kinds = [kind for kind, _ in boxes]
    assert kinds[kinds.index("moov") + 1] == "free" and boxes[kinds.index("moov") + 1][1] > 64, boxes


def test_a_reservation_too_small_falls_back_to_faststart(
    buffered: tuple[list[BufferedPacket], StreamTemplate], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    packets, template = buffered
    monkeypatch.setattr(clip_module, "_MOOV_FIXED", 16)
    monkeypatch.setattr(clip_module, "_MOOV_PER_PACKET", 0)
    with caplog.at_level(logging.WARNING, logger="edge.evidence.clip"):
        clip = write_clip(packets, template, tmp_path / "clip.mp4")
    _check(clip, packets)
    assert any("faststart" in r.getMessage() for r in caplog.records)
    assert not list(tmp_path.glob(".*.tmp"))


def test_buffered_packets_of_one_stream_share_one_time_base(
    buffered: tuple[list[BufferedPacket], StreamTemplate],
) -> None:
    packets, _ = buffered
    assert len({id(p.time_base) for p in packets}) == 1
    assert isinstance(packets[0].time_base, Fraction)
