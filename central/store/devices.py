"""The devices table: who is configured, who is online, what they last reported."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlite_utils import Database

from central.config import DeviceConfig
from central.timefmt import utc_iso
from wire.messages import Availability, Stats

__all__ = ["record_stats", "record_status", "sync_devices"]


def sync_devices(db: Database, devices: Iterable[DeviceConfig]) -> None:
    """Make sure every configured device has a row, with its current site and key id."""
    with db.atomic():
        for d in devices:
            db.execute(
                "INSERT INTO devices (device_id, site, key_id) VALUES (?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET site = excluded.site, key_id = excluded.key_id",
                [d.device_id, d.site, d.key_id],
            )


def record_status(db: Database, device_id: str, status: Availability, now: float) -> None:
    db.execute(
        "UPDATE devices SET online = ?, last_seen = ?, version = ?, cameras = ? WHERE device_id = ?",
        [int(status.state == "online"), utc_iso(now), status.version, json.dumps(status.cameras), device_id],
    )


def record_stats(db: Database, device_id: str, stats: Stats, now: float) -> None:
    db.execute(
        "UPDATE devices SET last_seen = ?, last_stats = ? WHERE device_id = ?",
        [utc_iso(now), stats.model_dump_json(), device_id],
    )
