"""Clips cut from real H.264/H.265 packets (encoded here with PyAV) by remuxing."""

from __future__ import annotations

import itertools
import struct
import time
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from av.video.stream import VideoStream

from edge.evidence import BufferedPacket, ClipError, PacketRingBuffer, StreamTemplate, write_clip

FPS = 25
GOP = 25
FRAMES = 100
T0 = 1_700_000_000.0


def encode(path: Path, codec: str) -> None:
    out = av.open(str(path), "w")
    stream = out.add_stream(codec, rate=FPS)
    assert isinstance(stream, VideoStream)
    stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
    stream.codec_context.gop_size = GOP
    # B-frames on (veryfast), so dts and pts differ and the rebasing is exercised.
    stream.options = {"preset": "veryfast", "keyint_min": str(GOP), "sc_threshold": "0"}
    if codec == "libx265":
        stream.options = {
            "preset": "ultrafast",
            "x265-params": f"keyint={GOP}:min-keyint={GOP}:log-level=error",
        }
    rng = np.random.default_rng(1)
    for i in range(FRAMES):
        img = (rng.integers(0, 40, (96, 160, 3), dtype=np.uint8) + np.uint8(i)).astype(np.uint8)
        img[:, (i * 3) % 140 : (i * 3) % 140 + 20] = 255
        for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()


def demux_into_buffer(path: Path) -> tuple[PacketRingBuffer, StreamTemplate, list[BufferedPacket]]:
    """Demux like the ingest does: every packet into the ring buffer, arriving in real time."""
    buf = PacketRingBuffer(preroll_seconds=60.0)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        template = StreamTemplate.from_stream(stream)
        for packet in container.demux(stream):
            if packet.size and packet.dts is not None:
                buf.append(packet, wall=T0 + float(packet.dts * packet.time_base))
    # The container is closed now: the template must still work.
    return buf, template, buf.packets_between(0, 1e12)


def top_level_boxes(data: bytes) -> list[str]:
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return boxes


@pytest.fixture(scope="module")
def h264_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("src") / "src.mp4"
    encode(path, "libx264")
    return path


def check_clip(clip: Path, expected: list[BufferedPacket], codec: str) -> None:
    data = clip.read_bytes()
    boxes = top_level_boxes(data)
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # faststart
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == codec
        packets = [p for p in container.demux(stream) if p.size]
        # No re-encode: every packet's bytes are the source's.
        assert [bytes(p) for p in packets] == [p.data for p in expected]
        assert packets[0].is_keyframe
        dts = [p.dts for p in packets if p.dts is not None]
        assert len(dts) == len(packets) and all(b > a for a, b in itertools.pairwise(dts))
    with av.open(str(clip)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == len(expected)
    assert frames[0].pts is not None and frames[0].time >= 0.0


def test_clip_is_remuxed_h264_with_faststart(h264_file: Path, tmp_path: Path) -> None:
    buf, template, _ = demux_into_buffer(h264_file)
    cut = buf.packets_between(T0 + 1.5, T0 + 3.0)
    assert cut[0].is_keyframe and cut[0].wall == pytest.approx(T0 + 1.0, abs=0.1)
    clip = write_clip(cut, template, tmp_path / "clip.mp4")
    assert clip == tmp_path / "clip.mp4"
    check_clip(clip, cut, "h264")
    with av.open(str(clip)) as container:
        assert container.duration is not None
        assert 1.9 <= container.duration / 1e6 <= 2.2
    assert not list(tmp_path.glob(".*.tmp"))


def test_clip_from_the_live_stream_as_template(h264_file: Path, tmp_path: Path) -> None:
    with av.open(str(h264_file)) as container:
        stream = container.streams.video[0]
        packets = [
            BufferedPacket.copy_of(p, wall=0.0)
            for p in container.demux(stream)
            if p.size and p.dts is not None
        ]
        clip = write_clip(packets[GOP : 2 * GOP], stream, tmp_path / "live.mp4")
    check_clip(clip, packets[GOP : 2 * GOP], "h264")


def test_timestamps_are_rebased_to_zero(h264_file: Path, tmp_path: Path) -> None:
    _, template, everything = demux_into_buffer(h264_file)
    cut = everything[2 * GOP :]
    clip = write_clip(cut, template, tmp_path / "tail.mp4")
    with av.open(str(clip)) as container:
        first = next(p for p in container.demux(video=0) if p.size)
        assert first.pts is not None and 0.0 <= float(first.pts * first.time_base) < 0.5


def test_h265_clip(tmp_path: Path) -> None:
    if "libx265" not in av.codecs_available:
        pytest.skip("this PyAV build has no libx265 encoder to make the H.265 source")
    src = tmp_path / "src265.mp4"
    encode(src, "libx265")
    _, template, everything = demux_into_buffer(src)
    keys = [i for i, p in enumerate(everything) if p.is_keyframe]
    cut = everything[keys[1] :]
    check_clip(write_clip(cut, template, tmp_path / "c265.mp4"), cut, "hevc")


def test_glitched_timestamps_still_give_a_valid_clip(h264_file: Path, tmp_path: Path) -> None:
    _, template, everything = demux_into_buffer(h264_file)
    cut = list(everything[:GOP])
    # A camera glitch: a repeated dts and a packet without timestamps.
    cut[5] = BufferedPacket(
        cut[5].data, cut[5].pts, cut[4].dts, cut[5].duration, cut[5].time_base, False, 0.0
    )
    cut[9] = BufferedPacket(cut[9].data, None, None, None, cut[9].time_base, False, 0.0)
    clip = write_clip(cut, template, tmp_path / "glitch.mp4")
    with av.open(str(clip)) as container:
        dts = [p.dts for p in container.demux(video=0) if p.size and p.dts is not None]
    assert len(dts) == GOP and all(b > a for a, b in itertools.pairwise(dts))


def test_a_clip_must_start_at_a_keyframe(h264_file: Path, tmp_path: Path) -> None:
    _, template, everything = demux_into_buffer(h264_file)
    with pytest.raises(ClipError, match="keyframe"):
        write_clip(everything[1:10], template, tmp_path / "bad.mp4")
    with pytest.raises(ClipError, match="no packets"):
        write_clip([], template, tmp_path / "bad.mp4")
    assert list(tmp_path.iterdir()) == []


def test_time_bases_are_converted(h264_file: Path, tmp_path: Path) -> None:
    _, template, everything = demux_into_buffer(h264_file)
    tb = everything[0].time_base
    other = Fraction(1, 90000)
    # The same packets, half of them expressed in another time base: the clip's timing is unchanged.
    mixed = [
        p
        if i % 2 == 0
        else BufferedPacket(
            p.data,
            None if p.pts is None else round(p.pts * tb / other),
            None if p.dts is None else round(p.dts * tb / other),
            None if p.duration is None else round(p.duration * tb / other),
            other,
            p.is_keyframe,
            p.wall,
        )
        for i, p in enumerate(everything[:GOP])
    ]
    a = write_clip(everything[:GOP], template, tmp_path / "a.mp4")
    b = write_clip(mixed, template, tmp_path / "b.mp4")
    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        pa = [(p.pts, p.dts) for p in ca.demux(video=0) if p.size]
        pb = [(p.pts, p.dts) for p in cb.demux(video=0) if p.size]
    assert pa == pb


RTSP_OPTIONS = {
    "rtsp_transport": "tcp",
    "timeout": "5000000",
    "analyzeduration": "200000",
    "probesize": "32768",
}


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_clip_from_a_live_rtsp_camera(
    codec: str, tmp_path: Path, rtsp_server: Callable[[Mapping[str, Path]], Any]
) -> None:
    """The real path: RTSP packets (Annex B, the first ones untimed) -> ring buffer -> MP4."""
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder to make the source")
    src = tmp_path / "cam.mp4"
    encode(src, codec)
    server = rtsp_server({"cam": src})
    buf = PacketRingBuffer(preroll_seconds=30.0)
    cut: list[BufferedPacket] = []
    with av.open(server.url("cam"), options=RTSP_OPTIONS, timeout=10) as container:
        stream = container.streams.video[0]
        template = StreamTemplate.from_stream(stream)
        deadline = time.monotonic() + 10.0
        for packet in container.demux(stream):
            buf.append(packet)
            cut = buf.packets_between(0, 1e12)
            if sum(p.is_keyframe for p in cut) >= 2 or time.monotonic() > deadline:
                break
    assert sum(p.is_keyframe for p in cut) >= 2, "fewer than two timed keyframes in 10 s"
    clip = write_clip(cut, template, tmp_path / "rtsp.mp4")
    boxes = top_level_boxes(clip.read_bytes())
    assert boxes.index("moov") < boxes.index("mdat")
    with av.open(str(clip)) as container:
        assert container.streams.video[0].codec_context.name == {"libx264": "h264", "libx265": "hevc"}[codec]
        assert sum(1 for _ in container.decode(video=0)) == len(cut)
