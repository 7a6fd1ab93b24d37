"""Helpers for the case-flow tests: a config with a site and its people, signed-looking manifests, a clock.

Not a test module itself (the tests import it). Deadlines run on an every-day, all-day calendar
here so the arithmetic in the tests is plain seconds; the working-hours tests cover calendars.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlite_utils import Database

import wire
from central.caseflow.flow import CaseFlow
from central.caseflow.hooks import order_subjects
from central.config import (
    CameraPlaceConfig,
    CentralConfig,
    ChannelConfig,
    CityConfig,
    EscalationConfig,
    LadderStepConfig,
    NotifyConfig,
    PersonConfig,
    SiteConfig,
    WorkOrderConfig,
)
from central.store import Filing, immediate
from central.timefmt import utc_iso
from wire.signing import canonical_json

T0 = 1_795_000_000.0  # 2026-11-18T11:06:40Z
HOUR = 3600.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def person(pid: str, port: int = 9, attach: bool = False) -> PersonConfig:
    return PersonConfig(id=pid, channels=[ChannelConfig(url=f"json://127.0.0.1:{port}/{pid}", attach_snapshot=attach)])


def make_config(tmp_path: Path, **overrides: Any) -> CentralConfig:
    """site-a: responsible zhang (may get photos), supervisor li, district lead wang; 4 h, every hour counts."""
    settings: dict[str, Any] = {
        "data_dir": tmp_path / "central",
        "cities": [CityConfig(id="default", office_hours=[], holidays="every_day")],
        "sites": [
            SiteConfig(
                id="site-a",
                roles={"responsible": ["zhang"], "supervisor": ["li"], "district_lead": ["wang"]},
                address="Nanjing Road",
                cameras={"cam-1": CameraPlaceConfig(lat=31.2304, lon=121.4737, address="Nanjing Road 1")},
            )
        ],
        "notify": NotifyConfig(
            people=[person("zhang", attach=True), person("li"), person("wang"), person("zhao")],
            console_url="http://console.test",
            group_s=0,
            repeat_s=0,
        ),
        "work_orders": WorkOrderConfig(reopen_window_s=HOUR, resolve_grace_s=60),
        "escalation": EscalationConfig(
            ladder=[
                LadderStepConfig(role="responsible", after_s=0),
                LadderStepConfig(role="supervisor", after_s=600),
                LadderStepConfig(role="district_lead", after_s=1800),
            ],
            reminder_before_s=900,
            repeat_s=HOUR,
            camera_offline_s=600,
        ),
    }
    settings.update(overrides)
    return CentralConfig(**settings)


def manifest(
    event_id: str,
    kind: str = "confirmed",
    *,
    zone: str = "z1",
    at: float = T0,
    camera: str = "cam-1",
    site: str = "site-a",
    n: int = 1,
) -> wire.Manifest:
    def sha(role: str) -> str:
        return hashlib.sha256(f"{event_id}{kind}{at}{role}".encode()).hexdigest()

    roles = ["snapshot", "snapshot_boxes"] if kind != "cleared" else ["after_snapshot"]
    return wire.Manifest(
        event_id=event_id,
        kind=kind,  # type: ignore[arg-type]
        device_id="box-1",
        site=site,
        camera=camera,
        zone=zone,
        first_seen=utc_iso(at - 30),
        at=utc_iso(at),
        clock_synced=True,
        frame_size=(1280, 720),
        detections=[wire.DetectionRecord(class_name="bag", confidence=0.9, box=(0, 0, 5, 5))] * n,
        model=wire.ModelRef(name="m", sha256="0" * 64),
        files=[
            wire.FileRef(role=r, name=f"{r}.jpg", media_type="image/jpeg", size=1, sha256=sha(r))  # type: ignore[arg-type]
            for r in roles
        ],
    )


def file(flow: CaseFlow, db: Database, m: wire.Manifest, now: float | None = None) -> Filing:
    text = canonical_json(m.model_dump(mode="json")).decode()
    with immediate(db):  # as ingest does
        filing, _ = flow.file_event(
            db,
            m,
            manifest_json=text,
            signature="s" * 88,
            key_id="ed25519:x",
            received_at=flow.clock() if now is None else now,
        )
    return filing


def notices(db: Database, kind: str | None = None) -> list[tuple[str, str, str]]:
    """(recipient, subject, kind) of every queued notice, in order."""
    sql = "SELECT recipient, subject, kind FROM notification_items"
    rows = db.execute(sql + (" WHERE kind = ?" if kind else "") + " ORDER BY id", [kind] if kind else []).fetchall()
    return [(str(r), str(s), str(k)) for r, s, k in rows]


class AuditLog:
    """An audit hook that keeps what it heard."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, str, dict[str, Any]]] = []

    def __call__(self, actor: str, action: str, subject: str, reason: str, detail: dict[str, Any]) -> None:
        self.entries.append((actor, action, subject, reason, detail))

    def actions(self, order_id: str | None = None) -> list[str]:
        """What was heard, in order: all, or about one order (under either spelling of its subject, as
        every reader of the trail accepts: the escalation sweep still writes the bare id)."""
        return [a for _, a, s, _, _ in self.entries if order_id is None or s in order_subjects(order_id)]
