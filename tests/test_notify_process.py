"""The notifier in a process of its own (notify.process, the default for `garbagewatch central run`).

Real parts: a real child process, real Apprise to a local HTTP hook, a real SQLite outbox. The
child reads the outbox the service's process wrote, sends, records, and its counts show in the
parent; it stops when told, and it does not outlive a parent killed with -9.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from central_edge import HookServer, wait_for

from central.config import NotifyConfig
from central.notify import order_opened_message
from central.notify.process import NotifierProcess
from central.store import channel_id, enqueue_notification, open_database

ORDER = {
    "id": "WO-20270115-000001",
    "event_code": "0102",
    "site": "site-a",
    "camera": "cam-1",
    "zone": "z1",
    "opened_at": "2027-01-15T08:00:00.000Z",
    "due_at": "2027-01-15T12:00:00.000Z",
}


def enqueue(db_path: Path, url: str, order_id: str) -> None:
    db = open_database(db_path)
    try:
        title, body = order_opened_message({**ORDER, "id": order_id}, "http://console.test/")
        enqueue_notification(
            db, work_order_id=order_id, kind="opened", channels=[channel_id(url)], title=title, body=body, now=0.0
        )
    finally:
        db.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_the_child_delivers_what_this_process_queued_and_counts_show_here(tmp_path: Path, hook: HookServer) -> None:
    db_path = tmp_path / "gw.db"
    open_database(db_path).close()
    settings = NotifyConfig(urls=[hook.url], poll_s=0.2, first_retry_s=0.2)
    notifier = NotifierProcess(db_path, settings)
    notifier.start()
    try:
        assert notifier.pid is not None and notifier.pid != os.getpid()
        assert notifier.wait_ready(30)  # the child has imported and built its sender
        enqueue(db_path, hook.url, "WO-20270115-000001")
        notifier.wake()
        wait_for(lambda: len(hook.bodies) == 1, 30, "the first notification at the hook")
        hook.fail_next = 1  # the service is down once: retried by the child, delivered once
        enqueue(db_path, hook.url, "WO-20270115-000002")
        notifier.wake()
        wait_for(lambda: len(hook.bodies) == 2, 30, "the second notification, after one retry")
        wait_for(lambda: notifier.counts().get("notifications_sent") == 2, 10, "the child's counts")
        assert notifier.counts() == {"notifications_sent": 2, "notification_retries": 1}
        assert ["WO-20270115-000001" in b["message"] for b in hook.bodies] == [True, False]
        child = notifier.pid
        # Below the service in the CPU's queue (notify.process_nice, 10 by default).
        assert os.getpriority(os.PRIO_PROCESS, child) == os.getpriority(os.PRIO_PROCESS, 0) + 10
    finally:
        notifier.stop()
    assert not alive(child)
    db = open_database(db_path)
    try:
        assert [r[0] for r in db.execute("SELECT status FROM notifications ORDER BY id")] == ["sent", "sent"]
    finally:
        db.close()


def test_the_child_does_not_outlive_a_parent_killed_with_minus_9(tmp_path: Path, hook: HookServer) -> None:
    db_path = tmp_path / "gw.db"
    open_database(db_path).close()
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from central.config import NotifyConfig
        from central.notify.process import NotifierProcess
        if __name__ == "__main__":
            notifier = NotifierProcess(Path({str(db_path)!r}), NotifyConfig(urls=[{hook.url!r}], poll_s=0.2))
            notifier.start()
            print(notifier.pid, flush=True)
            time.sleep(600)
        """
    )
    path = tmp_path / "parent.py"
    path.write_text(script)
    parent = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, cwd=Path(__file__).parents[1])
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        wait_for(lambda: not alive(child), 15, "the orphaned notifier to stop")
    finally:
        if parent.poll() is None:
            parent.kill()
