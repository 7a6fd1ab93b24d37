"""The broker's side of trust: the production Mosquitto config, run for real with a throwaway CA.

configs/mosquitto/garbagewatch.conf and configs/mosquitto/acl are copied with only their file
paths and port changed, so what is tested is what ships: TLS with client certificates, the CN as
the username, and an ACL that confines a device to gw/v1/<its CN>/.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from broker_ca import Ca
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from garbagewatch.devtools.mosquitto import find_mosquitto
from garbagewatch.devtools.ports import free_port, wait_for_port
from wire.messages import MAX_SEGMENT_BYTES

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "configs" / "mosquitto" / "garbagewatch.conf"
ACL = REPO / "configs" / "mosquitto" / "acl"
NOT_AUTHORIZED = 0x87
SHA = "ab" * 32
# An MQTT v5 CONNECT: protocol "MQTT" v5, clean start, keepalive 60, no properties, client id "t-x".
CONNECT = bytes([0x10, 16]) + b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + b"\x00\x03t-x"


# -- the shipped config, with test paths --------------------------------------------------------


def config_for_test(
    shipped: str, *, port: int, certs: Path, acl: Path, data: Path, log: Path, crl: Path | None = None
) -> str:
    """The shipped config with only its file paths and port replaced; fail if a setting is missing.

    With `crl`, the shipped (commented out) crlfile line is switched on with that file.
    """
    replacements = {
        "listener": f"listener {port} 127.0.0.1",
        "cafile": f"cafile {certs / 'ca.crt'}",
        "certfile": f"certfile {certs / 'broker.crt'}",
        "keyfile": f"keyfile {certs / 'broker.key'}",
        "acl_file": f"acl_file {acl}",
        "persistence_location": f"persistence_location {data}/",
        "log_dest": f"log_dest file {log}",
    }
    if crl is not None:
        replacements["#crlfile"] = f"crlfile {crl}"
    out, seen = [], set()
    for line in shipped.splitlines():
        key = line.split(" ", 1)[0]
        if key in replacements:
            if key not in seen:
                out.append(replacements[key])
            seen.add(key)
        else:
            out.append(line)
    assert seen == set(replacements), f"the shipped config lacks {set(replacements) - seen}"
    if os.geteuid() == 0:
        # Started as root, Mosquitto drops to the 'mosquitto' user, which cannot read a test's
        # private temporary folder. (The packaged service starts it as that user with its own files.)
        out.insert(0, f"user {pwd.getpwuid(0).pw_name}")
    return "\n".join(out) + "\n"


@dataclass
class Broker:
    port: int
    ca: Ca
    log: Path
    proc: subprocess.Popen[bytes]

    def tls_context(self, cn: str | None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca.cert_path))
        if cn is not None:
            crt, key = self.ca.folder / f"{cn}.crt", self.ca.folder / f"{cn}.key"
            ctx.load_cert_chain(str(crt), str(key))
        return ctx


def make_ca(root: Path) -> Ca:
    ca = Ca(root / "certs")
    ca.issue("broker", server=True)
    for cn in ("device-a", "device-b", "central"):
        ca.issue(cn)
    return ca


@contextlib.contextmanager
def run_broker(root: Path, ca: Ca, crl: Path | None = None) -> Iterator[Broker]:
    """Mosquitto on a free port with the shipped config and ACL."""
    port = free_port()
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    conf, log, acl = root / "mosquitto.conf", root / "mosquitto.log", root / "acl"
    acl.write_text(ACL.read_text())
    conf.write_text(
        config_for_test(CONF.read_text(), port=port, certs=ca.folder, acl=acl, data=data, log=log, crl=crl)
    )
    proc = subprocess.Popen(
        [find_mosquitto(), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        try:
            wait_for_port(port, 15)
        except TimeoutError:
            proc.kill()
            err = proc.communicate()[1].decode(errors="replace")
            text = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"mosquitto did not start with the shipped config: {err[-800:]} {text[-800:]}")
        yield Broker(port, ca, log, proc)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    root = tmp_path_factory.mktemp("broker")
    with run_broker(root, make_ca(root)) as b:
        yield b


# -- MQTT v5 clients over TLS -------------------------------------------------------------------


class Client:
    """A paho MQTT v5 client that records what it receives and the reason codes of its acks."""

    def __init__(self, broker: Broker, cn: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.puback: dict[int, int] = {}
        self.suback: dict[int, list[int]] = {}
        self._cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{cn}", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.tls_set_context(broker.tls_context(cn))
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        connected = threading.Event()
        self.connack: ReasonCode | None = None

        def on_connect(c: mqtt.Client, u: Any, f: Any, rc: ReasonCode, p: Any) -> None:
            self.connack = rc
            connected.set()

        self.client.on_connect = on_connect
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert connected.wait(15), f"{cn}: no CONNACK"
        assert self.connack is not None and not self.connack.is_failure, f"{cn}: {self.connack}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.received.append((msg.topic, bytes(msg.payload)))
            self._cond.notify_all()

    def _on_publish(self, c: mqtt.Client, u: Any, mid: int, rc: ReasonCode, p: Any) -> None:
        with self._cond:
            self.puback[mid] = rc.value
            self._cond.notify_all()

    def _on_subscribe(self, c: mqtt.Client, u: Any, mid: int, rcs: list[ReasonCode], p: Any) -> None:
        with self._cond:
            self.suback[mid] = [rc.value for rc in rcs]
            self._cond.notify_all()

    def _wait(self, pred: Any, what: str, timeout: float = 15.0) -> Any:
        with self._cond:
            assert self._cond.wait_for(pred, timeout), f"timed out waiting for {what}"
            return pred()

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1; return the PUBACK's reason code."""
        info = self.client.publish(topic, payload, qos=1)
        self._wait(lambda: info.mid in self.puback, f"PUBACK of {topic}", 30)
        return self.puback[info.mid]

    def subscribe(self, topic: str) -> int:
        """Subscribe at QoS 1; return the SUBACK's reason code."""
        _, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        self._wait(lambda: mid in self.suback, f"SUBACK of {topic}")
        return self.suback[mid][0]

    def wait_for(self, topic: str, payload: bytes) -> None:
        self._wait(lambda: (topic, payload) in self.received, f"{payload!r} on {topic}")

    def topics(self) -> list[str]:
        with self._cond:
            return [t for t, _ in self.received]


@pytest.fixture
def clients(broker: Broker) -> Iterator[dict[str, Client]]:
    made = {cn: Client(broker, cn) for cn in ("central", "device-a", "device-b")}
    yield made
    for c in made.values():
        c.close()


def _event(device: str) -> str:
    return f"gw/v1/{device}/site-1/cam-1/event"


# -- what a device may and may not do -----------------------------------------------------------


def test_a_device_publishes_under_its_own_topics_and_the_central_receives_it(clients: dict[str, Client]) -> None:
    central, a = clients["central"], clients["device-a"]
    assert central.subscribe("gw/v1/#") == 1  # granted QoS 1
    assert a.publish(_event("device-a"), b"a's event") == 0
    assert a.publish("gw/v1/device-a/status", b"online") == 0
    central.wait_for(_event("device-a"), b"a's event")
    central.wait_for("gw/v1/device-a/status", b"online")


def test_a_device_cannot_publish_on_another_devices_topics(clients: dict[str, Client]) -> None:
    central, a = clients["central"], clients["device-a"]
    central.subscribe("gw/v1/#")
    forbidden = [
        _event("device-b"),
        f"gw/v1/device-b/site-1/cam-1/file/{SHA}/init",
        "gw/v1/device-b/status",
        "gw/v1/device-a-x/status",  # a prefix of another id is another device
        "gw/central/checkpoint",
    ]
    for topic in forbidden:
        assert a.publish(topic, b"forged") == NOT_AUTHORIZED, topic
    # The broker handles one client's messages in order: once this arrives, the forged ones would have.
    a.publish(_event("device-a"), b"marker")
    central.wait_for(_event("device-a"), b"marker")
    assert not set(forbidden) & set(central.topics())
    assert (_event("device-b"), b"forged") not in central.received


def test_a_device_cannot_read_another_devices_acks_or_traffic(clients: dict[str, Client]) -> None:
    central, a, b = clients["central"], clients["device-a"], clients["device-b"]
    assert a.subscribe("gw/v1/device-a/ack") == 1
    assert b.subscribe("gw/v1/device-b/ack") == 1
    # Mosquitto 2.0's acl_file grants such a SUBSCRIBE and checks read access on each delivery
    # (a later version may refuse it outright); either way nothing of b's may ever arrive.
    assert a.subscribe("gw/v1/device-b/ack") in (1, NOT_AUTHORIZED)
    assert a.subscribe("gw/v1/#") in (1, NOT_AUTHORIZED)
    assert central.publish("gw/v1/device-b/ack", b"ack for b") == 0
    b.publish(_event("device-b"), b"b's event")
    central.publish("gw/v1/device-a/ack", b"ack for a")
    b.wait_for("gw/v1/device-b/ack", b"ack for b")
    a.wait_for("gw/v1/device-a/ack", b"ack for a")  # a's marker: sent after b's
    # (two matching subscriptions may deliver a's ack twice)
    assert set(a.topics()) == {"gw/v1/device-a/ack"}


def test_a_full_size_segment_fits_under_the_packet_limit(clients: dict[str, Client]) -> None:
    central, a = clients["central"], clients["device-a"]
    central.subscribe("gw/v1/+/+/+/file/#")
    topic = f"gw/v1/device-a/site-1/cam-1/file/{SHA}/0"
    segment = bytes(range(256)) * (MAX_SEGMENT_BYTES // 256)
    assert a.publish(topic, segment) == 0
    central.wait_for(topic, segment)


def test_max_packet_size_leaves_headroom_over_a_segment() -> None:
    size = int(re.search(r"^max_packet_size (\d+)$", CONF.read_text(), re.M).group(1))  # type: ignore[union-attr]
    assert MAX_SEGMENT_BYTES + 1024 <= size <= MAX_SEGMENT_BYTES * 2


# -- who may connect at all ---------------------------------------------------------------------


def _handshake(broker: Broker, ctx: ssl.SSLContext) -> bytes:
    """TLS handshake, then an MQTT v5 CONNECT; return what the broker answers (b'' when it hangs up)."""
    with (
        socket.create_connection(("127.0.0.1", broker.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(CONNECT)
        return tls.recv(16)


def test_a_client_without_a_certificate_is_refused_at_the_tls_handshake(broker: Broker) -> None:
    ctx = broker.tls_context(None)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.2: the refusal ends the handshake itself
    with pytest.raises(ssl.SSLError):
        _handshake(broker, ctx)
    # TLS 1.3 finishes the client's side first; the broker's alert then ends it before any CONNACK.
    try:
        answer = _handshake(broker, broker.tls_context(None))
    except (ssl.SSLError, ConnectionError):
        answer = b""
    assert answer == b""
    # With a certificate the same bytes get a CONNACK: the refusal above is about the certificate.
    assert _handshake(broker, broker.tls_context("device-a"))[:1] == b"\x20"


def test_a_certificate_from_another_ca_is_refused(broker: Broker, tmp_path: Path) -> None:
    rogue = Ca(tmp_path / "rogue", cn="rogue CA")
    rogue.issue("device-a")  # the right name, the wrong issuer
    ctx = broker.tls_context(None)
    ctx.load_cert_chain(str(rogue.folder / "device-a.crt"), str(rogue.folder / "device-a.key"))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        _handshake(broker, ctx)


def test_the_broker_does_not_listen_in_plain_text(broker: Broker) -> None:
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as raw:
        raw.sendall(CONNECT)
        try:
            answer = raw.recv(16)
        except ConnectionError:
            answer = b""
    assert not answer.startswith(b"\x20")


def test_a_revoked_certificate_is_refused_after_the_broker_reloads_its_crl(tmp_path: Path) -> None:
    ca = make_ca(tmp_path)
    crl = ca.publish_crl([])
    with run_broker(tmp_path, ca, crl=crl) as broker:
        assert _handshake(broker, broker.tls_context("device-b"))[:1] == b"\x20"
        ca.publish_crl(["device-b"])
        broker.proc.send_signal(signal.SIGHUP)  # `systemctl reload mosquitto` (docs/broker-trust.md)

        def refused() -> bool:
            ctx = broker.tls_context("device-b")
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            try:
                _handshake(broker, ctx)
            except ssl.SSLError as exc:
                return "revoked" in str(exc)
            return False

        deadline = time.monotonic() + 15
        while not refused():
            assert time.monotonic() < deadline, "device-b still connects after the CRL reload"
            time.sleep(0.1)
        assert _handshake(broker, broker.tls_context("device-a"))[:1] == b"\x20"
