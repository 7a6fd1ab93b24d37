"""Camera faults against a real RTSP server: frozen, killed, garbage, missing, corrupt; nothing else stops.

Faults are injected at chosen points (SIGSTOP / kill -9 of the server, bytes flipped in the
served file); the tests poll CameraStats for what must follow, with generous deadlines, and
assert counts and behaviour, never durations. Stall and open timeouts are 1 s here.
"""

from __future__ import annotations

import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

import wire
from edge.config import BrokerConfig, CameraConfig, EdgeConfig, SpoolConfig, StreamConfig
from edge.daemon import EdgeDaemon
from edge.evidence import PacketRingBuffer
from edge.ingest import AnalysisFrame, CameraStream
from garbagewatch.devtools.footage import clip_from_images
from garbagewatch.devtools.mosquitto import Mosquitto
from garbagewatch.devtools.rtsp_server import RtspServer

RtspServerFactory = Callable[[Mapping[str, str | Path]], RtspServer]

FPS, GOP = 10, 5  # a keyframe every 0.5 s
TIMEOUT = 1.0  # open and read timeouts of the cameras under test
INGEST_LOG = "edge.ingest.rtsp"


def poll(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of 320x180 H.264 (a moving block, so P-frames carry real slice data), looped by the server."""
    frames = []
    for i in range(2 * FPS):
        image = np.full((180, 320, 3), 40, np.uint8)
        image[50:130, 10 + 14 * i : 70 + 14 * i] = (30, 200, 60)
        frames.append((image, 1 / FPS))
    return clip_from_images(frames, tmp_path_factory.mktemp("camera") / "cam.mp4", size=(320, 180), fps=FPS, gop=GOP)


class Collector:
    """The on_frame callback of a CameraStream: counts analysis frames, thread-safe."""

    def __init__(self) -> None:
        self.frames = 0
        self._lock = threading.Lock()

    def __call__(self, frame: AnalysisFrame) -> None:
        with self._lock:
            self.frames += 1


StartCamera = Callable[..., tuple[CameraStream, Collector]]  # the `cameras` fixture: (name, url, ...) -> ...


@pytest.fixture
def cameras() -> Iterator[StartCamera]:
    """Start CameraStreams with 1 s timeouts; all are stopped at the end."""
    started: list[CameraStream] = []

    def start(
        name: str, url: str, interval: float = 0.2, read_timeout: float = TIMEOUT
    ) -> tuple[CameraStream, Collector]:
        seen = Collector()
        stream = CameraStream(name, url, PacketRingBuffer(preroll_seconds=2.0), seen, lambda template: None,
                              interval=interval, open_timeout=TIMEOUT, read_timeout=read_timeout, reconnect_max=0.5)
        started.append(stream.start())
        return stream, seen

    yield start
    for stream in started:
        stream.stop()
        assert not stream.alive()


class GarbageServer:
    """A TCP server that answers every connection with random bytes: a 'camera' speaking nonsense."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._closed = threading.Event()
        threading.Thread(target=self._serve, name="garbage-server", daemon=True).start()

    def _serve(self) -> None:
        rng = random.Random(7)
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            junk = rng.randbytes(64 * 1024)
            threading.Thread(target=self._feed, args=(conn, junk), daemon=True).start()

    def _feed(self, conn: socket.socket, junk: bytes) -> None:
        with conn:
            try:
                conn.sendall(junk)
                conn.recv(1)  # hold the connection until the client gives up
            except OSError:
                pass

    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/live"

    def close(self) -> None:
        self._closed.set()
        self.sock.close()


@pytest.fixture
def garbage_server() -> Iterator[GarbageServer]:
    server = GarbageServer()
    yield server
    server.close()


def warnings_of(caplog: pytest.LogCaptureFixture, camera: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == INGEST_LOG and r.levelno >= logging.WARNING and f"camera {camera}:" in r.getMessage()]


# -- one camera -----------------------------------------------------------------------------------


def test_a_frozen_camera_is_a_stall_and_comes_back_decoding_keyframes_only(
    rtsp_server: RtspServerFactory, clip: Path, cameras: StartCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = rtsp_server({"cam": clip})
    # interval 1 s >= the 0.5 s GOP: only keyframes are decoded.
    stream, seen = cameras("cam-a", server.url("cam"), interval=1.0)
    poll(lambda: seen.frames >= 2 and stream.stats.keyframe_interval > 0, 30, "the first analyses")

    with caplog.at_level(logging.INFO, logger=INGEST_LOG):
        server.pause()
        poll(lambda: stream.stats.stalls >= 1 and not stream.stats.connected, 15, "the stall to be detected")
        # Stay frozen through a failed reopen or two: a real outage, several GOPs long.
        poll(lambda: stream.stats.open_failures >= 2, 20, "reopen attempts on the frozen server")
        connects, packets, decoded, frames = (stream.stats.connects, stream.stats.packets,
                                              stream.stats.frames_decoded, seen.frames)
        server.resume()
        poll(lambda: stream.stats.connects > connects, 30, "the reconnect after resume")
        poll(lambda: stream.stats.packets >= packets + 15, 30, "packets after resume")
        # The outage is not a GOP: the camera goes on decoding keyframes only (this window holds
        # 3 keyframes; decoding every packet after the outage would make it ~15).
        assert stream.stats.frames_decoded - decoded <= 6, stream.stats
        poll(lambda: seen.frames > frames, 30, "analyses after resume")
    stall_lines = [m for m in warnings_of(caplog, "cam-a") if "stall" in m or "read failed" in m]
    assert len(stall_lines) == stream.stats.stalls and all("\n" not in m for m in stall_lines)
    assert stream.alive()


def test_a_killed_camera_server_is_reconnected_when_it_returns(
    rtsp_server: RtspServerFactory, clip: Path, cameras: StartCamera,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = rtsp_server({"cam": clip})
    stream, seen = cameras("cam-a", server.url("cam"))
    poll(lambda: seen.frames >= 2, 30, "the first analyses")
    with caplog.at_level(logging.WARNING, logger=INGEST_LOG):
        server.kill()  # kill -9
        poll(lambda: stream.stats.open_failures >= 4, 30, "reopen attempts while the server is dead")
        reconnects, frames, connects = stream.stats.reconnects, seen.frames, stream.stats.connects
        assert reconnects >= 4
        server.start()  # same port
        poll(lambda: stream.stats.connects > connects and seen.frames >= frames + 3, 30, "frames after the restart")
    assert stream.stats.reconnects >= reconnects
    # Dozens of refused connections, but the log names each kind of failure once.
    refused = [m for m in warnings_of(caplog, "cam-a") if "cannot open" in m]
    assert 1 <= len(refused) <= 2 < stream.stats.open_failures, refused
    assert all("\n" not in m and server.url("cam") in m for m in refused)


def test_corrupt_packets_are_counted_or_concealed_and_the_stream_goes_on(
    rtsp_server: RtspServerFactory, clip: Path, tmp_path: Path,
    cameras: StartCamera,
) -> None:
    damaged = corrupt_slices(clip, tmp_path / "damaged.mp4", every=3)
    server = rtsp_server({"cam": damaged})
    # interval 0.1 s < the GOP: every packet is decoded, so every damaged one reaches the decoder.
    # (A long read timeout: a stall here would mean the damage broke the session, not a busy machine.)
    stream, seen = cameras("cam-a", server.url("cam"), interval=0.1, read_timeout=5.0)
    # Three loops of the file (3 x 20 packets, a third of them damaged), and good frames decoded
    # between the damaged ones (the decoder recovers at each keyframe).
    s = stream.stats
    poll(lambda: s.packets >= 60 and s.frames_decoded >= 20, 60, "three loops of the damaged file decoded")
    assert s.corrupt_packets >= 1, "the damaged slices reached the decoder and were refused"
    frames = seen.frames
    poll(lambda: seen.frames >= frames + 3, 30, "analyses going on after the damage")
    assert s.connects == 1 and s.stalls == 0 and stream.alive()


def corrupt_slices(src: Path, dest: Path, every: int) -> Path:
    """Copy `src`, replacing the slice data (not the NAL length or header) of every `every`-th packet
    with seeded random bytes: the container and the RTP packetiser still work, the decoder cannot."""
    with av.open(str(src)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size and p.pos is not None]
    data = bytearray(src.read_bytes())
    rng = random.Random(11)
    damaged = 0
    for i, (pos, size) in enumerate(packets):
        if i % every != 1:
            continue
        offset = pos
        while offset < pos + size:  # AVC in MP4: 4-byte big-endian NAL lengths
            (length,) = struct.unpack(">I", data[offset : offset + 4])
            if data[offset + 4] & 0x1F in (1, 5) and length > 1:  # a slice: keep its 1-byte header
                data[offset + 5 : offset + 4 + length] = rng.randbytes(length - 1)
                damaged += 1
            offset += 4 + length
    assert damaged >= 5, f"only {damaged} slices damaged"
    dest.write_bytes(bytes(data))
    # The damage is real: decoding the file locally fails on some packets.
    errors = 0
    with av.open(str(dest)) as container:
        for packet in container.demux(video=0):
            try:
                packet.decode()
            except av.error.FFmpegError:
                errors += 1
    assert errors >= 1
    return dest


def test_a_camera_password_never_reaches_the_log(
    cameras: StartCamera, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again below: connections are refused
    with caplog.at_level(logging.DEBUG, logger=INGEST_LOG):
        stream, _ = cameras("cam-a", f"rtsp://admin:s3cret-pw@127.0.0.1:{port}/live")
        poll(lambda: stream.stats.open_failures >= 2, 20, "failed opens")
    assert caplog.records and all("s3cret-pw" not in r.getMessage() for r in caplog.records)
    assert any("admin:***@127.0.0.1" in r.getMessage() for r in caplog.records)


# -- one daemon, several cameras ------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Callable[[dict[str, str]], EdgeDaemon]]:
    """An EdgeDaemon (real detector, worker and uplink) for {camera id: url}, stopped at the end."""
    running: list[EdgeDaemon] = []

    def start(urls: dict[str, str]) -> EdgeDaemon:
        key_file = tmp_path / "device.key"
        wire.DeviceKey.generate().save(key_file, tmp_path / "device.pub")
        config = EdgeConfig(
            device_id="box-1", site="site-a", key_file=key_file, analysis_interval_seconds=0.3,
            broker=BrokerConfig(port=mosquitto.port), spool=SpoolConfig(dir=tmp_path / "spool"),
            stream=StreamConfig(open_timeout_seconds=TIMEOUT, read_timeout_seconds=TIMEOUT,
                                reconnect_max_seconds=0.5),
            cameras=[CameraConfig(id=cid, url=url) for cid, url in urls.items()],
        )
        running.append(EdgeDaemon(config).start())
        return running[-1]

    yield start
    for d in running:
        d.stop(drain_timeout=0.5)


@pytest.mark.e2e
def test_a_frozen_camera_does_not_hold_up_the_other_cameras(
    rtsp_server: RtspServerFactory, clip: Path, daemon: Callable[[dict[str, str]], EdgeDaemon]
) -> None:
    frozen, good = rtsp_server({"cam": clip}), rtsp_server({"cam": clip})  # pause() stops a whole server
    edge = daemon({"cam-frozen": frozen.url("cam"), "cam-good": good.url("cam")})
    streams = edge.streams
    poll(lambda: all(s.stats.analyses_offered >= 2 for s in streams.values()), 30, "both cameras analysed")

    frozen.pause()
    poll(lambda: streams["cam-frozen"].stats.stalls >= 1 and not streams["cam-frozen"].stats.connected, 15,
         "the frozen camera's stall")
    offered, analysed = streams["cam-good"].stats.analyses_offered, edge.worker.analyses
    # While the frozen camera is down, the shared detector keeps analysing the good one.
    poll(lambda: streams["cam-good"].stats.analyses_offered >= offered + 5, 30, "the good camera's analyses")
    poll(lambda: edge.worker.analyses >= analysed + 5, 30, "the detector working on")
    assert streams["cam-frozen"].stats.connects == 1 and edge.healthy()  # frozen still, and no thread died

    frozen.resume()
    frozen_offered = streams["cam-frozen"].stats.analyses_offered
    poll(lambda: streams["cam-frozen"].stats.analyses_offered > frozen_offered, 30, "the frozen camera back")
    assert edge.worker.failures == 0 and edge.healthy()


@pytest.mark.e2e
def test_garbage_and_missing_streams_log_one_line_each_and_the_good_camera_runs(
    rtsp_server: RtspServerFactory, clip: Path, garbage_server: GarbageServer,
    daemon: Callable[[dict[str, str]], EdgeDaemon], caplog: pytest.LogCaptureFixture,
) -> None:
    server = rtsp_server({"cam": clip})
    missing_url = server.url("cam").rsplit("/", 1)[0] + "/no-such-stream"
    with caplog.at_level(logging.WARNING, logger=INGEST_LOG):
        edge = daemon({"cam-good": server.url("cam"), "cam-garbage": garbage_server.url(),
                       "cam-missing": missing_url})
        streams = edge.streams
        poll(lambda: streams["cam-garbage"].stats.open_failures >= 8
             and streams["cam-missing"].stats.open_failures >= 8, 60, "repeated failures of the bad cameras")
        offered = streams["cam-good"].stats.analyses_offered
        poll(lambda: streams["cam-good"].stats.analyses_offered >= offered + 3, 30, "the good camera going on")
    assert garbage_server.connections >= 8
    for cid, url in (("cam-garbage", garbage_server.url()), ("cam-missing", missing_url)):
        stats = streams[cid].stats
        assert stats.connects == 0 and stats.packets == 0 and streams[cid].alive()
        lines = warnings_of(caplog, cid)
        # One line per kind of failure, not one per retry; each says which camera and which URL.
        assert 1 <= len(lines) <= 3 < stats.open_failures, lines
        assert all("\n" not in m and "cannot open" in m and url in m for m in lines), lines
    assert "404" in warnings_of(caplog, "cam-missing")[0]
    assert edge.camera_stats()["cam-garbage"]["open_failures"] >= 8
    assert edge.healthy() and edge.worker.failures == 0
    assert not warnings_of(caplog, "cam-good")
