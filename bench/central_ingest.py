"""Central ingest through a real Mosquitto on loopback: throughput against the bare broker, and latency.

    python3 -m bench.central_ingest [--rounds 5] [--bundles 60] [--edges 4] [--steady-s 30] [--rate 10]

Simulated edges publish evidence bundles the way the edge uplink does: a 2 MB clip and a 100 kB
snapshot, each as init, 256 KiB segments and fin at QoS 1 with at most 8 messages awaiting the
broker's PUBACK, then the signed event. Every bundle has its own zone, so each opens a work order
and queues a notification. The central runs in its own process (CentralService from a YAML
config, SQLite and evidence on this disk, notifications through Apprise to a local json:// hook,
a process of its own that stands in for a remote service).
One run measures, on this machine:

1. throughput, in rounds of fresh bundles, each round raw then ours, so that a burst of load
   from elsewhere on a shared machine hits both alike (the ratio is the median of the rounds'):
   - raw: the same edges publish the same payloads (on topics under "bx/" instead of "gw/",
     which the central does not subscribe to), and a bare paho subscriber in its own process,
     QoS 1, only counts them: MB/s from the first publish to the last byte received;
   - ours: the same bundles to the central: MB/s from the first publish to the last
     `event ok` ack (the central acks only once the work order is committed and durable).
2. latency at a steady rate (10 bundles/s, round robin over the edges): per bundle, from the
   edge's first publish of the bundle to the work order committed (durable, seen inside the
   central), to the edge's `event ok`, and to the notification handed to Apprise.

It also prints where the CPU goes: per bundle, in the throughput rounds, the broker's, this
process's (the edges), the notification hook's (ours) and the subscriber's or the central's;
and the central's threads over the whole run. With GW_BENCH_KIND_CPU=1 the central also prints
its ingest thread's CPU and wall time per message kind (init, segment, fin, event).

MB are 10^6 bytes of bundle payload. The last line is `MBps X ratio R p99_ms Y`: X is ours
(median of the rounds), R = ours / raw, Y the p99 latency to the notification handed to Apprise
(the later of the two). Targets: R >= 0.5 and Y <= 1000.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import multiprocessing as mp
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wire
from bench._central_sim import (
    Bundle,
    SimEdge,
    central_process,
    json_hook,
    make_bundle,
    publish_all,
    raw_subscriber,
)
from bench._common import machine_line
from bench._proc_cpu import process_cpu_s, process_tree_cpu_s
from garbagewatch.devtools.mosquitto import Mosquitto
from wire.signing import public_key_pem

# -- the phases -------------------------------------------------------------------------------------


@dataclass
class Figures:
    raw_mbps: list[float] = field(default_factory=list)  # one per round
    ours_mbps: list[float] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    steady_rate: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    raw_cpu_ms: list[float] = field(default_factory=list)  # the raw subscriber's CPU per bundle, per round
    central_cpu_ms: float = 0.0  # the central process's CPU per bundle, over the whole run
    thread_cpu_ms: dict[str, float] = field(default_factory=dict)  # the same, by central thread
    # CPU ms per bundle in the throughput rounds, by process: {"raw"|"ours": {"broker": ..., ...}}
    phase_cpu_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    bundles: int = 0


class PhaseCpu:
    """Adds up the CPU each named process spends between `start` and `stop`, phase by phase.
    `meters`: name -> a function giving that process's CPU seconds so far."""

    def __init__(self, meters: dict[str, Callable[[], float]]) -> None:
        self.meters = meters
        self.spent: dict[str, dict[str, float]] = {}
        self._at: dict[str, float] = {}

    def start(self) -> None:
        self._at = {name: meter() for name, meter in self.meters.items()}

    def stop(self, phase: str) -> None:
        into = self.spent.setdefault(phase, {})
        for name, meter in self.meters.items():
            into[name] = into.get(name, 0.0) + meter() - self._at[name]


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]) if ordered else float("nan")


def run_raw(port: int, edges: Sequence[SimEdge], bundles: Sequence[Bundle]) -> tuple[float, float]:
    """MB/s from the first publish to the last byte at a bare subscriber (its own process), and
    the subscriber's CPU ms per bundle."""
    bundles = [b.for_raw() for b in bundles]
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    recv, send = ctx.Pipe(duplex=False)
    expected = sum(len(b.messages) for b in bundles)
    proc = ctx.Process(target=raw_subscriber, args=(port, expected, ready, send), daemon=True)
    proc.start()
    if not ready.wait(30):
        raise RuntimeError("the raw subscriber did not subscribe")
    t0 = time.monotonic()
    publish_all(edges, bundles)
    if not recv.poll(300):
        raise RuntimeError("the raw subscriber did not receive every message")
    t1, nbytes, cpu_s = recv.recv()
    proc.join(30)
    return float(nbytes / 1e6 / (t1 - t0)), cpu_s * 1000 / len(bundles)


def wait_acks(
    edges: Sequence[SimEdge], event_ids: Sequence[str], timeout: float
) -> dict[str, tuple[float, str | None]]:
    deadline = time.monotonic() + timeout
    wanted = set(event_ids)
    while True:
        acked = {k: v for e in edges for k, v in list(e.acked.items()) if k in wanted}
        if len(acked) == len(wanted):
            return acked
        if time.monotonic() > deadline:
            problems = [a for e in edges for a in e.not_ok][:3]
            raise RuntimeError(f"{len(wanted) - len(acked)} bundle(s) never acked ok; other acks: {problems}")
        time.sleep(0.01)


def run(
    port: int, workdir: Path, keys: dict[str, wire.DeviceKey], edges: Sequence[SimEdge],
    rounds: int, per_round: int, steady_s: float, rate: float, broker_pid: int, notify_thread: bool = False,
) -> Figures:  # fmt: skip
    """The central in its own process; rounds of raw then ours on fresh bundles; then the steady rate."""
    figures = Figures()
    with json_hook() as (hook_url, hook_pid):
        config = workdir / "central.yaml"
        config.write_text(
            json.dumps(
                {
                    "data_dir": str(workdir / "central"),
                    "broker": {"port": port, "client_id": "bench-central"},
                    "devices": [{"device_id": d, "public_key_pem": public_key_pem(k.public)} for d, k in keys.items()],
                    # group_s 0: every notice its own message. (Grouping, 300 s by default, holds
                    # notices back on purpose; this measures the pipeline, not that policy.)
                    "notify": {
                        "urls": [hook_url],
                        "console_url": "http://console.bench",
                        "group_s": 0,
                        "process": not notify_thread,  # --notify-thread: the notifier as a thread
                    },
                }
            )
        )
        ctx = mp.get_context("spawn")
        ready, stop, notified = ctx.Event(), ctx.Event(), ctx.Queue()
        recv, send = ctx.Pipe(duplex=False)
        # Not a daemon: the central starts a notifier process of its own.
        proc = ctx.Process(target=central_process, args=(str(config), ready, stop, notified, send))
        proc.start()
        try:
            if not ready.wait(60):
                raise RuntimeError("the central did not connect and subscribe")
            devices = list(keys)
            # The raw subscriber's CPU comes from the subscriber itself; the edges are this process.
            central_pid = proc.pid or 0
            cpu = PhaseCpu(
                {
                    "broker": functools.partial(process_cpu_s, broker_pid),
                    "edges": functools.partial(process_cpu_s, os.getpid()),
                    "hook": functools.partial(process_cpu_s, hook_pid),
                    "central": functools.partial(process_tree_cpu_s, central_pid),  # with its notifier process
                }
            )
            for r in range(rounds):
                # Fresh content every round: the central would take a resent bundle as a duplicate.
                bundles = [
                    make_bundle(keys[devices[i % len(devices)]], devices[i % len(devices)], f"r{r}z{i}")
                    for i in range(per_round)
                ]
                cpu.start()
                raw_mbps, raw_cpu_ms = run_raw(port, edges, bundles)
                cpu.stop("raw")
                figures.raw_mbps.append(raw_mbps)
                figures.raw_cpu_ms.append(raw_cpu_ms)
                figures.bundles += len(bundles)
                cpu.start()
                t0 = time.monotonic()
                publish_all(edges, bundles)
                acked = wait_acks(edges, [b.event_id for b in bundles], 600)
                cpu.stop("ours")
                t1 = max(t for t, _ in acked.values())
                figures.ours_mbps.append(sum(b.nbytes for b in bundles) / 1e6 / (t1 - t0))
                print(
                    f"round {r + 1}: raw {figures.raw_mbps[-1]:.1f} MB/s, ours {figures.ours_mbps[-1]:.1f} MB/s "
                    f"({figures.ours_mbps[-1] / figures.raw_mbps[-1]:.2f})",
                    flush=True,
                )
            per_round_bundles = max(1, rounds * per_round)
            figures.phase_cpu_ms = {
                phase: {name: sec * 1000 / per_round_bundles for name, sec in spent.items()}
                for phase, spent in cpu.spent.items()
            }
            figures.latencies, figures.steady_rate = steady(edges, keys, notified, steady_s, rate)
            figures.bundles += len(figures.latencies["notified"])
            stop.set()
            if recv.poll(60):
                figures.counters, cpu_s, thread_s = recv.recv()
                figures.central_cpu_ms = cpu_s * 1000 / max(1, figures.bundles)
                figures.thread_cpu_ms = {k: v * 1000 / max(1, figures.bundles) for k, v in thread_s.items()}
        finally:
            stop.set()
            proc.join(60)
            if proc.is_alive():
                proc.kill()
    return figures


def steady(
    edges: Sequence[SimEdge], keys: dict[str, wire.DeviceKey], notified: Any, seconds: float, rate: float
) -> tuple[dict[str, list[float]], float]:
    """Bundles at `rate` per second, round robin over the edges.

    Returns latencies in ms from each bundle's first publish: 'sent' (the edge has handed over its
    last message), 'committed' (the central's ingest is done with the event), 'acked' (the edge
    has the `event ok`), 'notified' (handed to Apprise); and the rate achieved.
    """
    total = int(seconds * rate)
    inboxes: dict[str, queue.Queue[Bundle | None]] = {e.device: queue.Queue() for e in edges}
    started: dict[str, float] = {}
    sent: dict[str, float] = {}

    def run(edge: SimEdge) -> None:
        while (b := inboxes[edge.device].get()) is not None:
            started[b.event_id] = edge.publish(b)
            sent[b.event_id] = time.monotonic()

    threads = [threading.Thread(target=run, args=(e,)) for e in edges]
    for t in threads:
        t.start()
    event_ids = []
    t0 = time.monotonic()
    for i in range(total):
        edge = edges[i % len(edges)]
        bundle = make_bundle(keys[edge.device], edge.device, f"s{i}")
        event_ids.append(bundle.event_id)
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        inboxes[edge.device].put(bundle)
    for q in inboxes.values():
        q.put(None)
    for t in threads:
        t.join()
    span = max(started.values()) - min(started.values())
    achieved = (total - 1) / span if total > 1 and span > 0 else 0.0
    acked = wait_acks(edges, event_ids, 600)
    order_of = {order: eid for eid, (_, order) in acked.items()}
    seen: dict[str, dict[str, float]] = {"committed": {}, "notified": {}}
    deadline = time.monotonic() + 120
    # Both kinds, for every bundle: the notifier is another process than the ingest that notes
    # "committed", so an order's "notified" may come first.
    while min(len(seen["notified"]), len(seen["committed"])) < total and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            what, order, at = notified.get(timeout=0.5)
            if order in order_of:
                seen[what].setdefault(order_of[order], at)
    if len(seen["notified"]) < total:
        raise RuntimeError(f"only {len(seen['notified'])} of {total} notifications reached Apprise")
    if len(seen["committed"]) < total:
        raise RuntimeError(f"only {len(seen['committed'])} of {total} work orders were seen committed")

    def ms(at: dict[str, float]) -> list[float]:
        return [(at[e] - started[e]) * 1000 for e in event_ids]

    acked_at = {e: t for e, (t, _) in acked.items()}
    latencies = {
        "sent": ms(sent),
        "committed": ms(seen["committed"]),
        "acked": ms(acked_at),
        "notified": ms(seen["notified"]),
    }
    return latencies, achieved


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.central_ingest", description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="throughput rounds, raw then ours in each")
    ap.add_argument("--bundles", type=int, default=60, help="bundles per throughput round")
    ap.add_argument("--edges", type=int, default=4, help="simulated edge devices")
    ap.add_argument("--steady-s", type=float, default=30.0, help="seconds at the steady rate")
    ap.add_argument("--rate", type=float, default=10.0, help="bundles per second in the latency run")
    ap.add_argument(
        "--notify-thread",
        action="store_true",
        help="run the central's notifier as a thread of its process (notify.process: false), not as its own process",
    )
    ap.add_argument("--workdir", type=Path, help="broker and central data (default: a temporary folder)")
    args = ap.parse_args(argv)

    keys = {f"edge-{i}": wire.DeviceKey.generate() for i in range(args.edges)}
    sample = make_bundle(keys["edge-0"], "edge-0", "z0")
    print(f"# {machine_line()}", flush=True)
    print(
        f"# {args.rounds} rounds of {args.bundles} bundles of {sample.nbytes / 1e6:.2f} MB ({len(sample.messages)} "
        f"messages) from {args.edges} edges; then {args.rate:g} bundles/s for {args.steady_s:g} s",
        flush=True,
    )
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gw-bench-")))
        broker = Mosquitto(workdir / "mosquitto").start()
        stack.callback(broker.stop)
        edges = [SimEdge(broker.port, d) for d in keys]
        for e in edges:
            stack.callback(e.close)
        assert broker.proc is not None
        figures = run(
            broker.port, workdir, keys, edges, args.rounds, args.bundles, args.steady_s, args.rate, broker.proc.pid,
            args.notify_thread,
        )  # fmt: skip
    raw, ours = statistics.median(figures.raw_mbps), statistics.median(figures.ours_mbps)
    ratio = statistics.median(o / r for o, r in zip(figures.ours_mbps, figures.raw_mbps, strict=True))
    lat = figures.latencies
    print(f"ratio (median of rounds, ours / raw): {ratio:.2f}")
    print(f"raw broker (bare paho publisher -> subscriber): {raw:.1f} MB/s (median)")
    print(f"ours, sustained to committed work orders: {ours:.1f} MB/s (median)")
    print(
        f"latency at {figures.steady_rate:.1f} bundles/s, n={len(lat['notified'])}, ms from the edge's first "
        "publish of a bundle to:"
    )
    print(f"  {'':6} {'edge sent all':>14} {'committed':>10} {'edge acked':>11} {'to Apprise':>11}")
    for q in (50, 90, 99, 100):
        row = [percentile(lat[k], q) for k in ("sent", "committed", "acked", "notified")]
        print(f"  {'max' if q == 100 else f'p{q}':6} {row[0]:14.0f} {row[1]:10.0f} {row[2]:11.0f} {row[3]:11.0f}")
    print(
        f"CPU per bundle: central {figures.central_cpu_ms:.0f} ms (whole run, all threads), "
        f"raw subscriber {statistics.median(figures.raw_cpu_ms):.0f} ms"
    )
    raw_cpu, ours_cpu = figures.phase_cpu_ms.get("raw", {}), figures.phase_cpu_ms.get("ours", {})
    print(
        "CPU per bundle in the throughput rounds: raw: broker {:.1f}, edges {:.1f}, subscriber {:.1f}; "
        "ours: broker {:.1f}, edges {:.1f}, notification hook {:.1f}, central {:.1f} (ms)".format(
            raw_cpu.get("broker", 0.0), raw_cpu.get("edges", 0.0), statistics.median(figures.raw_cpu_ms),
            ours_cpu.get("broker", 0.0), ours_cpu.get("edges", 0.0), ours_cpu.get("hook", 0.0),
            ours_cpu.get("central", 0.0),
        )
    )
    busiest = sorted(figures.thread_cpu_ms.items(), key=lambda kv: -kv[1])
    print("  central threads: " + ", ".join(f"{name} {ms:.1f}" for name, ms in busiest if ms >= 0.05))
    c = figures.counters
    print(
        f"central counters: events_filed {c.get('events_filed', 0)}, work_orders_opened "
        f"{c.get('work_orders_opened', 0)}, notifications_sent {c.get('notifications_sent', 0)}, "
        f"quarantined {c.get('quarantined', 0)}"
    )
    print(f"MBps {ours:.1f} ratio {ratio:.2f} p99_ms {percentile(lat['notified'], 99):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
