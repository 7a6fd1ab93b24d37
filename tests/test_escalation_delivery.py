"""Delivery through a notification service outage: real Apprise, a real HTTP endpoint that goes away and back.

"Notification service down, then back: every notification delivered, none twice."
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from caseflow_fixtures import file, make_config, manifest
from central_edge import wait_for
from sqlite_utils import Database

import wire
from central.caseflow.flow import CaseFlow
from central.config import ChannelConfig, NotifyConfig, PersonConfig
from central.counters import Counters
from central.evidence_store import ContentStore
from central.notify import AppriseSender, NotificationWorker
from central.store import delivery_log, open_database


class Endpoint:
    """An HTTP endpoint recording (path, JSON body) that can be stopped (connection refused) and restarted."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.port = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self.start()

    def start(self) -> None:
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with endpoint._lock:
                    endpoint.received.append((self.path, json.loads(data)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def url(self, name: str) -> str:
        return f"json://127.0.0.1:{self.port}/{name}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        with self._lock:
            return [b for p, b in self.received if p == path]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    e = Endpoint()
    yield e
    if e._server is not None:
        e.stop()


def photo_manifest(event_id: str, zone: str, store: ContentStore) -> wire.Manifest:
    m = manifest(event_id, zone=zone)
    data = f"jpeg of {event_id}".encode()
    sha = store.put_bytes(data)
    files = [
        f.model_copy(update={"sha256": sha, "size": len(data)}) if f.role == "snapshot_boxes" else f for f in m.files
    ]
    copy: wire.Manifest = m.model_copy(update={"files": files})
    return copy


def test_an_outage_of_the_notification_service_delays_but_loses_and_repeats_nothing(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    base = make_config(tmp_path)
    notify = NotifyConfig(
        urls=[endpoint.url("feed")],
        people=[
            PersonConfig(id="zhang", channels=[ChannelConfig(url=endpoint.url("zhang"), attach_snapshot=True)]),
            PersonConfig(id="li", channels=[ChannelConfig(url=endpoint.url("li"))]),
            PersonConfig(id="wang", channels=[ChannelConfig(url=endpoint.url("wang"))]),
        ],
        console_url="http://console.test",
        first_retry_s=0.05,
        max_retry_s=0.2,
        max_attempts=1000,
        poll_s=0.05,
        group_s=0.3,  # notices arriving during the outage join the pending messages
        repeat_s=0,
    )
    config = make_config(tmp_path, notify=notify)
    assert config.evidence_dir == base.evidence_dir
    store = ContentStore(config.evidence_dir)
    db: Database = open_database(config.db_path)
    flow = CaseFlow(config, clock=time.time)
    worker = NotificationWorker(
        config.db_path,
        notify,
        AppriseSender(notify.all_urls()),
        Counters(),
        time.time,
        evidence_dir=config.evidence_dir,
    )

    endpoint.stop()  # the notification service is down from the start
    worker.start()
    try:
        orders = [file(flow, db, photo_manifest(f"00000000{i:04d}", f"z{i}", store)).work_order_id for i in range(6)]
        wait_for(
            lambda: db.execute("SELECT count(*) FROM notification_attempts WHERE ok = 0").fetchone()[0] >= 6,
            20,
            "failed attempts while the service is down",
        )
        # More happens during the outage: two orders reopened by a supervisor, one closed by the camera.
        for order_id in orders[:2]:
            flow.act(db, order_id, "resolve", actor="user:zhang")
            flow.act(db, order_id, "reopen", actor="user:li", reason="not clean")
        file(flow, db, manifest("000000000005", "cleared", zone="z5", at=time.time(), n=0))
        time.sleep(0.5)
        assert endpoint.received == []

        endpoint.start()  # back, on the same port
        wait_for(
            lambda: db.execute("SELECT count(*) FROM notifications WHERE status != 'sent'").fetchone()[0] == 0,
            30,
            "every message sent after the service came back",
        )
    finally:
        worker.stop()

    # Every notice reached every channel it was meant for, exactly once: its first line is in
    # exactly one delivered message (alone, or listed in a message gathered during the outage).
    def opened(o: str | None) -> str:
        return f"Work order {o} (event code 0102)"

    def reopened(o: str | None) -> str:
        return f"Work order {o} (event code 0102) is reopened."

    def resolved(o: str | None) -> str:
        return f"Work order {o} (event code 0102) is resolved by hand; waiting for the camera to confirm."

    closed = f"Work order {orders[5]} is closed: the camera sees the place clean again."
    routed = [opened(o) for o in orders] + [reopened(o) for o in orders[:2]] + [closed]
    feed = routed + [resolved(o) for o in orders[:2]]  # a feed hears every notice
    expected = {"/zhang": routed, "/feed": feed, "/li": [reopened(o) for o in orders[:2]], "/wang": []}
    for path, wanted in expected.items():
        lines = [line for b in endpoint.bodies(path) for line in b["message"].splitlines()]
        heads = sorted(line for line in lines if line.startswith("Work order WO-"))
        assert heads == sorted(wanted), path

    # One successful attempt per message; the photo only went where the config allows it.
    sent = db.execute("SELECT notification_id, count(*) FROM notification_attempts WHERE ok = 1 GROUP BY 1").fetchall()
    assert sent and all(n == 1 for _, n in sent)
    assert len(endpoint.received) == len(sent)
    photos = [a for b in endpoint.bodies("/zhang") for a in b.get("attachments") or []]
    assert photos and all(base64.b64decode(a["base64"]).startswith(b"jpeg of ") for a in photos)
    assert not any(b.get("attachments") for b in endpoint.bodies("/feed") + endpoint.bodies("/li"))
    log = delivery_log(db, recipient="zhang")
    assert log and all(row["status"] == "sent" for row in log)
    assert any(not a["ok"] for row in log for a in json.loads(row["attempts_log"]))
