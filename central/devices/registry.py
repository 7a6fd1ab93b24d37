"""Enrolled device keys: which Ed25519 keys the central trusts, for which device, and which it revoked.

One row per key in the `device_keys` table of the central's SQLite file. A device may hold several
active keys at once (a rotation overlaps the old and the new key until the old one is revoked).
Revocation is final: a revoked key is never trusted again, even if it is enrolled once more.

Keys listed in the config file are enrolled at startup (`sync_config`, source 'config'). A key the
config no longer lists is revoked with the reason CONFIG_REMOVED, and only such a key comes back
if the config lists it again; a revocation by an operator (`revoke`) stays.

The ingest looks a device up for every message (`trust`), so an enrolment or a revocation made by
the CLI in another process applies to the next message, without a restart. The lookups are
cached until SQLite's data_version says another connection committed something.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlite_utils import Database

from central.config import DeviceConfig
from central.store.devices import sync_devices
from central.store.transactions import immediate
from central.timefmt import Clock, system_clock, utc_iso
from wire.errors import WireError
from wire.ids import check_id
from wire.signing import fingerprint, public_key_from_pem, public_key_pem

__all__ = [
    "CONFIG_REMOVED",
    "RESERVED_DEVICE_IDS",
    "DeviceRegistry",
    "DeviceTrust",
    "EnrolledKey",
    "EnrolmentError",
    "KeySource",
]

log = logging.getLogger("central.devices")

KeySource = Literal["config", "cli"]

# The reason given to a config key that disappeared from the config file: the one revocation the
# config (or an operator's enrolment) may undo by listing the key again.
CONFIG_REMOVED = "removed from the config file"

# MQTT usernames with broker-wide rights (configs/mosquitto/acl): never a device's id.
RESERVED_DEVICE_IDS = frozenset({"central"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS device_keys (
    key_id TEXT PRIMARY KEY,          -- wire.signing.fingerprint: one key belongs to one device
    device_id TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    site TEXT,                        -- the only site this key may report for (NULL: any)
    source TEXT NOT NULL,             -- config | cli
    enrolled_at TEXT NOT NULL,
    revoked_at TEXT,
    reason TEXT                       -- why it was revoked
);
CREATE INDEX IF NOT EXISTS device_keys_by_device ON device_keys (device_id);
"""


class EnrolmentError(ValueError):
    """An enrolment or revocation the registry refuses; the text says why."""


@functools.lru_cache(maxsize=4096)
def _parse_key(pem: str) -> Ed25519PublicKey:
    return public_key_from_pem(pem)


@dataclass(frozen=True)
class EnrolledKey:
    device_id: str
    key_id: str
    public_key_pem: str
    site: str | None
    source: KeySource
    enrolled_at: str
    revoked_at: str | None = None
    reason: str | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> EnrolledKey:
        return cls(
            device_id=row["device_id"],
            key_id=row["key_id"],
            public_key_pem=row["public_key_pem"],
            site=row["site"],
            source=row["source"],
            enrolled_at=row["enrolled_at"],
            revoked_at=row["revoked_at"],
            reason=row["reason"],
        )

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return _parse_key(self.public_key_pem)


@dataclass(frozen=True)
class DeviceTrust:
    """Everything the ingest needs to know about one device: its keys, active and revoked."""

    device_id: str
    keys: tuple[EnrolledKey, ...]

    @classmethod
    def from_config(cls, device: DeviceConfig) -> DeviceTrust:
        """The trust a config entry alone gives (tests and tools that verify without a database)."""
        key = EnrolledKey(
            device_id=device.device_id,
            key_id=device.key_id,
            public_key_pem=public_key_pem(device.public_key),
            site=device.site,
            source="config",
            enrolled_at="",
        )
        return cls(device.device_id, (key,))

    def key(self, key_id: object) -> EnrolledKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    @property
    def active_keys(self) -> tuple[EnrolledKey, ...]:
        return tuple(k for k in self.keys if not k.revoked)

    @property
    def revoked(self) -> bool:
        """True when every key of the device is revoked."""
        return not self.active_keys

    def allows_site(self, site: str | None) -> bool:
        """Whether some active key may report for `site` (a key without a site may report for any)."""
        return any(k.site is None or k.site == site for k in self.active_keys)

    @property
    def sites(self) -> list[str]:
        return sorted({k.site for k in self.active_keys if k.site is not None})


class DeviceRegistry:
    """The enrolled keys in one database connection (use it from one thread at a time)."""

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock
        # One statement at a time: executescript() would first commit a transaction the caller has open.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.conn.execute(statement)
        self._cache: dict[str, DeviceTrust | None] = {}
        self._cache_version: int | None = None

    # -- reading -------------------------------------------------------------------------------

    def _rows(self, sql: str, params: list[Any]) -> list[EnrolledKey]:
        return [EnrolledKey.from_row(r) for r in self.db.query(sql, params)]

    def trust(self, device_id: str) -> DeviceTrust | None:
        """The device's keys, or None when it never had one enrolled."""
        # data_version changes when another connection commits (this one's writes clear the cache).
        version = int(self.db.conn.execute("PRAGMA data_version").fetchone()[0])
        if version != self._cache_version:
            self._cache.clear()
            self._cache_version = version
        if device_id in self._cache:
            return self._cache[device_id]
        keys = self._rows("SELECT * FROM device_keys WHERE device_id = ? ORDER BY enrolled_at, key_id", [device_id])
        found = DeviceTrust(device_id, tuple(keys)) if keys else None
        if len(self._cache) < 10_000:  # bounded: a flood of made-up device ids must not grow it
            self._cache[device_id] = found
        return found

    def all_keys(self) -> list[EnrolledKey]:
        """Every enrolled key, revoked ones included, by device then enrolment time."""
        return self._rows("SELECT * FROM device_keys ORDER BY device_id, enrolled_at, key_id", [])

    # -- writing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One IMMEDIATE transaction; the cache is dropped after it (this connection's own commits
        do not change data_version)."""
        try:
            with immediate(self.db):
                yield
        finally:
            self._cache.clear()

    def enroll(
        self, device_id: str, public_key: Ed25519PublicKey, *, site: str | None = None, source: KeySource = "cli"
    ) -> EnrolledKey:
        """Trust `public_key` for `device_id` (and only `site`, if given). Idempotent for the same key.

        Enrolling a key the device already holds updates its site. Refused: an invalid or reserved
        id, a key that belongs to another device, a key that was revoked.
        """
        try:
            check_id(device_id, "device id")
            if site is not None:
                check_id(site, "site")
        except WireError as exc:
            raise EnrolmentError(str(exc)) from None
        if device_id in RESERVED_DEVICE_IDS:
            raise EnrolmentError(f"{device_id!r} is the broker identity of the central, not a device id")
        key_id = fingerprint(public_key)
        # IMMEDIATE: this reads then writes, and the service writes from other connections meanwhile.
        with self._writing():
            existing = self._rows("SELECT * FROM device_keys WHERE key_id = ?", [key_id])
            if existing:
                old = existing[0]
                if old.device_id != device_id:
                    raise EnrolmentError(
                        f"key {key_id} is already enrolled for device {old.device_id!r}: "
                        "every device needs its own key (garbagewatch edge keygen)"
                    )
                if old.revoked and old.reason != CONFIG_REMOVED:
                    raise EnrolmentError(
                        f"key {key_id} of device {device_id!r} was revoked at {old.revoked_at} "
                        f"({old.reason}); a revoked key is never trusted again: make a new key"
                    )
                # An operator's enrolment takes the key out of the config's hands for good.
                self.db.execute(
                    "UPDATE device_keys SET site = ?, revoked_at = NULL, reason = NULL,"
                    " source = CASE WHEN ? = 'cli' THEN 'cli' ELSE source END WHERE key_id = ?",
                    [site, source, key_id],
                )
            else:
                self.db.table("device_keys").insert(
                    {
                        "key_id": key_id,
                        "device_id": device_id,
                        "public_key_pem": public_key_pem(public_key),
                        "site": site,
                        "source": source,
                        "enrolled_at": utc_iso(self.clock()),
                        "revoked_at": None,
                        "reason": None,
                    }
                )
                log.info("enrolled key %s for device %s (site %s, from the %s)", key_id, device_id, site, source)
            # The devices table (status, stats) keeps a row per device the central trusts.
            sync_devices(self.db, [DeviceConfig.for_key(device_id, public_key, site=site)])
        enrolled = self._rows("SELECT * FROM device_keys WHERE key_id = ?", [key_id])[0]
        return enrolled

    def revoke(self, device_id: str, reason: str, *, key_id: str | None = None) -> list[EnrolledKey]:
        """Revoke the device's active keys (or only `key_id`); return what was revoked.

        Refused when nothing active matches: an unknown device or key, or one already revoked.
        """
        reason = " ".join(reason.split()) or "revoked by an operator"
        with self._writing():
            trust = self.trust(device_id)
            if trust is None:
                raise EnrolmentError(f"device {device_id!r} has no enrolled key")
            targets = [k for k in trust.active_keys if key_id is None or k.key_id == key_id]
            if not targets:
                what = "key" if key_id is None else f"key {key_id}"
                raise EnrolmentError(f"device {device_id!r} has no active {what} to revoke")
            stamp = utc_iso(self.clock())
            for k in targets:
                self.db.execute(
                    "UPDATE device_keys SET revoked_at = ?, reason = ? WHERE key_id = ?", [stamp, reason, k.key_id]
                )
        for k in targets:
            log.warning("revoked key %s of device %s: %s", k.key_id, device_id, reason)
        return self._rows(
            f"SELECT * FROM device_keys WHERE key_id IN ({', '.join('?' for _ in targets)})",
            [k.key_id for k in targets],
        )

    def sync_config(self, devices: Iterable[DeviceConfig]) -> None:
        """Enrol the config file's keys; revoke (CONFIG_REMOVED) config keys it no longer lists.

        A config key an operator revoked stays revoked: logged, never an error, since the
        service must start anyway.
        """
        listed: set[str] = set()
        for d in devices:
            listed.add(d.key_id)
            try:
                self.enroll(d.device_id, d.public_key, site=d.site, source="config")
            except EnrolmentError as exc:
                log.warning("config device %s is not trusted: %s", d.device_id, exc)
        stale = [k for k in self.all_keys() if k.source == "config" and not k.revoked and k.key_id not in listed]
        for k in stale:
            self.revoke(k.device_id, CONFIG_REMOVED, key_id=k.key_id)
