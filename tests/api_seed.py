"""Test helper (not a test module): a central data directory with real camera orders in it.

The orders are filed the production way: a CentralService on a real Mosquitto receives signed
bundles from a test edge. Tests copy the directory (`clone`), so each starts from the same state.
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central_edge import TestEdge, make_bundle
from fastapi.testclient import TestClient

import wire
from central import BrokerConfig, CentralConfig, CentralService, DeviceConfig
from central.api.app import create_app
from central.api.context import ApiContext, ensure_api_schema
from central.api.settings import ApiSettings
from central.audit.chain import AuditTrail
from central.auth.tokens import create_token
from central.store.database import open_database
from garbagewatch.devtools.mosquitto import Mosquitto

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@dataclass(frozen=True)
class SeededOrder:
    id: str
    site: str
    snapshot_sha256: str
    clip_sha256: str


@dataclass(frozen=True)
class Seed:
    data_dir: Path
    orders: dict[str, SeededOrder]  # by site


def seed_camera_orders(workdir: Path) -> Seed:
    """One open order at site-a (box-1) and one at site-b (box-2), with their clip and snapshot."""
    keys = {"box-1": wire.DeviceKey.generate(), "box-2": wire.DeviceKey.generate()}
    broker = Mosquitto(workdir / "mosquitto").start()
    data_dir = workdir / "central"
    config = CentralConfig(
        data_dir=data_dir,
        broker=BrokerConfig(port=broker.port, client_id="central-seed"),
        devices=[
            DeviceConfig.for_key("box-1", keys["box-1"].public, site="site-a"),
            DeviceConfig.for_key("box-2", keys["box-2"].public, site="site-b"),
        ],
    )
    orders: dict[str, SeededOrder] = {}
    db = open_database(config.db_path)
    ensure_api_schema(db)
    db.close()
    # The audit trail is the service's audit hook, as in `garbagewatch central run`.
    service = CentralService(config, audit_for=AuditTrail).start()
    try:
        assert service.wait_ready(15), "the seeding central did not connect"
        for device, site in (("box-1", "site-a"), ("box-2", "site-b")):
            edge = TestEdge(broker.port, device=device)
            try:
                bundle = make_bundle(keys[device], device=device, site=site, at=time.time())
                edge.send_bundle(bundle)
                ack = edge.wait_ack(bundle.event_id, "ok", timeout=30)
            finally:
                edge.close()
            by_role = {f.role: f.sha256 for f in bundle.files}
            orders[site] = SeededOrder(ack["work_order"], site, by_role["snapshot"], by_role["clip"])
    finally:
        service.stop()
        broker.kill()
    return Seed(data_dir, orders)


def clone(seed: Seed, dest: Path) -> Path:
    shutil.copytree(seed.data_dir, dest)
    return dest


def make_token(data_dir: Path, name: str, role: str, **kwargs: object) -> str:
    db = open_database(data_dir / "garbagewatch.db")
    try:
        _, text = create_token(
            db,
            name=name,
            role=role,
            actor="cli:test",
            audit=AuditTrail(db),
            now=time.time(),
            **kwargs,  # type: ignore[arg-type]
        )
    finally:
        db.close()
    return text


@dataclass
class Api:
    """The JSON API of a seeded copy, called as one of `tokens`' holders ('admin', 'sup_a', ...)."""

    client: TestClient
    data_dir: Path
    seed: Seed
    tokens: dict[str, str]

    def get(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kw)

    def post(self, who: str, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers={"Authorization": f"Bearer {self.tokens[who]}"}, **kw)

    def audit(self, action: str | None = None) -> list[dict[str, Any]]:
        """The audit rows (of `action` only, if given), oldest first."""
        conn = sqlite3.connect(self.data_dir / "garbagewatch.db")
        conn.row_factory = sqlite3.Row
        try:
            sql, params = "SELECT * FROM audit_log ORDER BY seq", []
            if action is not None:
                sql, params = "SELECT * FROM audit_log WHERE action = ? ORDER BY seq", [action]
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()


@contextmanager
def api_on_copy(seed: Seed, data_dir: Path) -> Iterator[tuple[TestClient, Path, dict[str, str]]]:
    """The app on a fresh copy of the seed at `data_dir`, with a token per role: (client, data_dir, tokens)."""
    clone(seed, data_dir)
    tokens = {
        "admin": make_token(data_dir, "admin-1", "admin"),
        "sup_a": make_token(data_dir, "sup-a", "supervisor", sites=["site-a"]),
        "auditor": make_token(data_dir, "auditor-1", "auditor"),
        "hotline": make_token(data_dir, "hotline", "integration"),
    }
    ctx = ApiContext(CentralConfig(data_dir=data_dir), ApiSettings())
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield client, data_dir, tokens
