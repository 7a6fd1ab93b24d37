"""The uplink: sends spooled bundles to the central over MQTT v5 and applies the central's acks.

One worker thread reads the spool and publishes; paho's network thread receives acks and hands
them over through a queue to the worker, which applies them (edge.uplink.acks). Files go as
segments read from the spool on demand, with at most `max_inflight_segments` messages waiting
for their PUBACK, so a 50 MB clip never sits in paho's queue at once. The spool is the only
state that matters: after a crash or a broker restart everything not acked is sent again, which
the protocol makes harmless (same topics, same bytes).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import ValidationError

import wire
from edge.spool import PendingBundle, Spool, SpoolFile
from edge.uplink.acks import GIVEN_UP, AckHandler
from edge.uplink.tracker import DeliveryTracker
from wire import topics
from wire.messages import SEGMENT_BYTES
from wire.sockets import send_at_once
from wire.timefmt import format_ts

__all__ = ["Uplink"]

log = logging.getLogger(__name__)


def _is_published(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except (RuntimeError, ValueError):
        return True  # never queued: nothing to wait for


class _Interrupted(Exception):
    """Sending stopped: the connection dropped or the uplink is stopping."""


class Uplink:
    """Delivers the spool's bundles; `start()`, then `stop(drain_timeout)`."""

    def __init__(
        self,
        spool: Spool,
        *,
        device_id: str,
        host: str,
        port: int,
        client_id: str,
        tls: ssl.SSLContext | None = None,
        session_expiry: int = 86400,
        ack_timeout: float = 10.0,
        max_resend_interval: float = 300.0,
        segment_bytes: int = SEGMENT_BYTES,
        max_inflight_segments: int = 8,
        max_inflight_bundles: int = 8,
        keepalive: int = 30,
        reconnect_delay: tuple[float, float] = (1.0, 30.0),
        poll_interval: float = 1.0,
        cameras: Sequence[str] = (),
        version: str = "",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        fault_hook: Callable[[str, int], None] | None = None,
    ) -> None:
        if not 1024 <= segment_bytes <= wire.messages.MAX_SEGMENT_BYTES:
            raise ValueError(f"segment_bytes must be 1024..{wire.messages.MAX_SEGMENT_BYTES}")
        if max_inflight_segments < 1:
            raise ValueError("max_inflight_segments must be >= 1")
        self.spool = spool
        self.device_id = wire.check_id(device_id, "device")
        self.segment_bytes = segment_bytes
        self.max_inflight_segments = max_inflight_segments
        self.poll_interval = poll_interval
        self.cameras = list(cameras)
        self.version = version
        self._host, self._port, self._keepalive = host, port, keepalive
        self._session_expiry = session_expiry
        self._clock, self._wall_clock = clock, wall_clock
        # Tests only: called as fault_hook(file sha256, segment index) in the worker thread right
        # after each segment is handed to paho, so a test can pause a transfer at a chosen point
        # (and kill the broker, the central or this process) instead of racing it.
        self.fault_hook = fault_hook
        self.tracker = DeliveryTracker(
            ack_timeout=ack_timeout,
            max_resend_interval=max_resend_interval,
            max_inflight_bundles=max_inflight_bundles,
            clock=clock,
        )
        self.counters: Counter[str] = Counter()
        self._status_topic = topics.status_topic(device_id)
        self._ack_topic = topics.ack_topic(device_id)
        self._ack_handler = AckHandler(spool, self.tracker, self.counters)
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._reconnected = threading.Event()
        self._stopping = threading.Event()
        self._drain_deadline = float("inf")
        self._published = threading.Condition()
        self._outstanding: list[mqtt.MQTTMessageInfo] = []  # published, PUBACK not yet seen
        self._thread = threading.Thread(target=self._run, name=f"uplink-{device_id}", daemon=True)

        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.will_set(self._status_topic, self._availability("offline"), qos=1, retain=True)
        self.client.reconnect_delay_set(*reconnect_delay)  # type: ignore[arg-type]  # floats work
        self.client.max_inflight_messages_set(max(20, max_inflight_segments + 4))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_socket_open = send_at_once  # a fin or an event right behind a segment goes out at once

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Uplink:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._session_expiry
        # clean_start=False: the broker keeps our session, so acks sent while we were away arrive.
        self.client.connect_async(
            self._host, self._port, self._keepalive, clean_start=False, properties=props
        )
        self.client.loop_start()
        self._thread.start()
        return self

    def stop(self, drain_timeout: float = 5.0) -> None:
        """Keep delivering for up to `drain_timeout` seconds while bundles wait for acks, then go offline."""
        self._drain_deadline = self._clock() + drain_timeout
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=drain_timeout + 10.0)
        if self._connected.is_set():
            info = self.client.publish(self._status_topic, self._availability("offline"), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):  # offline or refused: the will says it
                info.wait_for_publish(timeout=2.0)
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Uplink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wake(self) -> None:
        """Look at the spool now (e.g. right after a put) instead of at the next poll."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def alive(self) -> bool:
        """The delivery thread runs (what the systemd watchdog is petted on)."""
        return self._thread.is_alive()

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _availability(self, state: str) -> str:
        at = format_ts(self._wall_clock()) if state == "online" else None
        return wire.Availability.model_validate(
            {"state": state, "at": at, "cameras": self.cameras, "version": self.version}
        ).model_dump_json()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.warning("uplink: broker %s:%d refused the connection: %s", self._host, self._port, reason)
            return
        log.info(
            "uplink: connected to %s:%d (session present: %s)", self._host, self._port, flags.session_present
        )
        client.subscribe(self._ack_topic, qos=1)
        client.publish(self._status_topic, self._availability("online"), qos=1, retain=True)
        self._connected.set()
        self._reconnected.set()
        self._wake.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("uplink: disconnected from %s:%d: %s; reconnecting", self._host, self._port, reason)
        with self._published:
            self._published.notify_all()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._published:
            self._published.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != self._ack_topic:
            log.warning("uplink: unexpected message on %s ignored", msg.topic)
            self.counters["bad_acks"] += 1
            return
        try:
            ack = wire.Ack.model_validate_json(msg.payload)
        except ValidationError as exc:
            log.warning("uplink: bad ack on %s ignored: %s", msg.topic, exc.errors()[:1])
            self.counters["bad_acks"] += 1
            return
        self._ack_handler.receive(ack)
        self._wake.set()

    # -- worker thread ------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0  # in a row: back off, and log the traceback only the first time
        while True:
            wait = self.poll_interval
            try:
                self._ack_handler.handle_received()
                if self._stopping.is_set() and (
                    self._clock() >= self._drain_deadline or not self.spool.stats().pending_bundles
                ):
                    return
                if self._reconnected.is_set():
                    self._reconnected.clear()
                    self.tracker.reconnected()
                if self._connected.is_set():
                    self._send_due()
                failures = 0
            except Exception as exc:  # the uplink must outlive any one bad bundle or spool hiccup
                failures += 1
                self.counters["errors"] += 1
                wait = min(self.poll_interval * 2**failures, 30.0)
                if failures == 1:
                    log.exception("uplink: unexpected error; retrying")
                else:
                    log.error(
                        "uplink: unexpected error again (%d in a row): %s; retrying in %.1f s",
                        failures,
                        exc,
                        wait,
                    )
            self._wake.wait(wait)
            self._wake.clear()

    def _send_due(self) -> None:
        pending = self.spool.pending(limit=4 * self.tracker.max_inflight_bundles + 16)
        self._ack_handler.forget_finished({b.key for b in pending})
        for bundle in self.tracker.due(pending):
            try:
                self._send_bundle(bundle)
            except _Interrupted:
                self.tracker.interrupted(bundle.key)
                return
            self._ack_handler.handle_received()  # a long transfer must not hold back the acks of earlier ones

    def _send_bundle(self, bundle: PendingBundle) -> None:
        if self.spool.bundle_state(*bundle.key) != "pending":
            return  # acked while we were sending the bundles before it
        manifest = bundle.message.manifest
        for spool_file in bundle.unsent_files:
            self._send_file(bundle, spool_file)
        payload, dropped = self._event_payload(bundle)
        self._publish(topics.event_topic(self.device_id, manifest.site, manifest.camera), payload)
        if dropped:
            self._ack_handler.declared_dropped(bundle.key, dropped)
        self.spool.note_attempt(*bundle.key)
        self.tracker.sent(bundle.key)
        self.counters["events_sent"] += 1
        if bundle.attempts:
            self.counters["events_resent"] += 1
        log.debug(
            "uplink: event %s/%s sent (%d files)", bundle.event_id, bundle.kind, len(bundle.unsent_files)
        )

    def _event_payload(self, bundle: PendingBundle) -> tuple[str, frozenset[str]]:
        """The event message as it goes out now, and the files it declares dropped.

        Files the spool gave up on (dropped by the quota, unreadable, refused by the central) are
        listed in `dropped`, read after the files were sent since a send can lose one, so the
        central files the event without them instead of asking for them forever. With none the
        message is the stored one, byte for byte.
        """
        manifest = bundle.message.manifest
        declared = set(bundle.message.dropped)
        dropped = [
            f.sha256
            for f in manifest.files
            if f.sha256 in declared or self.spool.file_state(f.sha256) in GIVEN_UP
        ]
        if not dropped:
            return bundle.message_json, frozenset()
        message = bundle.message.model_copy(update={"dropped": dropped})
        return message.model_dump_json(), frozenset(dropped)

    def _send_file(self, bundle: PendingBundle, spool_file: SpoolFile) -> None:
        ref = spool_file.ref
        path = self.spool.file_path(ref.sha256)
        if path is None:
            return  # acked or dropped since the spool was read
        manifest = bundle.message.manifest
        site, camera = manifest.site, manifest.camera

        def topic(kind: topics.TopicKind, offset: int = 0) -> str:
            return topics.file_topic(
                kind, self.device_id, site, camera, ref.sha256, offset=offset, size=ref.size
            )

        init = wire.FileInit(
            event_id=bundle.event_id,
            role=ref.role,
            name=ref.name,
            media_type=ref.media_type,
            size=ref.size,
            sha256=ref.sha256,
            segment_bytes=self.segment_bytes,
        )
        self._publish(topic(topics.TopicKind.FILE_INIT), init.model_dump_json())
        try:
            with open(path, "rb") as fh:
                for offset in range(0, ref.size, self.segment_bytes):
                    segment = fh.read(self.segment_bytes)
                    if not segment:
                        raise OSError(f"file ends at {offset} of {ref.size} bytes")
                    self._publish(topic(topics.TopicKind.FILE_SEGMENT, offset), segment)
                    self.counters["segments_sent"] += 1
                    if self.fault_hook is not None:
                        self.fault_hook(ref.sha256, offset // self.segment_bytes)
        except OSError as exc:
            # Dropped by the quota mid-transfer, or damaged: the event goes without it (and is not
            # resent for it over and over: the spool records the file as lost).
            log.warning("uplink: cannot read spooled file %s (%s): %s", ref.sha256, ref.role, exc)
            self.counters["unreadable_files"] += 1
            self.spool.mark_file_lost(ref.sha256, f"unreadable: {exc}")
            return
        self._publish(topic(topics.TopicKind.FILE_FIN), b"")
        self.counters["files_sent"] += 1

    def _publish(self, topic: str, payload: bytes | str) -> None:
        """Publish at QoS 1 once fewer than max_inflight_segments messages wait for their PUBACK."""
        with self._published:
            while True:
                # All of them, not only the oldest: PUBACKs can come out of order after a reconnect.
                self._outstanding = [i for i in self._outstanding if not _is_published(i)]
                if len(self._outstanding) < self.max_inflight_segments:
                    break
                self._check_can_send()
                self._published.wait(0.1)
        self._check_can_send()
        info = self.client.publish(topic, payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            # The connection dropped just now. paho keeps the message and sends it after the
            # reconnect; clear the error so is_published() reports that PUBACK like any other.
            info.rc = mqtt.MQTT_ERR_SUCCESS
        elif info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise _Interrupted(f"paho refused to queue a message: {mqtt.error_string(info.rc)}")
        self._outstanding.append(info)

    def _check_can_send(self) -> None:
        if not self._connected.is_set():
            raise _Interrupted("disconnected")
        if self._stopping.is_set() and self._clock() >= self._drain_deadline:
            raise _Interrupted("stopping")

    # -- stats --------------------------------------------------------------------------------

    def publish_stats(self, cameras: Mapping[str, Mapping[str, float]] | None = None) -> bool:
        """Publish wire.Stats (spool figures plus per-camera numbers) at QoS 0; False when offline."""
        spool = self.spool.stats()
        stats = wire.Stats(
            at=format_ts(self._wall_clock()),
            spool_pending=spool.pending_bundles,
            spool_bytes=spool.used_bytes,
            dropped=spool.dropped,
            cameras={cam: dict(values) for cam, values in (cameras or {}).items()},
        )
        info = self.client.publish(topics.stats_topic(self.device_id), stats.model_dump_json(), qos=0)
        return info.rc == mqtt.MQTT_ERR_SUCCESS
