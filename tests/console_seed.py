"""Test helper (not a test module): a central data directory for the console's tests.

Everything is filed the production way: signed bundles (real H.264 and H.265 clips, real JPEG
snapshots) go through central.ingest.IngestHandler (what the MQTT consumer calls) with the case
flow audited into the real hash-chained audit trail; users are added with central.auth; a
signed checkpoint closes the seed. Tests copy the directory (`clone`), so each starts alike.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fastapi.testclient import TestClient

import wire
from central.api.context import ensure_api_schema
from central.audit.chain import AuditTrail
from central.audit.checkpoints import CHECKPOINT_FILE, append_checkpoint_file, issue_checkpoint, load_or_create_key
from central.auth.passwords import configure_hashing
from central.auth.users import add_user
from central.caseflow.flow import CaseFlow
from central.config import CentralConfig, DeviceConfig
from central.console.schema import ensure_schema as ensure_console_schema
from central.counters import Counters
from central.ingest.handler import IngestHandler
from central.store.database import open_database
from garbagewatch.devtools.footage import encode_h264
from wire.timefmt import format_ts
from wire.topics import TopicKind, event_topic, file_topic, status_topic

PASSWORD = "correct horse battery staple"
# name -> (username, role, sites)
USERS = {
    "admin": ("admin-1", "admin", []),
    "sup_a": ("sup-a", "supervisor", ["site-a"]),
    "sup_b": ("sup-b", "supervisor", ["site-b"]),
    "auditor": ("auditor-1", "auditor", []),
}
BULK = 55  # orders at site-a/cam-3: more than one page of 50
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True)
class SeedOrder:
    id: str
    site: str
    camera: str
    files: dict[str, str]  # role -> sha256
    filed_at: float


@dataclass
class ConsoleSeed:
    data_dir: Path
    keys: dict[str, wire.DeviceKey]
    orders: dict[str, SeedOrder] = field(default_factory=dict)
    bulk: list[str] = field(default_factory=list)

    def config(self, data_dir: Path) -> CentralConfig:
        return CentralConfig(
            data_dir=data_dir,
            devices=[
                DeviceConfig.for_key("box-1", self.keys["box-1"].public, site="site-a"),
                DeviceConfig.for_key("box-2", self.keys["box-2"].public, site="site-b"),
            ],
        )


def fast_hashing() -> None:
    """argon2 at test cost: milliseconds per hash instead of half a second."""
    configure_hashing(time_cost=1, memory_cost_kib=8, parallelism=1)


def jpeg(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return bytes(data)


def clip(path: Path, codec: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(20)]
    return encode_h264(frames, path, fps=10, gop=10, codec=codec).read_bytes()


def blob(seed: str, n: int) -> bytes:
    out = b""
    while len(out) < n:
        out += hashlib.sha256(f"{seed}-{len(out)}".encode()).digest()
    return out[:n]


class _Edge:
    """Sends what an edge box would, straight into the central's ingest handler."""

    def __init__(self, handler: IngestHandler, key: wire.DeviceKey, device: str, site: str) -> None:
        self.handler, self.key, self.device, self.site = handler, key, device, site

    def status(self, state: str, cameras: list[str]) -> None:
        body = {"protocol": 1, "state": state, "cameras": cameras, "version": "test"}
        self.handler.handle(status_topic(self.device), json.dumps(body).encode())

    def event(
        self,
        camera: str,
        zone: str,
        files: list[tuple[str, str, str, bytes]],
        *,
        kind: str = "confirmed",
        event_id: str | None = None,
        at: float,
    ) -> dict[str, Any]:
        """Send the files (init, segments, fin) and the signed event; return the event's ack."""
        event_id = event_id or wire.new_event_id(at)
        for role, name, media_type, data in files:
            sha = hashlib.sha256(data).hexdigest()
            init = {
                "protocol": 1,
                "event_id": event_id,
                "role": role,
                "name": name,
                "media_type": media_type,
                "size": len(data),
                "sha256": sha,
                "segment_bytes": 64 * 1024,
            }
            self.handler.handle(
                file_topic(TopicKind.FILE_INIT, self.device, self.site, camera, sha), json.dumps(init).encode()
            )
            for off in range(0, len(data), 64 * 1024):
                self.handler.handle(
                    file_topic(TopicKind.FILE_SEGMENT, self.device, self.site, camera, sha, offset=off),
                    data[off : off + 64 * 1024],
                )
            self.handler.handle(
                file_topic(TopicKind.FILE_FIN, self.device, self.site, camera, sha, size=len(data)), b""
            )
        manifest = wire.Manifest.model_validate(
            {
                "event_id": event_id,
                "kind": kind,
                "device_id": self.device,
                "site": self.site,
                "camera": camera,
                "zone": zone,
                "first_seen": format_ts(at - 30),
                "at": format_ts(at),
                "clock_synced": True,
                "frame_size": (160, 120),
                "detections": [{"class_name": "garbage_bag", "confidence": 0.9, "box": (10, 20, 80, 100)}],
                "model": {"name": "gw-yolo-n", "sha256": "0" * 64},
                "files": [
                    {"role": r, "name": n, "media_type": t, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
                    for r, n, t, d in files
                ],
            }
        ).model_dump(mode="json")
        body = {
            "protocol": 1,
            "manifest": manifest,
            "signature": wire.sign_manifest(self.key, manifest),
            "key_id": self.key.key_id,
        }
        out = self.handler.handle(event_topic(self.device, self.site, camera), json.dumps(body).encode())
        acks = [json.loads(o.payload) for o in out if json.loads(o.payload).get("ref_type") == "event"]
        assert acks and acks[-1]["status"] == "ok", f"event not filed: {acks}"
        return dict(acks[-1], event_id=event_id)


def seed_console(workdir: Path) -> ConsoleSeed:
    fast_hashing()
    seed = ConsoleSeed(workdir / "central", {"box-1": wire.DeviceKey.generate(), "box-2": wire.DeviceKey.generate()})
    config = seed.config(seed.data_dir)
    config.data_dir.mkdir(parents=True)
    now = time.time()
    clock = Clock(now - 3600)
    db = open_database(config.db_path)
    ensure_api_schema(db)
    ensure_console_schema(db)
    trail = AuditTrail(db, clock)
    handler = IngestHandler(config, db, Counters(), clock, case_flow=CaseFlow(config, audit=trail, clock=clock))
    box1 = _Edge(handler, seed.keys["box-1"], "box-1", "site-a")
    box2 = _Edge(handler, seed.keys["box-2"], "box-2", "site-b")
    box1.status("online", ["cam-1", "cam-2", "cam-3"])
    box2.status("online", ["cam-1"])

    def file(name: str, edge: _Edge, camera: str, zone: str, files: list[tuple[str, str, str, bytes]]) -> None:
        ack = edge.event(camera, zone, files, at=clock.t)
        seed.orders[name] = SeedOrder(
            ack["work_order"], edge.site, camera, {f[0]: hashlib.sha256(f[3]).hexdigest() for f in files}, clock.t
        )

    media = workdir / "media"
    media.mkdir()
    for name, camera, codec, n in (("h264", "cam-1", "libx264", 1), ("h265", "cam-2", "libx265", 2)):
        file(
            name,
            box1,
            camera,
            "z1",
            [
                ("clip", "clip.mp4", "video/mp4", clip(media / f"{name}.mp4", codec, n)),
                ("snapshot", "snapshot.jpg", "image/jpeg", jpeg(10 * n)),
                ("snapshot_boxes", "snapshot_boxes.jpg", "image/jpeg", jpeg(10 * n + 1)),
            ],
        )
    # Seen clean: confirmed, then cleared with the after-snapshot -> verified and closed by the camera.
    ack = box1.event("cam-1", "z2", [("snapshot_boxes", "snapshot_boxes.jpg", "image/jpeg", jpeg(30))], at=clock.t)
    after = jpeg(31)
    box1.event(
        "cam-1",
        "z2",
        [("after_snapshot", "after_snapshot.jpg", "image/jpeg", after)],
        kind="cleared",
        event_id=ack["event_id"],
        at=clock.t + 60,
    )
    seed.orders["closed"] = SeedOrder(
        ack["work_order"], "site-a", "cam-1", {"after_snapshot": hashlib.sha256(after).hexdigest()}, clock.t
    )
    # Twenty days old at site-b: long overdue, and outside a date filter of the last days.
    clock.t = now - 20 * 86400
    file(
        "old_b",
        box2,
        "cam-1",
        "z1",
        [
            ("clip", "clip.mp4", "video/mp4", blob("old", 3000)),
            ("snapshot_boxes", "snapshot_boxes.jpg", "image/jpeg", jpeg(40)),
        ],
    )
    clock.t = now - 1800
    for n in range(BULK):
        ack = box1.event(
            "cam-3", f"z{100 + n}", [("snapshot", "snapshot.jpg", "image/jpeg", blob(f"bulk{n}", 900))], at=clock.t
        )
        seed.bulk.append(ack["work_order"])
    box2.status("offline", ["cam-1"])
    clock.t = now - 60
    for username, role, sites in USERS.values():
        add_user(db, username, role, PASSWORD, sites=sites, actor="cli:seed", audit=trail, now=clock.t)
    cp = issue_checkpoint(db, load_or_create_key(config.data_dir), clock.t)
    append_checkpoint_file(config.data_dir / CHECKPOINT_FILE, cp)
    db.close()
    return seed


def clone(seed: ConsoleSeed, dest: Path) -> Path:
    shutil.copytree(seed.data_dir, dest)
    return dest


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1)


def sign_in(client: TestClient, who: str, password: str = PASSWORD) -> Any:
    """Sign in as USERS[who] (or a username) through the form, as a browser would."""
    username = USERS[who][0] if who in USERS else who
    form = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_of(form.text), "next": "/"},
        follow_redirects=False,
    )
