"""The MQTT side of ingest: a paho-mqtt v2 client speaking MQTT v5 with a persistent session.

clean_start=False plus a session expiry makes the broker queue QoS 1 messages while the central
is down. paho's network thread only queues each message; one ingest thread handles them in
order, to the end (written, committed, acks published), and only then sends the message's MQTT
PUBACK (paho's manual ack), so the broker redelivers whatever the central had not handled.
Handling is idempotent, so redelivery is harmless. The broker's in-flight window for the central
bounds the queue. Two threads because handling waits on the disk (fsync) and reading the socket
and decoding packets need not wait with it.

Group commit: the ingest thread handles whatever is queued (up to MAX_BATCH messages) as one
batch. Each message still commits on its own (so SQLite's write lock is held only briefly and
the notifier and the console are not starved), but without waiting for the disk
(synchronous=NORMAL); one fsync of the WAL at the end of the batch makes all of its commits
durable, then the new evidence names are flushed, and only then do the batch's acks and PUBACKs
go out. A burst costs one WAL fsync instead of one per message; a lone message is a batch of
one, so nothing waits for company.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from sqlite_utils import Database

from central.config import BrokerConfig
from central.counters import Counters
from central.ingest.handler import IngestHandler, Outgoing
from wire.topics import CENTRAL_SUBSCRIPTIONS

__all__ = ["MqttConsumer"]

log = logging.getLogger("central.ingest")

# (connection generation, mid, qos, topic, payload); None stops the ingest thread.
_Item = tuple[int, int, int, str, bytes] | None

# Messages committed together at most: bounds how long the batch holds SQLite's write lock (a
# person's action in the console waits for it) and how much a failed commit asks the edges to resend.
MAX_BATCH = 32


@contextlib.contextmanager
def durable_together(db: Database) -> Iterator[None]:
    """Commits inside do not wait for the disk; on a clean exit one fsync of the WAL makes them all durable.

    In WAL mode a commit appends to the -wal file; synchronous=NORMAL only skips its fsync. Without
    WAL (never the case for the central's file) the commits keep the connection's own setting.
    """
    if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        yield
        return
    previous = int(db.execute("PRAGMA synchronous").fetchone()[0])
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        yield
    finally:
        db.execute(f"PRAGMA synchronous={previous}")
    path = next(str(r[2]) for r in db.execute("PRAGMA database_list") if r[1] == "main")
    try:
        fd = os.open(f"{path}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return  # checkpointed and removed: the main file was fsynced by the checkpoint
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class MqttConsumer:
    def __init__(self, broker: BrokerConfig, handler: IngestHandler, counters: Counters) -> None:
        self.broker = broker
        self.handler = handler
        self.counters = counters
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._queue: queue.Queue[_Item] = queue.Queue()
        # A mid names a message only within one connection: acks for an older one are not sent.
        self._generation = 0
        self._worker: threading.Thread | None = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=broker.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.manual_ack_set(True)
        if broker.username is not None:
            self.client.username_pw_set(broker.username, broker.password)
        if broker.tls is not None:
            self.client.tls_set(
                ca_certs=str(broker.tls.ca) if broker.tls.ca else None,
                certfile=str(broker.tls.cert) if broker.tls.cert else None,
                keyfile=str(broker.tls.key) if broker.tls.key else None,
            )
        self.client.reconnect_delay_set(
            min_delay=int(max(1, broker.reconnect_min_s)), max_delay=int(max(1, broker.reconnect_max_s))
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self) -> None:
        self._worker = threading.Thread(target=self._ingest, name="central-ingest", daemon=True)
        self._worker.start()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.broker.session_expiry_s
        # connect_async + loop_start: keeps retrying while the broker is not up yet.
        self.client.connect_async(
            self.broker.host,
            self.broker.port,
            keepalive=self.broker.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        # What is still queued was not acked: the broker delivers it again to the next session.
        with self._queue.mutex:
            self._queue.queue.clear()
        self._queue.put(None)
        if self._worker is not None:
            self._worker.join(60)
            self._worker = None
        try:  # no message is being handled any more: keep what was received of unfinished files
            self.handler.assembler.checkpoint_all()
        except Exception as exc:
            log.error("could not checkpoint the transfers in progress: %s: %s", type(exc).__name__, exc)
        self.connected.clear()
        self.subscribed.clear()

    # -- paho callbacks (network thread) ----------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            log.error(
                "broker %s:%d refused the connection: %s", self.broker.host, self.broker.port, reason_code
            )
            return
        log.info(
            "connected to %s:%d (session present: %s)",
            self.broker.host,
            self.broker.port,
            flags.session_present,
        )
        self.connected.set()
        # Subscribing again when the session is present is harmless and covers a lost session.
        client.subscribe([(topic, 1) for topic in CENTRAL_SUBSCRIPTIONS])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("broker refused subscriptions: %s", ", ".join(str(rc) for rc in failed))
            return
        log.info("subscribed to %s", ", ".join(CENTRAL_SUBSCRIPTIONS))
        self.subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        self._generation += 1
        if reason_code.is_failure:
            log.warning("lost the broker connection (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "(topic is not valid UTF-8)"
        self._queue.put((self._generation, message.mid, message.qos, topic, bytes(message.payload)))

    # -- the ingest thread ------------------------------------------------------------------------

    def _next_batch(self) -> list[tuple[int, int, int, str, bytes]] | None:
        """The queued messages (at least one, waiting for it); None when stopping."""
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(item)
        return batch

    def _ingest(self) -> None:
        while (batch := self._next_batch()) is not None:
            outgoing: list[Outgoing] = []
            try:
                with durable_together(self.handler.db):
                    for _, _, _, topic, payload in batch:
                        outgoing.extend(self.handler.handle(topic, payload, defer=True))  # never raises
                self.handler.after_commit()
            except Exception as exc:  # the disk failed us: no acks, the edges resend after their timeout
                self.counters.inc("consumer_errors")
                log.error(
                    "a batch of %d message(s) was not made durable: %s: %s", len(batch), type(exc).__name__, exc
                )
                outgoing = []
            for out in outgoing:
                self.client.publish(out.topic, out.payload, qos=1)
            for generation, mid, qos, _, _ in batch:
                if qos > 0 and generation == self._generation:
                    self.client.ack(mid, qos)
