"""Test helpers for the central's tests: a minimal edge speaking the wire contract, and an HTTP hook.

Not a test module itself (the tests import it). The edge here is deliberately simple: it
publishes exactly what a test tells it to, so tests can also publish what a real edge never would.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

import wire
from wire.timefmt import format_ts
from wire.topics import TopicKind, ack_topic, event_topic, file_topic

SEGMENT = 1024  # small segments so a few KiB make several


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll `cond` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class BundleFile:
    role: str
    name: str
    media_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def ref(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "name": self.name,
            "media_type": self.media_type,
            "size": len(self.data),
            "sha256": self.sha256,
        }


@dataclass
class Bundle:
    device: str
    site: str
    camera: str
    manifest: dict[str, Any]
    body: dict[str, Any]
    files: list[BundleFile] = field(default_factory=list)

    @property
    def event_id(self) -> str:
        return str(self.manifest["event_id"])

    @property
    def payload(self) -> bytes:
        return json.dumps(self.body).encode()


def make_files(seed: int = 0, clip_bytes: int = 5000, snap_bytes: int = 2500) -> list[BundleFile]:
    def blob(n: int, salt: str) -> bytes:
        out = b""
        i = 0
        while len(out) < n:
            out += hashlib.sha256(f"{seed}-{salt}-{i}".encode()).digest()
            i += 1
        return out[:n]

    return [
        BundleFile("clip", "clip.mp4", "video/mp4", blob(clip_bytes, "clip")),
        BundleFile("snapshot", "snapshot.jpg", "image/jpeg", blob(snap_bytes, "snap")),
    ]


def make_bundle(
    key: wire.DeviceKey,
    *,
    device: str = "box-1",
    site: str = "site-a",
    camera: str = "cam-1",
    zone: str = "z1",
    kind: str = "confirmed",
    event_id: str | None = None,
    files: list[BundleFile] | None = None,
    at: float = 1_800_000_000.0,
) -> Bundle:
    # Fresh content by default: two bundles never share a file unless a test wants them to.
    files = make_files(seed=random.randrange(1 << 30)) if files is None else files
    manifest = wire.Manifest(
        event_id=event_id or wire.new_event_id(),
        kind=kind,  # type: ignore[arg-type]
        device_id=device,
        site=site,
        camera=camera,
        zone=zone,
        first_seen=format_ts(at - 30),
        at=format_ts(at),
        clock_synced=True,
        frame_size=(1280, 720),
        detections=[wire.DetectionRecord(class_name="garbage_bag", confidence=0.87, box=(10, 20, 110, 220))],
        model=wire.ModelRef(name="gw-yolo-n", sha256="0" * 64),
        files=[wire.FileRef.model_validate(f.ref()) for f in files],
    ).model_dump(mode="json")
    body = {
        "protocol": 1,
        "manifest": manifest,
        "signature": wire.sign_manifest(key, manifest),
        "key_id": key.key_id,
    }
    return Bundle(device, site, camera, manifest, body, files)


class TestEdge:
    """A paho client that publishes files and events for one device and records its acks."""

    __test__ = False  # not a pytest test class

    def __init__(self, port: int, device: str = "box-1", client_id: str | None = None) -> None:
        self.device = device
        self.acks: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"edge-{device}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.on_message = self._on_message
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(ack_topic(device), qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "edge did not subscribe to its ack topic"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.acks.append(json.loads(msg.payload))

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(10)

    # -- what an edge sends -----------------------------------------------------------------------

    def init_payload(self, b: Bundle, f: BundleFile, segment_bytes: int = SEGMENT) -> bytes:
        return json.dumps(
            {
                "protocol": 1,
                "event_id": b.event_id,
                "role": f.role,
                "name": f.name,
                "media_type": f.media_type,
                "size": len(f.data),
                "sha256": f.sha256,
                "segment_bytes": segment_bytes,
            }
        ).encode()

    def segments(self, f: BundleFile, size: int = SEGMENT) -> list[tuple[int, bytes]]:
        return [(off, f.data[off : off + size]) for off in range(0, len(f.data), size)]

    def send_init(self, b: Bundle, f: BundleFile) -> None:
        self.publish(
            file_topic(TopicKind.FILE_INIT, b.device, b.site, b.camera, f.sha256), self.init_payload(b, f)
        )

    def send_segments(self, b: Bundle, f: BundleFile, segs: Iterable[tuple[int, bytes]]) -> None:
        for off, data in segs:
            self.publish(
                file_topic(TopicKind.FILE_SEGMENT, b.device, b.site, b.camera, f.sha256, offset=off), data
            )

    def send_fin(self, b: Bundle, f: BundleFile, size: int | None = None) -> None:
        self.publish(
            file_topic(
                TopicKind.FILE_FIN,
                b.device,
                b.site,
                b.camera,
                f.sha256,
                size=len(f.data) if size is None else size,
            ),
            b"",
        )

    def send_file(self, b: Bundle, f: BundleFile) -> None:
        self.send_init(b, f)
        self.send_segments(b, f, self.segments(f))
        self.send_fin(b, f)

    def send_event(self, b: Bundle, payload: bytes | None = None) -> None:
        self.publish(event_topic(b.device, b.site, b.camera), b.payload if payload is None else payload)

    def send_bundle(self, b: Bundle) -> None:
        for f in b.files:
            self.send_file(b, f)
        self.send_event(b)

    # -- what came back ---------------------------------------------------------------------------

    def acks_for(self, ref: str, status: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [a for a in self.acks if a["ref"] == ref and (status is None or a["status"] == status)]

    def wait_ack(
        self, ref: str, status: str | None = None, count: int = 1, timeout: float = 10.0
    ) -> dict[str, Any]:
        found = wait_for(
            lambda: len(self.acks_for(ref, status)) >= count and self.acks_for(ref, status),
            timeout,
            f"{count} ack(s) {status or ''} for {ref}",
        )
        return dict(found[-1])


class HookServer:
    """A local HTTP server that records the JSON bodies POSTed to it (the Apprise json:// target).

    `fail_next` makes the next N requests answer 500.
    """

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_next = 0
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                failing = hook.fail_next > 0
                if failing:
                    hook.fail_next -= 1
                else:
                    hook.bodies.append(json.loads(data))
                self.send_response(500 if failing else 200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"json://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
