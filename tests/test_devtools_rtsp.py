"""garbagewatch.devtools.rtsp_server: MP4 files served as live, looping RTSP cameras, read with PyAV."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import av
import numpy as np
import pytest

from garbagewatch.devtools.footage import clip_from_images
from garbagewatch.devtools.rtsp_server import RtspServer

RtspServerFactory = Callable[[Mapping[str, Path]], RtspServer]  # the `rtsp_server` fixture
CLIP_SECONDS = 1.0
FPS = 10
# short probing so a test does not spend seconds in avformat_open_input
OPTIONS = {"rtsp_transport": "tcp", "timeout": "2000000", "analyzeduration": "200000", "probesize": "32768"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("clips")
    image = np.zeros((180, 320, 3), np.uint8)
    image[60:120, 100:220] = (0, 200, 0)
    items = [(image, CLIP_SECONDS / 2), (image[:, ::-1].copy(), CLIP_SECONDS / 2)]
    return {
        "h264": clip_from_images(items, folder / "h264.mp4", size=(320, 180), fps=FPS, gop=5),
        "h265": clip_from_images(
            items, folder / "h265.mp4", size=(320, 180), fps=FPS, gop=5, codec="libx265"
        ),
    }


def read(container: av.container.InputContainer, seconds: float) -> tuple[list[int], int]:
    """Packet timestamps and decoded frames of the video stream over `seconds` of wall time."""
    stream = container.streams.video[0]
    pts: list[int] = []
    frames = 0
    deadline = time.monotonic() + seconds
    for packet in container.demux(stream):
        if packet.pts is not None:
            pts.append(packet.pts)
        for frame in packet.decode():
            assert (frame.width, frame.height) == (320, 180)
            frames += 1
        if time.monotonic() > deadline:
            break
    return pts, frames


def test_streams_loop_past_the_end_with_growing_timestamps(
    rtsp_server: RtspServerFactory, clips: dict[str, Path]
) -> None:
    server = rtsp_server({"cam": clips["h264"]})
    assert server.url("cam") == f"rtsp://127.0.0.1:{server.port}/cam"
    with av.open(server.url("cam"), options=OPTIONS) as first:
        assert first.streams.video[0].codec_context.name == "h264"
        time_base = first.streams.video[0].time_base
        assert time_base is not None
        pts_a, frames_a = read(first, 1.2)
        # a second viewer joins the same live picture; the first must not be rewound
        with av.open(server.url("cam"), options=OPTIONS) as second:
            pts_b, frames_b = read(second, 1.2)
        pts_a2, frames_a2 = read(first, 0.5)
    pts = pts_a + pts_a2
    assert pts == sorted(set(pts)), "timestamps must grow strictly, also across loops"
    assert float((pts[-1] - pts[0]) * time_base) > 2 * CLIP_SECONDS, "must play past the file's end"
    assert frames_a + frames_a2 >= len(pts) - 3
    assert frames_b > 0 and pts_b == sorted(set(pts_b))


def test_h265_is_served_without_reencoding(rtsp_server: RtspServerFactory, clips: dict[str, Path]) -> None:
    server = rtsp_server({"hevc": clips["h265"], "avc": clips["h264"]})
    with av.open(server.url("hevc"), options=OPTIONS) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
        _, frames = read(container, 0.6)
    assert frames > 0


def test_pause_makes_reads_time_out_and_resume_serves_again(
    rtsp_server: RtspServerFactory, clips: dict[str, Path]
) -> None:
    server = rtsp_server({"cam": clips["h264"]})
    options = {**OPTIONS, "timeout": "500000"}
    with av.open(server.url("cam"), options=options) as container:
        read(container, 0.3)
        server.pause()
        started = time.monotonic()
        with pytest.raises(av.FFmpegError):
            read(container, 10)
        assert time.monotonic() - started < 5
    server.resume()
    with av.open(server.url("cam"), options=OPTIONS) as container:
        _, frames = read(container, 0.5)
    assert frames > 0


def test_kill_and_restart_on_the_same_port(rtsp_server: RtspServerFactory, clips: dict[str, Path]) -> None:
    server = rtsp_server({"cam": clips["h264"]})
    port = server.port
    server.kill()
    assert not server.running
    with pytest.raises(av.FFmpegError):
        av.open(server.url("cam"), options=OPTIONS)
    server.start()
    assert server.port == port
    with av.open(server.url("cam"), options=OPTIONS) as container:
        _, frames = read(container, 0.3)
    assert frames > 0


def test_add_to_a_running_server(rtsp_server: RtspServerFactory, clips: dict[str, Path]) -> None:
    server = rtsp_server({"a": clips["h264"]})
    url = server.add("b", clips["h265"])
    assert server.running and url.endswith("/b")
    with av.open(url, options=OPTIONS) as container:
        assert container.streams.video[0].codec_context.name == "hevc"


def test_bad_input_is_refused_clearly(tmp_path: Path, clips: dict[str, Path]) -> None:
    server = RtspServer(tmp_path / "srv")
    with pytest.raises(ValueError, match="stream name"):
        server.add("../etc", clips["h264"])
    with pytest.raises(FileNotFoundError, match="no such file"):
        server.add("cam", tmp_path / "missing.mp4")
    with pytest.raises(KeyError):
        server.url("nope")
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not an mp4")
    server.add("notes", not_video)
    with pytest.raises(RuntimeError, match="notes"):
        server.start()
    assert not server.running
