"""How both ends set up their MQTT connection's socket.

Every client of the protocol, edge box and central alike, sends each packet at once
(TCP_NODELAY). The traffic mixes 256 KiB segments with small messages that someone waits for:
a file's fin and the event right behind its last segment, the central's acks and PUBACKs. With
Nagle's algorithm a small packet waits for the TCP ACK of the data before it, which Linux may
delay by up to 40 ms. On loopback (bench/central_ingest.py at 10 bundles/s) a box had the
central's `event ok` 55 ms after it began sending a bundle at the median, 20 ms with both the
central and the broker (`set_tcp_nodelay true`, configs/mosquitto/garbagewatch.conf) sending
at once. docs/protocol.md, "Transport".
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

__all__ = ["send_at_once"]


def send_at_once(client: Any, userdata: Any, sock: Any) -> None:
    """paho's `on_socket_open` callback: turn Nagle's algorithm off on the new connection.

    `sock` is a TCP socket, a TLS socket over one, or (a WebSocket or Unix socket transport)
    something where the option does not apply, which is left as it is.
    """
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
