"""The devices table (who is configured, online, what they last reported) and each camera's health.

A camera is offline from the moment its box says so (status 'offline', or the broker's last
will) or its stats say its stream is not connected, until it is connected again; `cameras.since`
is when the current state began, which the sweep compares with escalation.camera_offline_s.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from central.config import DeviceConfig
from central.timefmt import utc_iso
from wire.errors import WireError
from wire.ids import check_id
from wire.messages import Availability, Stats

__all__ = ["camera_health", "record_stats", "record_status", "sync_devices"]

log = logging.getLogger("central.store")

# State changes restart `since` and re-arm the offline notice; a repeat of the same state does not.
_UPSERT_CAMERA = (
    "INSERT INTO cameras (device_id, camera, online, since, offline_notified, updated_at) VALUES (?, ?, ?, ?, 0, ?)"
    " ON CONFLICT (device_id, camera) DO UPDATE SET"
    " since = CASE WHEN online != excluded.online THEN excluded.since ELSE since END,"
    " offline_notified = CASE WHEN online != excluded.online THEN 0 ELSE offline_notified END,"
    " online = excluded.online, updated_at = excluded.updated_at"
)


def sync_devices(db: Database, devices: Iterable[DeviceConfig]) -> None:
    """Make sure every configured device has a row, with its current site and key id."""
    with db.atomic():
        for d in devices:
            db.execute(
                "INSERT INTO devices (device_id, site, key_id) VALUES (?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET site = excluded.site, key_id = excluded.key_id",
                [d.device_id, d.site, d.key_id],
            )


def _camera_ids(device_id: str, names: Iterable[str]) -> list[str]:
    good = []
    for name in names:
        try:
            good.append(check_id(name, "camera"))
        except WireError as exc:
            log.warning("device %s reported a camera name that is not an id, ignored: %s", device_id, exc)
    return good


def _set_cameras(db: Database, device_id: str, states: Iterable[tuple[str, bool]], now: float) -> None:
    stamp = utc_iso(now)
    db.conn.executemany(_UPSERT_CAMERA, [(device_id, cam, int(up), now, stamp) for cam, up in states])


def record_status(db: Database, device_id: str, status: Availability, now: float) -> None:
    with db.atomic():
        db.execute(
            "UPDATE devices SET online = ?, last_seen = ?, version = ?, cameras = ? WHERE device_id = ?",
            [int(status.state == "online"), utc_iso(now), status.version, json.dumps(status.cameras), device_id],
        )
        if status.state == "offline":
            # Every camera of the box, including those only known from earlier reports.
            known = [r[0] for r in db.execute("SELECT camera FROM cameras WHERE device_id = ?", [device_id])]
            _set_cameras(db, device_id, [(c, False) for c in {*known, *_camera_ids(device_id, status.cameras)}], now)
        else:
            _set_cameras(db, device_id, [(c, True) for c in _camera_ids(device_id, status.cameras)], now)


def record_stats(db: Database, device_id: str, stats: Stats, now: float) -> None:
    with db.atomic():
        db.execute(
            "UPDATE devices SET last_seen = ?, last_stats = ? WHERE device_id = ?",
            [utc_iso(now), stats.model_dump_json(), device_id],
        )
        names = set(_camera_ids(device_id, stats.cameras))
        states = [
            (cam, values["connected"] >= 0.5)
            for cam, values in stats.cameras.items()
            if cam in names and "connected" in values
        ]
        _set_cameras(db, device_id, states, now)


def camera_health(db: Database, device_id: str | None = None) -> list[dict[str, Any]]:
    """Every known camera: online, since when (epoch seconds), whether its outage was reported."""
    if device_id is None:
        return list(db.query("SELECT * FROM cameras ORDER BY device_id, camera"))
    return list(db.query("SELECT * FROM cameras WHERE device_id = ? ORDER BY camera", [device_id]))
