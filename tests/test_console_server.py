"""The console and the API as one app on a real uvicorn server: in-process, and `garbagewatch central serve`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from central.config import CentralConfig
from central.console import ConsoleSettings
from central.console.stack import ConsoleStack


def get(url: str) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def test_one_server_serves_the_console_and_the_api(tmp_path: Path) -> None:
    stack = ConsoleStack(
        CentralConfig(data_dir=tmp_path / "central"),
        host="127.0.0.1",
        port=0,
        settings=ConsoleSettings(cookie_secure="never"),
        publish_checkpoints=False,
    ).start()
    try:
        status, body, _ = get(f"{stack.url}/login")
        assert status == 200 and 'id="login"' in body
        status, _, headers = get(f"{stack.url}/orders")
        assert status == 303 and headers["location"] == "/login?next=%2Forders"
        status, body, _ = get(f"{stack.url}/api/v1/me")
        assert status == 401 and json.loads(body)["error"]["code"] == "unauthenticated"
        assert get(f"{stack.url}/healthz")[0] == 200
    finally:
        stack.stop()


def test_garbagewatch_central_serve(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = tmp_path / "central.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\nbroker:\n  port: 1\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "garbagewatch.cli", "central", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, body, _ = get(f"http://127.0.0.1:{port}/login")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        assert status == 200 and 'id="login-submit"' in body
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert proc.returncode == 0
