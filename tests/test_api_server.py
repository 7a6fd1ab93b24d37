"""The API over real HTTP (uvicorn), and the CLI that manages users and tokens and serves it."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from central.api.commands import ApiStack
from central.auth import configure_hashing
from central.cli import main as central_main
from central.config import CentralConfig
from garbagewatch.devtools.mosquitto import Mosquitto
from garbagewatch.devtools.ports import free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def cheap_hashing() -> Iterator[None]:
    configure_hashing(time_cost=1, memory_cost_kib=8, parallelism=1)
    yield
    configure_hashing()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "central.yaml"
    path.write_text(f"data_dir: {tmp_path / 'central'}\n")
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str, stdin: str = "") -> tuple[int, str, str]:
    capsys.readouterr()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        rc = central_main(list(args))
    finally:
        sys.stdin = old
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_users_are_managed_from_the_cli_and_every_change_is_audited(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = ["--config", str(config_file)]
    rc, out, _ = _cli(
        capsys,
        "users",
        "add",
        "alice",
        "--role",
        "supervisor",
        "--site",
        "site-a",
        "--password-stdin",
        *cfg,
        stdin="a long enough password\n",
    )
    assert rc == 0 and "user alice added: supervisor, sites site-a" in out
    rc, _, err = _cli(capsys, "users", "add", "bob", "--role", "auditor", "--password-stdin", *cfg, stdin="short\n")
    assert rc == 1 and "at least 10 characters" in err
    assert _cli(capsys, "users", "sites", "alice", "site-a", "site-b", *cfg)[0] == 0
    assert _cli(capsys, "users", "disable", "alice", "--reason", "on leave", *cfg)[0] == 0
    rc, out, _ = _cli(capsys, "users", "list", *cfg)
    assert "alice" in out and "disabled" in out and "site-a,site-b" in out
    rc, _, err = _cli(capsys, "verify-audit", *cfg)
    # No central has run here yet, so there is no signing key to check against: "cannot check" (2).
    assert rc == 2 and "without its public key" in err


def test_a_token_made_on_the_cli_opens_the_api_over_http_until_it_is_revoked(
    config_file: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = ["--config", str(config_file)]
    rc, out, err = _cli(capsys, "tokens", "create", "hotline-12345", "--role", "integration", *cfg)
    assert rc == 0 and "shown only now" in err
    token = out.strip()
    assert token.startswith("gwt_") and token not in (tmp_path / "central" / "garbagewatch.db").read_bytes().decode(
        "latin-1"
    )
    stack = ApiStack(CentralConfig(data_dir=tmp_path / "central"), host="127.0.0.1", port=0, publish_checkpoints=False)
    stack.start()
    try:
        assert stack.server is not None
        base = stack.server.url
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        me = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["actor"] == "token:hotline-12345"
        services = httpx.get(f"{base}/open311/v2/services.json", params={"api_key": token})
        assert services.json()[0]["service_code"] == "0102"
        assert _cli(capsys, "tokens", "revoke", "hotline-12345", "--reason", "rotated", *cfg)[0] == 0
        assert httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        stack.stop()
    rc, out, _ = _cli(capsys, "tokens", "list", *cfg)
    assert "hotline-12345" in out and "revoked" in out and token not in out


def test_serve_runs_until_sigterm_and_leaves_a_signed_checkpoint(config_file: Path, tmp_path: Path) -> None:
    port = free_port()
    # No broker listens on the configured port: the API must serve regardless, and the checkpoint
    # still goes to the export file.
    config_file.write_text(config_file.read_text() + f"broker:\n  port: {free_port()}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "serve", "--config", str(config_file), "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/orders").status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
    assert (tmp_path / "central" / "audit-checkpoints.jsonl").read_text().count("\n") >= 1
    assert "API listening on http://127.0.0.1:" in out.decode()


@pytest.mark.e2e
def test_run_serves_the_api_beside_ingest(config_file: Path, tmp_path: Path, mosquitto: Mosquitto) -> None:
    port = free_port()
    config_file.write_text(config_file.read_text() + f"broker:\n  port: {mosquitto.port}\n  client_id: central-run\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "central", "run", "--config", str(config_file), "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "central started" in text and "API listening on" in text
    assert (tmp_path / "central" / "audit-key.pem").exists()
