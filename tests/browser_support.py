"""Test helpers for the console's browser tests (not a test module itself).

- `seed_console_data`: a central data directory with real work orders in it, filed the production
  way: a CentralService on a real Mosquitto receives signed bundles from a test edge, with a real
  H.264 clip (synthetic street frames), JPEG snapshots and an after-snapshot; then one user of
  each console role, created through central.auth.
- `ConsoleServer`: the console app served by uvicorn on a thread, on a free port.
- `launch_chromium`: Debian's Chromium (/usr/bin/chromium) driven by Playwright. Playwright never
  downloads a browser here; without /usr/bin/chromium the browser tests skip (CI installs it
  through scripts/bootstrap.sh).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import uvicorn
from central_edge import BundleFile, HookServer, TestEdge, make_bundle, wait_for
from fastapi import FastAPI

import wire
from central import BrokerConfig, CentralConfig, CentralService, DeviceConfig, NotifyConfig
from central.api.context import ensure_api_schema
from central.audit.chain import AuditTrail
from central.audit.publisher import CheckpointPublisher
from central.auth.users import add_user
from central.store.database import open_database
from garbagewatch.demo.footage import DEMO_SEED, street_frames
from garbagewatch.devtools.footage import encode_h264
from garbagewatch.devtools.mosquitto import Mosquitto
from wire.timefmt import format_ts
from wire.topics import status_topic

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

__all__ = [
    "CHROMIUM",
    "PASSWORD",
    "ConsoleSeed",
    "ConsoleServer",
    "SeededOrder",
    "chromium_missing",
    "launch_chromium",
    "seed_console_data",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests may run as root in a container, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # no requests of its own: nothing outside is reachable
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
CAMERAS = {"box-1": ["cam-1", "cam-2"], "box-2": ["cam-3"]}
FRAME_SIZE = (640, 360)
FPS = 10


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (scripts/bootstrap.sh installs Debian's chromium)"
    return None


def launch_chromium(playwright: Playwright) -> Browser:
    """Headless Debian Chromium with a fresh profile (Playwright gives each launch a new user-data-dir)."""
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


# -- evidence a camera would send ----------------------------------------------------------------


def _jpeg(frame: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok, "JPEG encoding failed"
    return bytes(data.tobytes())


@dataclass(frozen=True)
class Footage:
    clip: bytes  # H.264 MP4 of the street with garbage on it
    snapshot: bytes  # JPEG: the garbage
    clean: bytes  # JPEG: the same street cleaned up


def make_footage(workdir: Path, seed: int) -> Footage:
    """A 3 s clip (640x360, 10 fps, a keyframe every second) and two stills of one synthetic street."""
    frames = list(street_frames(seed, clean_s=0.5, dirty_s=3.0, after_s=0.5, fps=FPS, size=FRAME_SIZE))
    clean_n = int(0.5 * FPS)
    dirty = frames[clean_n:-clean_n]
    path = encode_h264(dirty, workdir / f"clip-{seed}.mp4", fps=FPS, gop=FPS)
    return Footage(clip=path.read_bytes(), snapshot=_jpeg(dirty[len(dirty) // 2]), clean=_jpeg(frames[-1]))


# -- the seeded central ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededOrder:
    id: str
    site: str
    camera: str
    clip_sha256: str
    snapshot_sha256: str
    after_sha256: str | None = None


@dataclass(frozen=True)
class ConsoleSeed:
    data_dir: Path
    device_keys: dict[str, str]  # device id -> key fingerprint (what `garbagewatch verify` is given)
    central_key: str  # fingerprint of the key that signs the audit checkpoints
    open_a: SeededOrder  # site-a, cam-1: registered, its deadline running
    closed_a: SeededOrder  # site-a, cam-2: seen clean by the camera (after-snapshot), closed
    open_b: SeededOrder  # site-b, cam-3: registered
    users: dict[str, str]  # role -> username; every password is PASSWORD
    resolve_photo: bytes = field(repr=False)  # a JPEG a supervisor uploads when resolving

    def config(self) -> CentralConfig:
        """The central's config for this directory (the broker is gone: the console needs none)."""
        return CentralConfig(data_dir=self.data_dir, devices=[])


def _send(edge: TestEdge, bundle_files: list[BundleFile], key: wire.DeviceKey, **kwargs: object) -> tuple[str, str]:
    bundle = make_bundle(key, files=bundle_files, **kwargs)
    edge.send_bundle(bundle)
    ack = edge.wait_ack(bundle.event_id, "ok", timeout=30)
    assert ack["work_order"], f"no work order for {bundle.event_id}: {ack}"
    return str(ack["work_order"]), bundle.event_id


def _file(role: str, name: str, data: bytes) -> BundleFile:
    return BundleFile(role, name, "video/mp4" if name.endswith(".mp4") else "image/jpeg", data)


def seed_console_data(workdir: Path) -> ConsoleSeed:
    """Three orders filed through MQTT ingest (two at site-a, one at site-b) and three users."""
    keys = {"box-1": wire.DeviceKey.generate(), "box-2": wire.DeviceKey.generate()}
    sites = {"box-1": "site-a", "box-2": "site-b"}
    footage = [make_footage(workdir, DEMO_SEED + n) for n in range(3)]
    broker = Mosquitto(workdir / "mosquitto").start()
    hook = HookServer()  # the notifications' recipient (Apprise json://), so the pages show them sent
    data_dir = workdir / "central"
    config = CentralConfig(
        data_dir=data_dir,
        broker=BrokerConfig(port=broker.port, client_id="central-browser-seed"),
        devices=[DeviceConfig.for_key(d, keys[d].public, site=sites[d]) for d in keys],
        notify=NotifyConfig(
            urls=[hook.url], console_url="http://console.test", first_retry_s=0.2, poll_s=0.2, group_s=0
        ),
    )
    users = _add_users(data_dir)  # also makes the audit trail's tables, as `central run` has them
    # As `garbagewatch central run` does: ingest with its audit trail, and signed checkpoints of it.
    service = CentralService(config, audit_for=AuditTrail).start()
    checkpoints = CheckpointPublisher(db_path=config.db_path, data_dir=data_dir, broker=None, interval_s=3600).start()
    try:
        assert service.wait_ready(15), "the seeding central did not connect"
        edges = {d: TestEdge(broker.port, device=d) for d in keys}
        try:
            for device, edge in edges.items():  # each box says it is online, with its cameras
                edge.publish(status_topic(device), _availability(CAMERAS[device]))
            now = time.time()
            seeded: list[SeededOrder] = []
            places = [(device, camera) for device, cameras in CAMERAS.items() for camera in cameras]
            for n, (device, camera) in enumerate(places):
                f = footage[n]
                files = [_file("clip", "clip.mp4", f.clip), _file("snapshot", "snapshot.jpg", f.snapshot)]
                order_id, event_id = _send(
                    edges[device],
                    files,
                    keys[device],
                    device=device,
                    site=sites[device],
                    camera=camera,
                    at=now - 600 + n,
                )
                after = None
                if camera == "cam-2":  # the camera saw the spot clean again: verified and closed
                    after_file = _file("after_snapshot", "after.jpg", f.clean)
                    cleared, _ = _send(
                        edges[device],
                        [after_file],
                        keys[device],
                        device=device,
                        site=sites[device],
                        camera=camera,
                        kind="cleared",
                        event_id=event_id,
                        at=now - 300,
                    )
                    assert cleared == order_id, "the cleared message joined another order"
                    after = after_file.sha256
                seeded.append(SeededOrder(order_id, sites[device], camera, files[0].sha256, files[1].sha256, after))
            wait_for(lambda: _all_sent(config), timeout=30, what="the notifications of the seeded orders")
            wait_for(lambda: _cameras_online(config) == 3, timeout=30, what="the boxes' cameras online")
        finally:
            for edge in edges.values():
                edge.close()
    finally:
        service.stop()
        checkpoints.stop()  # signs the chain's head
        broker.kill()
        hook.close()
    return ConsoleSeed(
        data_dir=data_dir,
        device_keys={d: k.key_id for d, k in keys.items()},
        central_key=checkpoints.key_id,
        open_a=seeded[0],
        closed_a=seeded[1],
        open_b=seeded[2],
        users=users,
        resolve_photo=footage[0].clean,
    )


def _availability(cameras: list[str]) -> bytes:
    status = wire.Availability(state="online", at=format_ts(time.time()), cameras=cameras, version="0.1.0")
    return status.model_dump_json(exclude_none=True).encode()


def _cameras_online(config: CentralConfig) -> int:
    db = open_database(config.db_path)
    try:
        return int(db.execute("SELECT count(*) FROM cameras WHERE online = 1").fetchone()[0])
    finally:
        db.close()


def _all_sent(config: CentralConfig) -> bool:
    db = open_database(config.db_path)
    try:
        statuses = [str(r[0]) for r in db.execute("SELECT status FROM notifications")]
    finally:
        db.close()
    return bool(statuses) and all(s == "sent" for s in statuses)


def _add_users(data_dir: Path) -> dict[str, str]:
    db = open_database(data_dir / "garbagewatch.db")
    try:
        ensure_api_schema(db)
        audit = AuditTrail(db)
        users = {"admin": "ada", "supervisor": "sam", "auditor": "aud"}
        for role, name in users.items():
            # The supervisor covers site-a only: site-b's order is not theirs to see.
            sites = ["site-a"] if role == "supervisor" else []
            add_user(db, name, role, PASSWORD, sites=sites, actor="cli:test", audit=audit, now=time.time())
    finally:
        db.close()
    return users


# -- serving the console --------------------------------------------------------------------------


class ConsoleServer:
    """An ASGI app (the console's) on uvicorn, on a thread, on a free port of 127.0.0.1."""

    def __init__(self, app: FastAPI) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._socket.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", server_header=False)
        )
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 20.0) -> ConsoleServer:
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="console", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the console did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
