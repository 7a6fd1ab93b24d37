"""Signed checkpoints published retained on a real Mosquitto, read back by verify-audit --broker."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from central_edge import wait_for

from central.api.context import ensure_api_schema
from central.audit import CHECKPOINT_FILE, CHECKPOINT_TOPIC, AuditTrail, CheckpointError, CheckpointPublisher
from central.audit.checkpoints import load_public_key_of
from central.audit.fetch import fetch_retained_checkpoint
from central.cli import main as central_main
from central.config import BrokerConfig
from central.store.database import open_database
from garbagewatch.devtools.mosquitto import Mosquitto

pytestmark = pytest.mark.e2e


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "central"
    db = open_database(d / "garbagewatch.db")
    ensure_api_schema(db)
    db.close()
    return d


@pytest.fixture
def broker(mosquitto: Mosquitto) -> BrokerConfig:
    return BrokerConfig(port=mosquitto.port, client_id="central-test", reconnect_min_s=1, reconnect_max_s=1)


@pytest.fixture
def publisher(data_dir: Path, broker: BrokerConfig) -> Iterator[CheckpointPublisher]:
    # A long interval: the test decides when checkpoints are issued (checkpoint_now).
    pub = CheckpointPublisher(db_path=data_dir / "garbagewatch.db", data_dir=data_dir, broker=broker, interval_s=3600)
    yield pub.start()
    pub.stop()


def _append(data_dir: Path, n: int) -> None:
    db = open_database(data_dir / "garbagewatch.db")
    trail = AuditTrail(db)
    for i in range(n):
        trail("system:ingest", "order.register", f"order:{i}", "", {"i": i})
    db.close()


def _retained_count(broker: BrokerConfig) -> int:
    try:
        return fetch_retained_checkpoint(broker, timeout_s=2).count
    except CheckpointError:
        return -1


def test_the_head_is_published_retained_and_signed(
    publisher: CheckpointPublisher, data_dir: Path, broker: BrokerConfig
) -> None:
    wait_for(publisher.published.is_set, 10, "the first checkpoint published")
    _append(data_dir, 3)
    cp = publisher.checkpoint_now()
    assert cp is not None and cp.count == 3
    assert publisher.checkpoint_now() is None, "an unchanged head is not signed again"
    wait_for(lambda: _retained_count(broker) == 3, 15, "the retained checkpoint to cover 3 rows")
    got = fetch_retained_checkpoint(broker, topic=CHECKPOINT_TOPIC)
    assert got == cp
    assert got.verify(load_public_key_of(data_dir / "audit-key.pub.pem"))
    lines = (data_dir / CHECKPOINT_FILE).read_text().splitlines()
    assert len(lines) == 2 and '"count": 3' in lines[-1]


def test_a_checkpoint_issued_while_the_broker_is_down_is_published_on_reconnect(
    publisher: CheckpointPublisher, data_dir: Path, broker: BrokerConfig, mosquitto: Mosquitto
) -> None:
    wait_for(publisher.published.is_set, 10, "the first checkpoint published")
    mosquitto.kill()
    _append(data_dir, 4)
    cp = publisher.checkpoint_now()
    assert cp is not None and cp.count == 4
    mosquitto.start()
    wait_for(lambda: _retained_count(broker) == 4, 30, "the checkpoint re-published after the broker came back")


def test_verify_audit_with_the_broker_finds_a_tail_truncated_everywhere_on_the_server(
    publisher: CheckpointPublisher,
    data_dir: Path,
    broker: BrokerConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _append(data_dir, 8)
    publisher.checkpoint_now()
    wait_for(lambda: _retained_count(broker) == 8, 15, "the retained checkpoint to cover 8 rows")
    config = tmp_path / "central.yaml"
    config.write_text(f"data_dir: {data_dir}\nbroker:\n  port: {broker.port}\n  client_id: verifier\n")
    assert central_main(["verify-audit", "--config", str(config), "--broker"]) == 0
    assert "audit trail OK: 8 rows" in capsys.readouterr().out

    conn = sqlite3.connect(data_dir / "garbagewatch.db")
    with conn:
        conn.execute("DELETE FROM audit_log WHERE seq > 5")
        conn.execute("DELETE FROM audit_checkpoints")
    conn.close()
    (data_dir / CHECKPOINT_FILE).write_text("")
    # The running central does not sign the damaged chain over the witness...
    assert publisher.checkpoint_now() is None
    assert publisher.counters.get("audit_chain_broken") == 1
    # ...so the broker's retained copy still says 8 rows.
    assert central_main(["verify-audit", "--config", str(config), "--broker"]) == 1
    out = capsys.readouterr().out
    assert "the trail ends at row 5 but checkpoint" in out and "(mqtt, at" in out and "rows 6..8 are gone" in out
