"""Shared fixtures: real local services (a Mosquitto broker, an RTSP server, a notification hook) and the dataset."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from central_edge import HookServer

from garbagewatch.devtools.mosquitto import Mosquitto
from garbagewatch.devtools.rtsp_server import RtspServer

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASET_DIR = REPO_ROOT.parent / "shared" / "datasets" / "garbage-cn"

RtspServerFactory = Callable[[Mapping[str, str | Path]], RtspServer]


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A started private broker on its own port (`.port`, `.url`); `.kill()` / `.start()` to bounce it."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.kill()


@pytest.fixture
def hook() -> Iterator[HookServer]:
    """A local HTTP endpoint recording what Apprise's json:// target POSTs to it (`.url`, `.bodies`)."""
    server = HookServer()
    yield server
    server.close()


@pytest.fixture
def rtsp_server(tmp_path: Path) -> Iterator[RtspServerFactory]:
    """Start an RTSP server for `{name: mp4_path}`: `srv = rtsp_server({"cam1": clip}); srv.url("cam1")`."""
    servers: list[RtspServer] = []

    def start(streams: Mapping[str, str | Path]) -> RtspServer:
        server = RtspServer(tmp_path / f"rtsp-{len(servers)}", streams=streams)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def dataset_dir() -> Path:
    """../shared/datasets/garbage-cn next to the repo (read at test time, never copied into the repo)."""
    if not (DATASET_DIR / "train" / "images").is_dir():
        pytest.skip(f"dataset not found at {DATASET_DIR} (../shared/datasets/garbage-cn next to the repo)")
    return DATASET_DIR
