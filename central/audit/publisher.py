"""Issues a signed checkpoint of the audit chain head at intervals and publishes it off the server.

Each new head is signed, recorded in audit_checkpoints, appended (fsynced) to
data_dir/audit-checkpoints.jsonl and published retained (QoS 1) on CHECKPOINT_TOPIC. A head that
has not moved is not signed again. On (re)connect the latest checkpoint is published again, so
the broker's retained copy catches up after an outage.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlite_utils import Database

from central.audit.chain import chain_head
from central.audit.checkpoints import (
    CHECKPOINT_FILE,
    CHECKPOINT_TOPIC,
    Checkpoint,
    append_checkpoint_file,
    issue_checkpoint,
    latest_checkpoint,
    load_or_create_key,
    read_checkpoint_file,
)
from central.audit.schema import ensure_schema
from central.config import BrokerConfig
from central.counters import Counters
from central.store.database import open_database
from central.timefmt import Clock, system_clock

__all__ = ["CheckpointPublisher"]

log = logging.getLogger("central.audit")


def _client(broker: BrokerConfig, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5)
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls is not None:
        client.tls_set(
            ca_certs=str(broker.tls.ca) if broker.tls.ca else None,
            certfile=str(broker.tls.cert) if broker.tls.cert else None,
            keyfile=str(broker.tls.key) if broker.tls.key else None,
        )
    client.reconnect_delay_set(
        min_delay=int(max(1, broker.reconnect_min_s)), max_delay=int(max(1, broker.reconnect_max_s))
    )
    return client


class CheckpointPublisher:
    """`start()` returns at once; a thread checkpoints every `interval_s` until `stop()` (which
    issues a last one). `broker` None: file and database only (tools, some tests)."""

    def __init__(
        self,
        *,
        db_path: Path,
        data_dir: Path,
        broker: BrokerConfig | None,
        interval_s: float = 60.0,
        clock: Clock = system_clock,
        counters: Counters | None = None,
        topic: str = CHECKPOINT_TOPIC,
    ) -> None:
        self.db_path = db_path
        self.data_dir = data_dir
        self.broker = broker
        self.interval_s = interval_s
        self.clock = clock
        self.counters = counters or Counters()
        self.topic = topic
        self.file = data_dir / CHECKPOINT_FILE
        self.published = threading.Event()  # set after the broker acknowledged a publication
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._latest: Checkpoint | None = None
        self._key = load_or_create_key(data_dir)
        self.key_id = self._key.key_id

    def start(self) -> CheckpointPublisher:
        db = open_database(self.db_path)
        ensure_schema(db)
        candidates = [latest_checkpoint(db), self._last_in_file()]
        db.close()
        known = [cp for cp in candidates if cp is not None]
        self._latest = max(known, key=lambda cp: (cp.count, cp.seq)) if known else None
        if self.broker is not None:
            # Its own clean session, one per process: `run` and `serve` may both publish.
            self._client = _client(self.broker, f"{self.broker.client_id}-audit-{os.getpid()}")
            self._client.on_connect = self._on_connect
            self._client.on_publish = self._on_publish
            self._client.connect_async(self.broker.host, self.broker.port, keepalive=self.broker.keepalive_s)
            self._client.loop_start()
        self._thread = threading.Thread(target=self._run, name="audit-checkpoints", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None

    def _last_in_file(self) -> Checkpoint | None:
        if not self.file.exists():
            return None
        last = None
        for _, item in read_checkpoint_file(self.file):
            if (
                isinstance(item, Checkpoint)
                and item.key_id == self.key_id
                and (last is None or item.count >= last.count)
            ):
                last = item
        return last

    def _still_holds(self, db: Database, cp: Checkpoint) -> bool:
        """True while the row the checkpoint covers is still there, unchanged."""
        if cp.count == 0:
            return True
        row = db.execute("SELECT sha256 FROM audit_log WHERE seq = ?", [cp.count]).fetchone()
        return row is not None and str(row[0]) == cp.head_sha256

    def checkpoint_now(self) -> Checkpoint | None:
        """Issue and publish a checkpoint if the head moved since the last one; return it (or None).

        A chain that no longer holds the last checkpoint's head (rows deleted or rewritten) is
        not signed: signing it would replace the retained witness of the damage with a clean one.
        """
        db = open_database(self.db_path)
        try:
            with self._lock:
                count, head = chain_head(db)
                last = self._latest
                if last is not None and last.count == count and last.head_sha256 == head:
                    return None
                if last is not None and not self._still_holds(db, last):
                    self.counters.inc("audit_chain_broken")
                    log.error(
                        "audit chain no longer holds checkpoint #%d's head (row %d): rows were deleted or rewritten;"
                        " not signing a new checkpoint; run `garbagewatch central verify-audit`",
                        last.seq,
                        last.count,
                    )
                    return None
                cp = issue_checkpoint(db, self._key, self.clock())
                append_checkpoint_file(self.file, cp)
                self._latest = cp
                # Under the lock: a reconnect's re-publication of the previous checkpoint must
                # not overtake this one and become the retained message.
                self._publish(cp)
        finally:
            db.close()
        self.counters.inc("audit_checkpoints")
        log.info("audit checkpoint #%d: %d rows, head %s", cp.seq, cp.count, cp.head_sha256)
        return cp

    def _run(self) -> None:
        while True:
            try:
                self.checkpoint_now()
            except Exception as exc:  # a full disk or a locked database must not end the thread
                self.counters.inc("audit_checkpoint_errors")
                log.error("audit checkpoint failed: %s: %s", type(exc).__name__, exc)
            if self._stop.wait(self.interval_s):
                break
        try:
            self.checkpoint_now()  # the last word before shutting down
        except Exception as exc:
            log.error("final audit checkpoint failed: %s: %s", type(exc).__name__, exc)

    def _publish(self, cp: Checkpoint) -> None:
        client = self._client
        if client is None or not client.is_connected():
            return  # published on (re)connect
        client.publish(self.topic, cp.to_json().encode(), qos=1, retain=True)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error("broker refused the audit publisher: %s", reason_code)
            return
        with self._lock:
            if self._latest is not None:
                client.publish(self.topic, self._latest.to_json().encode(), qos=1, retain=True)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Properties | None
    ) -> None:
        self.counters.inc("audit_checkpoints_published")
        self.published.set()
