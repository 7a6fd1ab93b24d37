"""The parts of bench.central_ingest: bundles, simulated edges, and the processes it starts.

The processes' entry points (raw_subscriber, central_process) live here, in a module that
multiprocessing's spawn can import.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import http.server
import json
import logging
import multiprocessing
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

import wire
from bench._proc_cpu import children_cpu_s, cpu_seconds, process_tree_cpu_s, thread_cpu_seconds
from wire.messages import SEGMENT_BYTES
from wire.sockets import send_at_once
from wire.timefmt import format_ts
from wire.topics import CENTRAL_SUBSCRIPTIONS, TopicKind, ack_topic, event_topic, file_topic

__all__ = [
    "RAW_ROOT",
    "Bundle",
    "SimEdge",
    "central_process",
    "cpu_seconds",
    "json_hook",
    "make_bundle",
    "publish_all",
    "raw_subscriber",
]

# The raw runs publish the same payloads on topics under this root instead of "gw" (same length),
# so the central, connected all along, never sees them.
RAW_ROOT = "bx"
CLIP_BYTES = 2_000_000
SNAPSHOT_BYTES = 100_000
WINDOW = 8  # messages awaiting the broker's PUBACK per edge, as the edge uplink's max_inflight_segments
_ORDER_ID = re.compile(r"WO-\d{8}-\d+")

# -- bundles ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    device: str
    event_id: str
    messages: list[tuple[str, bytes]]

    @property
    def nbytes(self) -> int:
        return sum(len(p) for _, p in self.messages)

    def for_raw(self) -> Bundle:
        """The same payloads on topics under RAW_ROOT."""
        return Bundle(self.device, self.event_id, [(RAW_ROOT + t[2:], p) for t, p in self.messages])


def make_bundle(key: wire.DeviceKey, device: str, zone: str) -> Bundle:
    """A bundle of fresh random content (nothing deduplicates), as the edge uplink would send it."""
    site, camera = "site-a", "cam-1"
    event_id = wire.new_event_id()
    files = [("clip", "clip.mp4", "video/mp4", os.urandom(CLIP_BYTES))]
    files.append(("snapshot", "snapshot.jpg", "image/jpeg", os.urandom(SNAPSHOT_BYTES)))
    messages: list[tuple[str, bytes]] = []
    refs = []
    for role, name, media_type, data in files:
        sha = hashlib.sha256(data).hexdigest()
        ref = {"role": role, "name": name, "media_type": media_type, "size": len(data), "sha256": sha}
        refs.append(wire.FileRef.model_validate(ref))
        init = wire.FileInit.model_validate({"event_id": event_id, **ref, "segment_bytes": SEGMENT_BYTES})
        messages.append(
            (file_topic(TopicKind.FILE_INIT, device, site, camera, sha), init.model_dump_json().encode())
        )
        for off in range(0, len(data), SEGMENT_BYTES):
            topic = file_topic(TopicKind.FILE_SEGMENT, device, site, camera, sha, offset=off)
            messages.append((topic, data[off : off + SEGMENT_BYTES]))
        messages.append((file_topic(TopicKind.FILE_FIN, device, site, camera, sha, size=len(data)), b""))
    now = time.time()
    manifest = wire.Manifest(
        event_id=event_id,
        kind="confirmed",
        device_id=device,
        site=site,
        camera=camera,
        zone=zone,
        first_seen=format_ts(now - 30),
        at=format_ts(now),
        clock_synced=True,
        frame_size=(1920, 1080),
        detections=[wire.DetectionRecord(class_name="garbage_bag", confidence=0.9, box=(10, 20, 300, 400))],
        model=wire.ModelRef(name="gw-yolo-n", sha256="0" * 64),
        files=refs,
    ).model_dump(mode="json")
    body = {"protocol": 1, "manifest": manifest, "signature": wire.sign_manifest(key, manifest), "key_id": key.key_id}
    messages.append((event_topic(device, site, camera), json.dumps(body).encode()))
    return Bundle(device, event_id, messages)


# -- simulated edges ------------------------------------------------------------------------------


class SimEdge:
    """One paho MQTT v5 client per device: publishes bundles, records `event ok` acks with their time."""

    def __init__(self, port: int, device: str) -> None:
        self.device = device
        self.acked: dict[str, tuple[float, str | None]] = {}  # event id -> (monotonic, work order)
        self.not_ok: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._outstanding = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{device}", protocol=MQTTProtocolVersion.MQTTv5
        )
        self.client.max_inflight_messages_set(20)
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_socket_open = send_at_once  # as the edge uplink does
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(ack_topic(device), qos=1)
        if not subscribed.wait(10):
            raise RuntimeError(f"edge {device} could not subscribe to its acks")

    def _on_publish(self, c: mqtt.Client, u: Any, mid: int, rc: ReasonCode, p: Any) -> None:
        with self._cond:
            self._outstanding -= 1
            self._cond.notify_all()

    def _on_message(self, c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        ack = json.loads(msg.payload)
        with self._cond:
            if ack["ref_type"] == "event" and ack["status"] == "ok":
                self.acked.setdefault(ack["ref"], (now, ack.get("work_order")))
            elif ack["status"] != "ok":
                self.not_ok.append(ack)
            self._cond.notify_all()

    def publish(self, bundle: Bundle) -> float:
        """Publish the bundle's messages (at most WINDOW awaiting PUBACK); return when it started."""
        started = time.monotonic()
        for topic, payload in bundle.messages:
            with self._cond:
                self._cond.wait_for(lambda: self._outstanding < WINDOW)
                self._outstanding += 1
            self.client.publish(topic, payload, qos=1)
        return started

    def drain(self, timeout: float = 60.0) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._outstanding == 0, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_all(edges: Sequence[SimEdge], bundles: Sequence[Bundle]) -> dict[str, float]:
    """Each edge publishes its bundles back to back, all edges at once; return event id -> start time."""
    started: dict[str, float] = {}
    by_device = {e.device: e for e in edges}

    def run(edge: SimEdge) -> None:
        for b in bundles:
            if b.device == edge.device:
                started[b.event_id] = edge.publish(b)
        edge.drain()

    threads = [threading.Thread(target=run, args=(e,)) for e in by_device.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return started


# -- the subscriber processes ---------------------------------------------------------------------


def raw_subscriber(port: int, expected: int, ready: Any, out: Connection) -> None:
    """A bare paho subscriber: counts messages and bytes; sends (monotonic of the last, bytes)."""
    count = nbytes = 0
    done = threading.Event()

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        nonlocal count, nbytes
        count += 1
        nbytes += len(msg.payload)
        if count == expected:
            out.send((time.monotonic(), nbytes, cpu_seconds() - cpu_at_start))
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=MQTTProtocolVersion.MQTTv5)
    client.on_message = on_message
    cpu_at_start = cpu_seconds()
    client.on_subscribe = lambda *a: ready.set()
    client.on_connect = lambda c, *a: c.subscribe([(RAW_ROOT + t[2:], 1) for t in CENTRAL_SUBSCRIPTIONS])
    client.connect("127.0.0.1", port)
    client.loop_start()
    done.wait(600)
    client.disconnect()
    client.loop_stop()


class TimingSender:
    """The central's Apprise sender, noting when each order's notification is handed to Apprise."""

    def __init__(self, inner: Any, out: Any) -> None:
        self.inner, self.out = inner, out

    def send(self, channel: str, title: str, body: str, attachments: Sequence[Path] = ()) -> None:
        now = time.monotonic()
        for order in set(_ORDER_ID.findall(f"{title}\n{body}")):
            self.out.put(("notified", order, now))
        if attachments:
            self.inner.send(channel, title, body, attachments)
        else:
            self.inner.send(channel, title, body)


def timing_sender(urls: list[str], notified: Any) -> TimingSender:
    """The sender the central's notifier process builds for itself (CentralService's sender_factory)."""
    from central.notify.sender import AppriseSender

    return TimingSender(AppriseSender(urls), notified)


def central_process(config_path: str, ready: Any, stop: Any, notified: Any, out: Connection) -> None:
    from central import CentralService, load_config
    from central.notify.sender import AppriseSender

    logging.basicConfig(level=logging.WARNING, format="central %(levelname)s %(name)s: %(message)s")
    config = load_config(config_path)
    if os.environ.get("GW_BENCH_PROFILE"):
        _profile_threads(os.environ["GW_BENCH_PROFILE"])
    # As `garbagewatch central run` runs it: with notify.process (the default) the notifier is a
    # child process, which builds this sender itself; with it off, a thread of this process.
    if config.notify.process:
        service = CentralService(config, sender_factory=functools.partial(timing_sender, config.notify.urls, notified))
    else:
        service = CentralService(config, sender=TimingSender(AppriseSender(config.notify.urls), notified))
    service.start()
    # Instrumentation: when an event's work order is durable (its ack goes out next).
    handler = service._consumer.handler  # type: ignore[union-attr]
    handle, after_commit = handler.handle_or_defer, handler.after_commit
    filed: list[str] = []

    def emit_committed() -> None:
        now = time.monotonic()
        for order in filed:
            notified.put(("committed", order, now))
        filed.clear()

    def timed_handle(topic: str, payload: bytes, **kwargs: Any) -> Any:
        outgoing = handle(topic, payload, **kwargs)  # the consumer's entry point: durable at after_commit
        for out in outgoing or ():
            if b'"ref_type":"event"' in out.payload:  # only these few are parsed
                ack = json.loads(out.payload)
                if ack["status"] == "ok" and ack.get("work_order"):
                    filed.append(ack["work_order"])
        return outgoing

    def timed_after_commit() -> None:
        after_commit()
        emit_committed()

    if os.environ.get("GW_BENCH_KIND_CPU"):
        kinds = _time_kinds(handler)
    handler.handle_or_defer = timed_handle  # type: ignore[method-assign]
    handler.after_commit = timed_after_commit  # type: ignore[method-assign]
    if service.wait_ready(30):  # (with the notifier process started: its imports are not part of the run)
        ready.set()
    cpu_at_ready = process_tree_cpu_s(os.getpid())  # (not counting the imports and the start)
    threads_at_ready = thread_cpu_seconds()
    children_at_ready = children_cpu_s()
    stop.wait()
    threads = {k: v - threads_at_ready.get(k, 0.0) for k, v in thread_cpu_seconds().items()}
    for name, cpu_s in children_cpu_s().items():
        threads[f"{name} (process)"] = cpu_s - children_at_ready.get(name, 0.0)
    out.send((service.counters, process_tree_cpu_s(os.getpid()) - cpu_at_ready, threads))
    if os.environ.get("GW_BENCH_KIND_CPU"):
        for kind, (cpu_s, wall_s, n) in sorted(kinds.items()):
            print(
                f"ingest thread, {kind:14} n={n:5}: CPU {cpu_s / n * 1e3:6.3f} ms, "
                f"wall {wall_s / n * 1e3:6.3f} ms each",
                file=sys.stderr,
            )
    service.stop()


def _time_kinds(handler: Any) -> dict[str, list[float]]:
    """Wrap the handler so that it adds up, per message kind, the ingest thread's CPU and wall
    seconds and the count (GW_BENCH_KIND_CPU=1: printed when the central stops)."""
    spent: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])

    def timed(name: str, func: Any, kind_of: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            c0, w0 = time.thread_time(), time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                entry = spent[kind_of(args) if kind_of else name]
                entry[0] += time.thread_time() - c0
                entry[1] += time.perf_counter() - w0
                entry[2] += 1

        return run

    handler._dispatch = timed("", handler._dispatch, lambda args: args[0].kind.value)
    handler.end_of_batch = timed("end_of_batch", handler.end_of_batch, None)
    return spent


def _profile_threads(prefix: str) -> None:
    """cProfile the central's ingest thread and paho's network thread, dumped when each ends:
    <prefix>.ingest and <prefix>.network (read them with `python -m pstats`)."""
    import cProfile

    from central.ingest.consumer import MqttConsumer

    def profiled(func: Any, path: str) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            prof = cProfile.Profile()
            prof.enable()
            try:
                return func(*args, **kwargs)
            finally:
                prof.disable()
                prof.dump_stats(path)

        return run

    MqttConsumer._ingest = profiled(MqttConsumer._ingest, f"{prefix}.ingest")  # type: ignore[method-assign]
    mqtt.Client._thread_main = profiled(mqtt.Client._thread_main, f"{prefix}.network")  # type: ignore[method-assign]


# -- the notification target -----------------------------------------------------------------------


def _serve_hook(port_out: Connection) -> None:
    """The notification hook's process: answer every POST with 200 and forget it, until terminated."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    # One request at a time, as the central's notifier sends them (a thread per request would
    # only add the cost of starting threads).
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    port_out.send(server.server_address[1])
    server.serve_forever(poll_interval=0.05)


@contextlib.contextmanager
def json_hook() -> Iterator[tuple[str, int]]:
    """A local HTTP endpoint for Apprise's json://, in a process of its own; yields (url, pid).

    It stands in for a remote service (DingTalk, a mail relay): it must not share an interpreter
    lock with the simulated edges, which run in this process. Its CPU is metered on its own.
    """
    ctx = multiprocessing.get_context("spawn")
    port_in, port_out = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_serve_hook, args=(port_out,), daemon=True)
    proc.start()
    try:
        if not port_in.poll(30):
            raise RuntimeError("the notification hook did not start")
        yield f"json://127.0.0.1:{port_in.recv()}/hook", proc.pid or 0
    finally:
        proc.terminate()
        proc.join(10)
