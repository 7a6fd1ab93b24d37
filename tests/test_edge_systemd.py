"""systemd: the sd_notify client on a real datagram socket, the watchdog, journald lines, the units."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_process import StatusWatcher, config_from_example, demo_camera_clip, start_edge, wait_for

from edge.config import load_edge_config
from edge.systemd import Heartbeat, JournalFormatter, Notifier, configure_logging, journal_stream_is, notify
from garbagewatch.devtools.mosquitto import Mosquitto

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "configs" / "systemd"
INSTALLED_EXEC = "/opt/garbagewatch/.venv/bin/garbagewatch"


class NotifySocket:
    """What systemd listens on: an AF_UNIX datagram socket, at a path or in the abstract namespace."""

    def __init__(self, address: str) -> None:
        self.address = address  # as it goes in $NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.received: list[dict[str, str]] = []

    def poll(self) -> list[dict[str, str]]:
        """Read what has arrived; every datagram as {KEY: value}."""
        while True:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                return self.received
            self.received.append(dict(line.split("=", 1) for line in data.decode().splitlines()))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(str(tmp_path / "notify.sock"))
    yield sock
    sock.close()


@pytest.fixture
def abstract_notify_socket() -> Iterator[NotifySocket]:
    sock = NotifySocket(f"@garbagewatch-test-{uuid.uuid4().hex}")
    yield sock
    sock.close()


# -- the notify client -----------------------------------------------------------------------------


def test_fields_arrive_as_one_datagram_of_lines(notify_socket: NotifySocket) -> None:
    notifier = Notifier(notify_socket.address)
    assert notifier.notify(READY=1, STATUS="2/2 cameras\nconnected")
    assert notify_socket.poll() == [{"READY": "1", "STATUS": "2/2 cameras connected"}]


def test_abstract_namespace_address(abstract_notify_socket: NotifySocket) -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": abstract_notify_socket.address})
    assert notifier.enabled and notifier.notify(WATCHDOG=1)
    assert abstract_notify_socket.poll() == [{"WATCHDOG": "1"}]


def test_module_notify_uses_the_environment(
    abstract_notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", abstract_notify_socket.address)
    assert notify(STOPPING=1)
    assert abstract_notify_socket.poll() == [{"STOPPING": "1"}]
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert not notify(STOPPING=1)


def test_not_under_systemd_everything_is_a_no_op() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert not notifier.notify(READY=1)
    heartbeat = Heartbeat(notifier, lambda: [], lambda: pytest.fail("status computed for nobody"))
    assert not heartbeat.beat()


def test_watchdog_interval_is_half_the_timeout_and_only_for_this_process() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    assert Notifier.from_environment(env).watchdog_interval == 15.0
    assert Notifier.from_environment({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_interval == 15.0
    # Inherited from a parent the watchdog is meant for: not ours to pet.
    assert Notifier.from_environment({**env, "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier.from_environment({**env, "WATCHDOG_USEC": "soon"}).watchdog_interval is None
    assert Notifier.from_environment({"WATCHDOG_USEC": "30000000"}).watchdog_interval is None


def test_unreachable_socket_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier(str(tmp_path / "nobody-listens.sock"))
    with caplog.at_level(logging.WARNING, logger="edge.systemd"):
        assert not notifier.notify(WATCHDOG=1)
        assert not notifier.notify(WATCHDOG=1)
    assert len([r for r in caplog.records if "cannot notify" in r.getMessage()]) == 1
    assert not Notifier("relative/path").enabled


# -- the watchdog follows the daemon's health ------------------------------------------------------


class FakeDaemon:
    """Stands in for EdgeDaemon's health: the test decides which threads are dead."""

    def __init__(self) -> None:
        self.dead: list[str] = []
        self.status_calls = 0

    def dead_threads(self) -> list[str]:
        return list(self.dead)

    def status_line(self) -> str:
        self.status_calls += 1
        return "cameras 2/2 connected"


def test_watchdog_is_petted_only_while_every_thread_is_alive(
    notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    daemon, now = FakeDaemon(), [0.0]
    notifier = Notifier(notify_socket.address, watchdog_usec=2_000_000)
    heartbeat = Heartbeat(notifier, daemon.dead_threads, daemon.status_line, status_interval=10.0,
                          clock=lambda: now[0])
    assert heartbeat.tick_seconds == 1.0
    assert heartbeat.beat()
    assert notify_socket.poll() == [{"STATUS": "cameras 2/2 connected"}, {"WATCHDOG": "1"}]

    daemon.dead = ["camera gate-east"]
    now[0] = 1.0
    with caplog.at_level(logging.ERROR, logger="edge.systemd"):
        assert not heartbeat.beat()
        now[0] = 2.0
        assert not heartbeat.beat()
    new = notify_socket.poll()[2:]
    assert {"WATCHDOG": "1"} not in new
    assert new == [{"STATUS": "unhealthy: camera gate-east not alive"}]  # said at once, not in 10 s
    assert [r.getMessage() for r in caplog.records] == [
        "health: thread(s) not alive: camera gate-east; the systemd watchdog is no longer petted"]
    assert heartbeat.withheld == 2 and heartbeat.pets == 1

    daemon.dead = []
    now[0] = 3.0
    assert heartbeat.beat()
    assert notify_socket.poll()[3:] == [{"STATUS": "cameras 2/2 connected"}, {"WATCHDOG": "1"}]


def test_status_is_sent_when_due_and_changed(notify_socket: NotifySocket) -> None:
    daemon, now = FakeDaemon(), [0.0]
    heartbeat = Heartbeat(Notifier(notify_socket.address), daemon.dead_threads, daemon.status_line,
                          status_interval=10.0, clock=lambda: now[0])
    for t in (0.0, 5.0, 10.0, 20.0):
        now[0] = t
        heartbeat.beat()
    assert daemon.status_calls == 3  # at 0, 10 and 20 s, not at 5
    assert notify_socket.poll() == [{"STATUS": "cameras 2/2 connected"}]  # unchanged: sent once


def test_a_failing_status_line_does_not_stop_the_heartbeat(notify_socket: NotifySocket) -> None:
    def status() -> str:
        raise RuntimeError("database is locked")

    heartbeat = Heartbeat(Notifier(notify_socket.address, watchdog_usec=2_000_000), lambda: [], status)
    assert heartbeat.beat()
    assert notify_socket.poll() == [{"STATUS": "status unavailable: database is locked"}, {"WATCHDOG": "1"}]


# -- journald-friendly logging ---------------------------------------------------------------------


def _record(level: int, msg: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("edge.daemon", level, __file__, 1, msg, None, exc_info)


def test_journal_lines_carry_the_priority_and_one_event_is_one_line() -> None:
    fmt = JournalFormatter()
    assert fmt.format(_record(logging.INFO, "camera a: connected")) == "<6>edge.daemon: camera a: connected"
    assert fmt.format(_record(logging.WARNING, "x")).startswith("<4>")
    assert fmt.format(_record(logging.DEBUG, "x")).startswith("<7>")
    assert fmt.format(_record(logging.CRITICAL, "x")).startswith("<2>")
    assert fmt.format(_record(logging.ERROR, "bad config:\n  a.yaml:1: x\n  a.yaml:2: y")) == (
        "<3>edge.daemon: bad config: | a.yaml:1: x | a.yaml:2: y")
    try:
        raise ValueError("boom")
    except ValueError as exc:
        line = fmt.format(_record(logging.ERROR, "analysis failed", exc))
    assert "\n" not in line
    where = r"\(at test_edge_systemd\.py:\d+ in test_journal_lines_carry_the_priority_and_one_event_is_one_line\)"
    assert re.fullmatch(rf"<3>edge\.daemon: analysis failed: ValueError: boom {where}", line), line


def test_journal_format_only_when_stderr_is_the_journal_stream(tmp_path: Path) -> None:
    with open(tmp_path / "stderr", "w") as stream, open(tmp_path / "other", "w") as other:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert journal_stream_is(stream, env)
        assert not journal_stream_is(other, env)  # e.g. stderr redirected in a child
        assert not journal_stream_is(stream, {})
        assert not journal_stream_is(stream, {"JOURNAL_STREAM": "garbage"})
        assert not configure_logging("INFO", stream)  # not in this environment
    logging.basicConfig(force=True)  # leave pytest's logging as it was


# -- the daemon as systemd runs it -----------------------------------------------------------------


@pytest.mark.e2e
def test_daemon_speaks_notify_pets_watchdog_and_drains_on_sigterm(
    tmp_path: Path, mosquitto: Mosquitto, rtsp_server: Callable[..., Any],
    abstract_notify_socket: NotifySocket,
) -> None:
    clip = demo_camera_clip(tmp_path / "street.mp4")
    camera = rtsp_server({"cam-1": clip, "cam-2": clip})
    config, raw = config_from_example(tmp_path, [camera.url("cam-1"), camera.url("cam-2")], mosquitto.port,
                                      analysis_interval_seconds=1.0, drain_timeout_seconds=3.0)
    watcher = StatusWatcher(mosquitto.port, raw["device_id"])
    notify_sock = abstract_notify_socket

    def field(key: str, value: str | None = None) -> list[int]:
        """Indexes of the datagrams received so far that carry KEY (=value)."""
        return [i for i, m in enumerate(notify_sock.poll()) if key in m and value in (None, m[key])]

    with open(tmp_path / "journal", "w") as journal:
        st = os.fstat(journal.fileno())
        proc = start_edge(config, journal, {
            "NOTIFY_SOCKET": notify_sock.address, "WATCHDOG_USEC": "2000000",
            "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        try:
            wait_for(lambda: field("READY"), 60, "READY=1")
            wait_for(lambda: field("STATUS") and field("WATCHDOG"), 30, "STATUS= and WATCHDOG=1")
            wait_for(lambda: any(re.match(r"cameras 2/2 connected; broker connected", m.get("STATUS", ""))
                                 for m in notify_sock.poll()), 60, "a STATUS with both cameras and the broker")
            watcher.wait_for_state("online", 30)
            pets_before = len(field("WATCHDOG"))
            wait_for(lambda: len(field("WATCHDOG")) >= pets_before + 2, 30, "the watchdog petted on and on")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    messages = notify_sock.poll()
    ready, stopping = field("READY", "1")[0], field("STOPPING", "1")
    assert ready == 0 and len(stopping) == 1
    assert ready < field("STATUS")[0] < field("WATCHDOG")[0] < stopping[0]
    assert "draining the spool" in messages[stopping[0]]["STATUS"]
    watcher.wait_for_state("offline", 10)
    watcher.stop()
    lines = (tmp_path / "journal").read_text().splitlines()
    assert lines and all(re.match(r"<[2-7]>[a-z_.]+: ", line) for line in lines), lines
    assert any(line.startswith("<6>edge.cli: stopping (SIGTERM): draining the spool") for line in lines)


@pytest.mark.e2e
def test_run_with_a_bad_config_exits_2_with_one_journal_line_per_error(tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text("device_id: box-1\nsite: s\nkey_file: nope.key\ncameras: []\nbrokr: {}\n")
    with open(tmp_path / "journal", "w") as journal:
        st = os.fstat(journal.fileno())
        proc = start_edge(config, journal, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert proc.wait(timeout=60) == 2
    lines = (tmp_path / "journal").read_text().splitlines()
    assert [line.split(": ")[3] for line in lines] == ["key_file", "cameras", "brokr"]
    assert all(line.startswith(f"<3>edge.cli: config: {config}:") for line in lines)


# -- the unit files --------------------------------------------------------------------------------


def unit_settings(name: str) -> dict[str, list[str]]:
    """KEY -> values of a unit file (a key may repeat, e.g. SystemCallFilter)."""
    out: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_edge_unit_is_notify_with_watchdog_state_and_hardening() -> None:
    s = unit_settings("garbagewatch-edge.service")
    expected = {
        "Type": "notify", "NotifyAccess": "main", "WatchdogSec": "30", "Restart": "always", "RestartSec": "2",
        "StateDirectory": "garbagewatch", "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "NoNewPrivileges": "yes", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "RestartPreventExitStatus": "2",
    }
    assert {k: s.get(k, ["(missing)"])[-1] for k in expected} == expected
    assert "@system-service" in s["SystemCallFilter"] and "MemoryMax" in s
    assert s["ExecStart"] == [f"{INSTALLED_EXEC} edge run --config /etc/garbagewatch/edge.yaml"]
    # The spool and key the example config names are in the StateDirectory systemd makes writable.
    state = Path("/var/lib") / s["StateDirectory"][0]
    config = load_edge_config(REPO / "configs" / "edge.example.yaml")
    assert config.key_file.parent == state and config.spool.dir.parent == state
    # A stop drains for drain_timeout_seconds, then stops the threads: systemd must wait for it.
    assert int(s["TimeoutStopSec"][0]) >= config.drain_timeout_seconds + 40


def test_central_unit_is_simple_and_hardened() -> None:
    s = unit_settings("garbagewatch-central.service")
    assert (s["Type"], s["DynamicUser"], s["ProtectSystem"], s["Restart"]) == (
        ["simple"], ["yes"], ["strict"], ["always"])
    assert "WatchdogSec" not in s  # the central does not pet a watchdog
    assert s["ExecStart"] == [f"{INSTALLED_EXEC} central run --config /etc/garbagewatch/central.yaml"]


@pytest.mark.parametrize("unit", ["garbagewatch-edge.service", "garbagewatch-central.service"])
def test_systemd_analyze_verify_and_security(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (it is on any systemd box)")
    # verify checks that ExecStart's program exists: point it at this interpreter, change nothing else.
    text = (UNITS / unit).read_text().replace(INSTALLED_EXEC, f"{sys.executable} -m garbagewatch.cli")
    (tmp_path / unit).write_text(text)
    result = subprocess.run([analyze, "verify", f"./{unit}"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    about_ours = [line for line in (result.stdout + result.stderr).splitlines() if unit in line]
    assert result.returncode == 0 and about_ours == [], result.stdout + result.stderr
    security = subprocess.run([analyze, "security", "--offline=yes", "--threshold=20", f"./{unit}"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
    if "--offline" in security.stderr:
        pytest.skip(f"systemd-analyze security --offline needs systemd >= 250: {security.stderr.strip()}")
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    assert security.returncode == 0 and score is not None, security.stdout + security.stderr
    assert float(score.group(1)) <= 2.0, security.stdout
