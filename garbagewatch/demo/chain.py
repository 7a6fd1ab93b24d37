"""The whole chain on one machine, on real parts: Mosquitto, an RTSP camera, the edge, the central.

Used by `garbagewatch demo` and by the end-to-end tests, so both exercise the same wiring.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import wire
from central.audit.chain import AuditTrail
from central.audit.schema import ensure_schema as ensure_audit_schema
from central.auth.users import add_user
from central.config import BrokerConfig as CentralBroker
from central.config import CentralConfig, DeviceConfig, NotifyConfig
from central.console.stack import ConsoleStack
from central.service import CentralService
from central.store.database import open_database
from edge.config import (
    BrokerConfig,
    CameraConfig,
    EdgeConfig,
    EvidenceConfig,
    ExposureSettings,
    SpoolConfig,
    StreamConfig,
)
from edge.daemon import EdgeDaemon
from garbagewatch.devtools.mosquitto import Mosquitto
from garbagewatch.devtools.ports import free_port


@dataclass
class NotificationSink:
    """A local HTTP endpoint that Apprise posts JSON to (`json://127.0.0.1:PORT/notify`)."""

    received: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> NotificationSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    sink.received.append(json.loads(body))
                except ValueError:
                    sink.received.append({"raw": body.decode(errors="replace")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, name="notify-sink", daemon=True).start()
        return self

    @property
    def apprise_url(self) -> str:
        assert self.server is not None
        return f"json://127.0.0.1:{self.server.server_address[1]}/notify"

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()


@dataclass(frozen=True)
class Timing:
    """Short durations for demos and tests (production defaults are minutes)."""

    analysis_interval: float = 1.0
    confirm_seconds: float = 4.0
    clear_seconds: float = 6.0
    preroll_seconds: float = 4.0
    postroll_seconds: float = 2.0
    read_timeout: float = 3.0


class Chain:
    """Broker + central + edge for one camera URL, under one data folder."""

    def __init__(self, data_dir: Path, camera_url: str, *, timing: Timing = Timing(),
                 device_id: str = "demo-box", site: str = "demo-site", camera_id: str = "cam-1",
                 broker: Mosquitto | None = None, console: bool = False) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self.broker = broker or Mosquitto(data_dir / "broker")
        self.sink = NotificationSink()
        key_dir = data_dir / "edge"
        key_dir.mkdir(exist_ok=True)
        self.key_file = key_dir / "device.key"
        if not self.key_file.exists():
            wire.DeviceKey.generate().save(self.key_file, key_dir / "device.pub")
        self.key = wire.DeviceKey.load(self.key_file)
        self.device_id, self.site, self.camera_id, self.camera_url = device_id, site, camera_id, camera_url
        self.timing = timing
        self.central: CentralService | None = None
        self.edge: EdgeDaemon | None = None
        self.console_wanted = console
        self.console: ConsoleStack | None = None
        self.console_login: tuple[str, str] | None = None

    def central_config(self) -> CentralConfig:
        return CentralConfig(
            data_dir=self.data_dir / "central",
            broker=CentralBroker(host="127.0.0.1", port=self.broker.port, client_id="gw-central-demo"),
            devices=[DeviceConfig.for_key(self.device_id, self.key.public, site=self.site)],
            notify=NotifyConfig(urls=[self.sink.apprise_url], first_retry_s=1.0, poll_s=0.2),
        )

    def edge_config(self) -> EdgeConfig:
        t = self.timing
        return EdgeConfig(
            device_id=self.device_id, site=self.site, key_file=self.key_file,
            analysis_interval_seconds=t.analysis_interval, stats_interval_seconds=10.0,
            broker=BrokerConfig(host="127.0.0.1", port=self.broker.port, ack_timeout_seconds=3.0),
            spool=SpoolConfig(dir=self.data_dir / "edge" / "spool", quota_mb=256),
            exposure=ExposureSettings(confirm_seconds=t.confirm_seconds, clear_seconds=t.clear_seconds,
                                      update_seconds=max(60.0, 10 * t.confirm_seconds)),
            evidence=EvidenceConfig(preroll_seconds=t.preroll_seconds, postroll_seconds=t.postroll_seconds),
            stream=StreamConfig(open_timeout_seconds=10.0, read_timeout_seconds=t.read_timeout,
                                reconnect_max_seconds=2.0),
            cameras=[CameraConfig(id=self.camera_id, url=self.camera_url)],
        )

    def start(self) -> Chain:
        self.broker.start()
        self.sink.start()
        config = self.central_config()
        db = open_database(config.db_path)
        try:
            ensure_audit_schema(db)  # the service writes audit rows from its first event on
        finally:
            db.conn.close()
        if self.console_wanted:
            # The console with the API behind it; built first, it creates the audit tables.
            self.console = ConsoleStack(config, host="127.0.0.1", port=free_port())
        self.central = CentralService(config, audit_for=AuditTrail).start()
        self.central.wait_ready(10.0)
        if self.console is not None:
            self.console.start()
            self.console_login = ("demo", secrets.token_urlsafe(9))
            db = open_database(config.db_path)
            try:
                add_user(db, self.console_login[0], "admin", self.console_login[1], actor="demo",
                         audit=AuditTrail(db), now=time.time())
            finally:
                db.conn.close()
        self.edge = EdgeDaemon(self.edge_config()).start()
        return self

    def work_orders(self) -> list[dict[str, Any]]:
        assert self.central is not None
        db = open_database(self.central.config.db_path)
        try:
            return list(db.query("SELECT * FROM work_orders ORDER BY opened_at, id"))
        finally:
            db.conn.close()

    def evidence_of(self, order_id: str) -> list[dict[str, Any]]:
        """The evidence files of a work order, with their path on disk."""
        assert self.central is not None
        db = open_database(self.central.config.db_path)
        try:
            rows = db.query(
                "SELECT DISTINCT f.role, f.name, f.sha256, f.size, f.path FROM order_events o "
                "JOIN event_files ef ON ef.message_id = o.message_id "
                "JOIN evidence_files f ON f.sha256 = ef.sha256 WHERE o.work_order_id = ? ORDER BY f.role",
                [order_id])
            return [{**r, "file": self.central.config.evidence_dir / r["path"]} for r in rows]
        finally:
            db.conn.close()

    def stop(self) -> None:
        if self.edge:
            self.edge.stop(drain_timeout=5.0)
        if self.console:
            self.console.stop()
        if self.central:
            self.central.stop()
        self.sink.stop()
        self.broker.stop()
