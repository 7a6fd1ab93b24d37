"""Read the retained checkpoint back from the broker (for verify-audit)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from central.audit.checkpoints import CHECKPOINT_TOPIC, Checkpoint, CheckpointError
from central.config import BrokerConfig

__all__ = ["fetch_retained_checkpoint"]


def fetch_retained_checkpoint(
    broker: BrokerConfig, *, topic: str = CHECKPOINT_TOPIC, timeout_s: float = 10.0
) -> Checkpoint:
    """The retained checkpoint on `topic`. CheckpointError if none arrives in time or it is unreadable."""
    got = threading.Event()
    payload: list[bytes] = []
    failure: list[str] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{broker.client_id}-verify-{uuid.uuid4().hex[:8]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls is not None:
        client.tls_set(
            ca_certs=str(broker.tls.ca) if broker.tls.ca else None,
            certfile=str(broker.tls.cert) if broker.tls.cert else None,
            keyfile=str(broker.tls.key) if broker.tls.key else None,
        )

    def on_connect(
        c: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, rc: ReasonCode, props: Properties | None
    ) -> None:
        if rc.is_failure:
            failure.append(f"broker refused the connection: {rc}")
            got.set()
            return
        c.subscribe(topic, qos=1)

    def on_message(c: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload.append(bytes(message.payload))
        got.set()

    client.on_connect = on_connect
    client.on_message = on_message
    try:
        client.connect(broker.host, broker.port, keepalive=broker.keepalive_s)
    except OSError as exc:
        raise CheckpointError(f"cannot reach the broker at {broker.host}:{broker.port}: {exc}") from None
    client.loop_start()
    try:
        got.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    if failure:
        raise CheckpointError(failure[0])
    if not payload:
        raise CheckpointError(
            f"no retained checkpoint on {topic} at {broker.host}:{broker.port} within {timeout_s:g} s"
        )
    return Checkpoint.parse(payload[0])
