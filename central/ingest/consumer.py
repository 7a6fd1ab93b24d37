"""The MQTT side of ingest: a paho-mqtt v2 client speaking MQTT v5 with a persistent session.

clean_start=False plus a session expiry makes the broker queue QoS 1 messages while the central
is down. Each message is handled to the end (written, fsynced, committed) inside on_message;
paho sends the PUBACK only after on_message returns, so the broker redelivers anything the
central had not made durable. Handling is idempotent, so redelivery is harmless.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from central.config import BrokerConfig
from central.counters import Counters
from central.ingest.handler import IngestHandler
from wire.topics import CENTRAL_SUBSCRIPTIONS

__all__ = ["MqttConsumer"]

log = logging.getLogger("central.ingest")


class MqttConsumer:
    def __init__(self, broker: BrokerConfig, handler: IngestHandler, counters: Counters) -> None:
        self.broker = broker
        self.handler = handler
        self.counters = counters
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=broker.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
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
        if reason_code.is_failure:
            log.warning("lost the broker connection (%s); reconnecting", reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "(topic is not valid UTF-8)"
        try:
            for out in self.handler.handle(topic, bytes(message.payload)):
                client.publish(out.topic, out.payload, qos=1)
        except Exception as exc:  # handle() does not raise; this is the last line of defence of the thread
            self.counters.inc("consumer_errors")
            log.error("message on %r dropped by an error: %s: %s", topic[:300], type(exc).__name__, exc)
