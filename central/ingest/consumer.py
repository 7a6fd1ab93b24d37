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
(synchronous=NORMAL); one fsync of the WAL at the end of the batch (central.store.durability)
makes all of its commits durable, then the new evidence names are flushed, and only then do the
batch's acks and PUBACKs go out. A burst costs one WAL fsync instead of one per message; a lone
message is a batch of one, so nothing waits for company. Those disk waits and the acks run on a
durability thread, batch after batch in order, while the ingest thread already handles the next
batch.
Within a batch, events are handled after the other messages (`_event_last`): an event waits for
its files' fsyncs, so it waits less once the batch's other transfers have been written; the
PUBACKs still go out in the order the messages arrived.

Several instances (`broker.shared_group`): the filters are subscribed as `$share/<group>/...`,
so the broker gives each message to one instance. A message that needs what another instance
has not committed yet is deferred: kept unacked and tried again (25 ms, doubling to 250 ms)
within later batches, for at most DEFER_GRACE_S, then answered as an instance alone would. A
clean stop unsubscribes first and handles what the broker had already sent before it
disconnects, so nothing is left waiting in this instance's session.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from central.config import BrokerConfig
from central.counters import Counters
from central.ingest.handler import IngestHandler, Outgoing
from central.store.durability import commits_not_waiting, fsync_wal, wal_path
from wire.sockets import send_at_once
from wire.topics import CENTRAL_SUBSCRIPTIONS, TopicKind

__all__ = ["MqttConsumer"]

log = logging.getLogger("central.ingest")

# (connection generation, mid, qos, topic, payload); None stops the ingest thread.
_Message = tuple[int, int, int, str, bytes]
_Item = _Message | None

# Messages committed together at most: bounds how long the batch holds SQLite's write lock (a
# person's action in the console waits for it) and how much a failed commit asks the edges to resend.
MAX_BATCH = 32
# How long a message may wait for another instance's commit (several instances only). Another
# instance commits what it received within its current batch, well under a second even when
# busy; a message still waiting after this gets the answer an instance alone would give.
DEFER_GRACE_S = 3.0
_RETRY_FIRST_S = 0.025
_RETRY_MAX_S = 0.25


@dataclass
class _Deferred:
    message: _Message
    give_up_at: float  # from then on the message gets its final answer
    next_try_at: float
    tries: int = 1


def subscription_filters(shared_group: str | None) -> list[str]:
    """The central's topic filters, as shared subscriptions when instances share the load."""
    if shared_group is None:
        return list(CENTRAL_SUBSCRIPTIONS)
    return [f"$share/{shared_group}/{f}" for f in CENTRAL_SUBSCRIPTIONS]


@dataclass
class _Sealed:
    """A batch handled and committed, waiting on the durability thread for its fsync, then its acks."""

    wal: str | None
    outgoing: list[Outgoing]
    handled: list[_Message]
    failed: bool  # its handling failed: no acks (the edges resend), only the PUBACKs


_EVENT_SUFFIX = f"/{TopicKind.EVENT.value}"  # an event's topic ends so (wire.topics.event_topic)


def _event_last(item: tuple[_Message, _Deferred | None]) -> bool:
    """Sort key that moves a batch's events after its other messages, keeping each group's order.

    An event waits for its files' fsyncs (started when each file completed, central.ingest.assembler)
    before it looks them up; handled last, it finds them done while the batch's other transfers
    were written, instead of waiting once per event.
    """
    return item[0][3].endswith(_EVENT_SUFFIX)


def _in_arrival_order(handled: list[_Message], batch: Sequence[tuple[_Message, _Deferred | None]]) -> list[_Message]:
    """`handled` (in the order it was handled) in the order the batch arrived: MQTT wants PUBACKs so."""
    arrival = {id(message): i for i, (message, _) in enumerate(batch)}
    return sorted(handled, key=lambda message: arrival[id(message)])


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
        self.shared = broker.shared_group is not None
        self.filters = subscription_filters(broker.shared_group)
        self._deferred: list[_Deferred] = []  # the ingest thread's own
        self._in_batch = False
        # Batches committed, waiting for the durability thread. Two at most: the ingest thread
        # runs at most that far ahead of the disk, which bounds the acks held back.
        self._wal: tuple[str | None] | None = None  # (the -wal file or None without WAL), once known
        self._durable_queue: queue.Queue[_Sealed | None] = queue.Queue(maxsize=2)
        self._unsubscribed = threading.Event()
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
        self.client.on_unsubscribe = lambda *_: self._unsubscribed.set()
        self.client.on_socket_open = send_at_once  # acks and PUBACKs are small: no Nagle delay

    def start(self) -> None:
        if self.shared and self.broker.session_expiry_s > 3600:
            log.warning(
                "shared_group %s with session_expiry_s %d: if this instance dies, the broker keeps its share "
                "of the messages for that long (docs/central.md, 'Several central instances')",
                self.broker.shared_group,
                self.broker.session_expiry_s,
            )
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
        if self.shared and self.subscribed.is_set():
            self._hand_over()
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

    def _hand_over(self) -> None:
        """Several instances: stop getting new messages, then finish those already sent to us.

        Without this, what the broker had sent to this instance would wait in its session for its
        return (or the session's expiry) instead of being handled now.
        """
        self._unsubscribed.clear()
        self.client.unsubscribe(self.filters)
        if not self._unsubscribed.wait(5):
            log.warning("the broker did not confirm the unsubscription; stopping anyway")
        deadline = time.monotonic() + DEFER_GRACE_S + 5
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            if not self._queue.empty() or self._deferred or self._in_batch or self._durable_queue.unfinished_tasks:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 0.3:
                return
            time.sleep(0.02)
        log.warning("stopping with messages not handled: the broker delivers them again to this client id")

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
        client.subscribe([(topic, 1) for topic in self.filters])

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
        log.info("subscribed to %s", ", ".join(self.filters))
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

    def _next_batch(self) -> list[tuple[_Message, _Deferred | None]] | None:
        """Deferred messages due for another try, then queued ones (waiting for one); None when stopping."""
        batch: list[tuple[_Message, _Deferred | None]] = []
        while not batch:
            timeout = None
            if self._deferred:
                timeout = max(0.0, min(d.next_try_at for d in self._deferred) - time.monotonic())
            first: _Item = None
            try:
                first = self._queue.get(timeout=timeout)
                if first is None:
                    return None
            except queue.Empty:
                pass  # nothing new: only deferred messages are due
            now = time.monotonic()
            # A mid names a message only within one connection: the broker resends older ones itself.
            self._deferred = [d for d in self._deferred if d.message[0] == self._generation]
            due = [d for d in self._deferred if d.next_try_at <= now]
            self._deferred = [d for d in self._deferred if d.next_try_at > now]
            batch = [(d.message, d) for d in due]
            if first is not None:
                batch.append((first, None))
        while len(batch) < MAX_BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append((item, None))
        return batch

    def _defer(self, message: _Message, waited: _Deferred | None, now: float) -> None:
        if waited is None:
            self._deferred.append(_Deferred(message, now + DEFER_GRACE_S, now + _RETRY_FIRST_S))
            return
        waited.next_try_at = now + min(_RETRY_FIRST_S * 2**waited.tries, _RETRY_MAX_S)
        waited.tries += 1
        self._deferred.append(waited)

    def _ingest(self) -> None:
        durability = threading.Thread(target=self._make_durable, name="central-durable", daemon=True)
        durability.start()
        try:
            while (batch := self._next_batch()) is not None:
                self._in_batch = True
                self._durable_queue.put(self._handle_batch(batch))  # waits while the queue is full
                self._in_batch = False
        finally:
            self._durable_queue.put(None)
            durability.join()

    def _handle_batch(self, batch: list[tuple[_Message, _Deferred | None]]) -> _Sealed:
        """Handle and commit a batch (not durable yet); the durability thread finishes it."""
        outgoing: list[Outgoing] = []
        handled: list[_Message] = []
        now = time.monotonic()
        wal: str | None = None
        try:
            if self._wal is None:  # the path never changes, nor does WAL mode once set
                self._wal = (wal_path(self.handler.db),)
            wal = self._wal[0]
            with commits_not_waiting(self.handler.db, wal) as relaxed:
                self.handler.assembler.relaxed = relaxed
                try:
                    for message, waited in sorted(batch, key=_event_last):
                        patient = self.shared and (waited is None or now < waited.give_up_at)
                        acks = self.handler.handle_or_defer(
                            message[3], message[4], patient=patient, retry=waited is not None
                        )  # never raises
                        if acks is None:
                            self._defer(message, waited, now)
                        else:
                            outgoing.extend(acks)
                            handled.append(message)
                    outgoing.extend(self.handler.end_of_batch())
                finally:
                    self.handler.assembler.relaxed = False
        except Exception as exc:  # the disk failed us: no acks, the edges resend after their timeout
            self._batch_failed(len(batch), exc)
            self.handler.seal_batch()
            return _Sealed(wal, [], _in_arrival_order(handled, batch), failed=True)
        self.handler.seal_batch()
        return _Sealed(wal, outgoing, _in_arrival_order(handled, batch), failed=False)

    def _batch_failed(self, size: int, exc: Exception) -> None:
        self.counters.inc("consumer_errors")
        log.error("a batch of %d message(s) was not made durable: %s: %s", size, type(exc).__name__, exc)

    def _make_durable(self) -> None:
        """The durability thread: per batch, in order, fsync the WAL, then the folders, then the acks.

        The ingest thread handles the next batch meanwhile (fsync releases the GIL), so a batch's
        disk waits no longer hold up the next one; no ack goes out before its batch is durable.
        """
        while (sealed := self._durable_queue.get()) is not None:
            outgoing = sealed.outgoing
            try:
                if sealed.failed:
                    self.handler.discard_sealed()
                else:
                    try:
                        fsync_wal(sealed.wal)
                    except Exception:
                        self.handler.discard_sealed()
                        raise
                    self.handler.after_commit()  # pops its sealed batch first
            except Exception as exc:
                self._batch_failed(len(sealed.handled), exc)
                outgoing = []
            for out in outgoing:
                self.client.publish(out.topic, out.payload, qos=1)
            for generation, mid, qos, _, _ in sealed.handled:
                if qos > 0 and generation == self._generation:
                    self.client.ack(mid, qos)
            self._durable_queue.task_done()
        self._durable_queue.task_done()
