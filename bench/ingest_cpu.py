"""The ingest thread's own work per bundle, in-process, without a broker: what a CPU cut buys.

    python3 -m bench.ingest_cpu [--bundles 60]

Builds the benchmark's bundles (bench.central_ingest: a 2 MB clip and a 100 kB snapshot as
segments, then the signed event), hands their messages to one `IngestHandler` the way the
consumer does (one batch per bundle, commits durable at its end), and prints per bundle: wall
time, this thread's CPU time (not the helper threads' fsyncs and hashing), the time spent in
filing the event (`CaseFlow.file_event`) and the SQL statements run. The last line is
`cpu_ms X file_event_ms F statements S`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import wire
from bench._central_sim import make_bundle
from central import BrokerConfig, CentralConfig, DeviceConfig, NotifyConfig
from central.counters import Counters
from central.ingest.handler import IngestHandler
from central.store.database import open_database
from central.store.devices import sync_devices
from central.store.durability import commits_not_waiting, fsync_wal, wal_path
from central.timefmt import system_clock


def run(n_bundles: int) -> tuple[float, float, float, float]:
    """(wall ms, thread CPU ms, file_event ms, statements) per bundle."""
    keys = {f"edge-{i}": wire.DeviceKey.generate() for i in range(4)}
    devices = list(keys)
    with tempfile.TemporaryDirectory() as d:
        config = CentralConfig(
            data_dir=Path(d),
            broker=BrokerConfig(),
            devices=[DeviceConfig.for_key(k, v.public) for k, v in keys.items()],
            notify=NotifyConfig(urls=["json://127.0.0.1:9/x"]),
        )
        for folder in (config.data_dir, config.evidence_dir, config.incoming_dir, config.quarantine_dir):
            folder.mkdir(parents=True, exist_ok=True)
        db = open_database(config.db_path)
        sync_devices(db, config.devices)
        handler = IngestHandler(config, db, Counters(), system_clock)
        bundles = [make_bundle(keys[devices[i % 4]], devices[i % 4], f"z{i}") for i in range(n_bundles)]
        filing_s = 0.0
        file_event = handler.case_flow.file_event

        def timed_file_event(*args: Any, **kwargs: Any) -> Any:
            nonlocal filing_s
            t = time.perf_counter()
            try:
                return file_event(*args, **kwargs)
            finally:
                filing_s += time.perf_counter() - t

        handler.case_flow.file_event = timed_file_event  # type: ignore[method-assign]
        statements = 0

        def count(_sql: str) -> None:
            nonlocal statements
            statements += 1

        wal = wal_path(db)
        db.conn.set_trace_callback(count)
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        for bundle in bundles:
            with commits_not_waiting(db, wal):
                for topic, payload in bundle.messages:
                    handler.handle_or_defer(topic, payload, patient=False, retry=False)
                handler.end_of_batch()
            fsync_wal(wal)
            handler.after_commit()
        wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
        db.conn.set_trace_callback(None)
        db.close()
    per = 1000.0 / n_bundles
    return wall * per, cpu * per, filing_s * per, statements / n_bundles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bundles", type=int, default=60)
    args = parser.parse_args(argv)
    wall, cpu, filing, statements = run(args.bundles)
    print(f"{args.bundles} bundles: wall {wall:.2f} ms, ingest thread CPU {cpu:.2f} ms per bundle")
    print(f"cpu_ms {cpu:.2f} file_event_ms {filing:.2f} statements {statements:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
