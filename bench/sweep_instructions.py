"""The 15:00 burst's cost in CPU instructions, which this VM's noise does not move.

    python3 -m bench.sweep_instructions [--orders 100000] [--hold-s 1e9]

Wall and CPU time of the same sweep vary by a third from one minute to the next on the shared
2-vCPU VM, so a change of 10% cannot be seen in a few runs of bench.deadline_sweep. This counts
the user-space instructions of one burst sweep instead (valgrind's callgrind, which must be
installed: `apt-get install valgrind`): the same state as bench.deadline_sweep's first steady
sweep (12,691 of 100,000 orders due at 15:00), the same hook, seeded and imported before counting
starts, so only the sweep is counted. Kernel work (fsync, page cache copies) is not counted, nor
is the service's WAL checkpointer (central.store.wal_checkpointer), which does not run here: the
burst's WAL stays under the backstop at which a commit would checkpoint itself.

`--hold-s` defaults to one transaction for the whole burst: the service splits a burst into
transactions of about 0.25 s, but under valgrind every transaction would hold far fewer orders
(it runs some 50 times slower), so the split would differ from run to run. To compare two
commits, run this in a git worktree of each (`git worktree add /tmp/base <commit>`).

The last line: `instructions N orders M`. About a minute.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.deadline_sweep import NOW, _config, _seed
from central.audit import AuditTrail
from central.caseflow.flow import CaseFlow
from central.caseflow.sweep import sweep
from central.store import open_database

SITES = 200


def _child(data: Path, go: Path, hold_s: float) -> int:
    """Runs under valgrind: open the seeded file, wait for counting to start, sweep once."""
    flow = CaseFlow(_config(data, SITES))
    db = open_database(data / "gw.db")
    print("READY", flush=True)
    while not go.exists():
        time.sleep(0.05)
    result = sweep(db, flow, NOW, audit=AuditTrail(db), hold_s=hold_s)
    print(f"orders {result.orders} transactions {result.transactions}", flush=True)
    os._exit(0)  # counting stops here: nothing after the sweep is counted


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.sweep_instructions", description=__doc__.split("\n")[0])
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--hold-s", type=float, default=1e9)
    ap.add_argument("--child", nargs=2, metavar=("DATA", "GO"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(Path(args.child[0]), Path(args.child[1]), args.hold_s)
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed: apt-get install valgrind", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="gw-sweep-instr-") as tmp:
        data = Path(tmp)
        _seed(CaseFlow(_config(data, SITES)), data / "gw.db", args.orders, SITES, NOW - 30, random.Random(1))
        go, log = data / "go", data / "callgrind.log"
        cmd = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={data / 'callgrind.out'}",
            f"--log-file={log}", sys.executable, "-m", "bench.sweep_instructions",
            "--hold-s", str(args.hold_s), "--child", str(data), str(go),
        ]  # fmt: skip
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as child:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "READY":
                print("the sweep under valgrind did not start", file=sys.stderr)
                return 1
            subprocess.run(["callgrind_control", "-i", "on", str(child.pid)], check=True, capture_output=True)
            go.touch()
            outcome = child.stdout.read().strip()
        counted = re.search(r"Collected : (\d+)", log.read_text())
        if child.returncode != 0 or counted is None:
            print(f"valgrind failed ({child.returncode}): {log.read_text()[-2000:]}", file=sys.stderr)
            return 1
        print(outcome)
        print(f"instructions {int(counted.group(1))} {outcome.split(' transactions')[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
