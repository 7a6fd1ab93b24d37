"""CPU seconds of processes and threads, from Linux's /proc (0.0 or nothing elsewhere).

For bench.central_ingest's accounting: which process (broker, edges, subscriber, central with
its notifier process) and which central thread spent the CPU of a bundle.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading

__all__ = ["children_cpu_s", "cpu_seconds", "process_cpu_s", "process_tree_cpu_s", "thread_cpu_seconds"]


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) process `pid` has used so far (Linux /proc; 0.0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used."""
    t = os.times()
    return t.user + t.system


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children_of(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                kids.extend(int(k) for k in fh.read().split())
    except OSError:
        pass
    return kids


def process_tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` and every live process under it (Linux /proc;
    0.0 elsewhere): the central with its notifier process."""
    fields = _proc_stat(pid)
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0
    return own + sum(process_tree_cpu_s(kid) for kid in _children_of(pid))


def children_cpu_s() -> dict[str, float]:
    """CPU seconds of this process's child processes, by name (the notifier's is central-notify)."""
    names = {p.pid: p.name for p in multiprocessing.active_children()}
    return {names.get(kid, str(kid)): process_tree_cpu_s(kid) for kid in _children_of(os.getpid())}


def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) of each live thread of this process, by thread name
    (numbered pool threads such as central-fsync_0 and central-fsync_1 summed as central-fsync)."""
    tick = os.sysconf("SC_CLK_TCK")
    by_name: dict[str, float] = {}
    for thread in threading.enumerate():
        try:
            with open(f"/proc/self/task/{thread.native_id}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # not Linux, or the thread just ended
        name = re.sub(r"_\d+$", "", thread.name)
        by_name[name] = by_name.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return by_name
