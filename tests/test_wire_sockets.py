"""wire.sockets: both ends send each MQTT packet at once (TCP_NODELAY), and so does the broker.

Checked on the sockets themselves, not by timing: the edge uplink's and the central's
connections to a real Mosquitto have Nagle's algorithm off, and the broker configs ask for it.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from central_edge import wait_for

from central import BrokerConfig, CentralConfig, CentralService, NotifyConfig
from edge.spool import Spool
from edge.uplink import Uplink
from garbagewatch.devtools.mosquitto import Mosquitto
from wire.sockets import send_at_once

REPO = Path(__file__).resolve().parents[1]


def no_delay(sock: socket.socket) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


def test_it_turns_nagle_off_on_a_tcp_socket_and_leaves_other_sockets_alone() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as sock:
        assert not no_delay(sock)
        send_at_once(None, None, sock)
        assert no_delay(sock)
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        send_at_once(None, None, a)  # no TCP option on a Unix socket: nothing to do, no error
    send_at_once(None, None, object())  # nor on something that is not a socket


def test_the_central_connects_with_nagle_off(tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = CentralConfig(
        data_dir=tmp_path / "central",
        broker=BrokerConfig(port=mosquitto.port, client_id="central-nodelay"),
        notify=NotifyConfig(process=False),
    )
    service = CentralService(config).start()
    try:
        assert service.wait_ready(10)
        assert service._consumer is not None
        sock = service._consumer.client.socket()
        assert isinstance(sock, socket.socket) and no_delay(sock)
    finally:
        service.stop()


def test_the_edge_uplink_connects_with_nagle_off(tmp_path: Path, mosquitto: Mosquitto) -> None:
    uplink = Uplink(
        Spool(tmp_path / "spool"), device_id="edge-01", host="127.0.0.1", port=mosquitto.port, client_id="edge-01"
    ).start()
    try:
        wait_for(lambda: isinstance(uplink.client.socket(), socket.socket), what="the uplink to connect")
        sock = uplink.client.socket()
        assert isinstance(sock, socket.socket) and no_delay(sock)
    finally:
        uplink.stop(drain_timeout=0.5)


@pytest.mark.parametrize(
    "conf", [REPO / "configs" / "mosquitto" / "garbagewatch.conf", None], ids=["production", "test broker"]
)
def test_the_brokers_send_at_once_too(tmp_path: Path, conf: Path | None) -> None:
    if conf is None:
        broker = Mosquitto(tmp_path / "mq")
        broker._write_conf()
        conf = broker.conf
    lines = [line.split("#")[0].split() for line in conf.read_text().splitlines()]
    assert ["set_tcp_nodelay", "true"] in lines
