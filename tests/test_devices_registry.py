"""The device registry on a real SQLite file: enrolment, rotation, revocation, the config's keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlite_utils import Database

import wire
from central.config import DeviceConfig
from central.devices import CONFIG_REMOVED, DeviceRegistry, EnrolmentError
from central.store.database import open_database


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "garbagewatch.db")


@pytest.fixture
def registry(db: Database) -> DeviceRegistry:
    return DeviceRegistry(db, FakeClock())


def test_an_enrolled_key_is_trusted_for_its_device_and_site(registry: DeviceRegistry, db: Database) -> None:
    key = wire.DeviceKey.generate()
    assert registry.trust("box-1") is None
    enrolled = registry.enroll("box-1", key.public, site="site-a")
    assert (enrolled.key_id, enrolled.site, enrolled.source, enrolled.revoked) == (key.key_id, "site-a", "cli", False)
    trust = registry.trust("box-1")
    assert trust is not None and trust.key(key.key_id) == enrolled
    assert trust.allows_site("site-a") and not trust.allows_site("site-b")
    assert trust.key("ed25519:" + "0" * 32) is None
    # The devices table (status, stats) has the device too.
    assert db.table("devices").get("box-1")["key_id"] == key.key_id


def test_enrolling_the_same_key_again_is_harmless_and_may_change_the_site(registry: DeviceRegistry) -> None:
    key = wire.DeviceKey.generate()
    first = registry.enroll("box-1", key.public, site="site-a")
    again = registry.enroll("box-1", key.public, site="site-b")
    assert again.enrolled_at == first.enrolled_at and again.site == "site-b"
    assert len(registry.all_keys()) == 1


def test_one_key_belongs_to_one_device(registry: DeviceRegistry) -> None:
    key = wire.DeviceKey.generate()
    registry.enroll("box-1", key.public)
    with pytest.raises(EnrolmentError, match="already enrolled for device 'box-1'"):
        registry.enroll("box-2", key.public)
    assert registry.trust("box-2") is None


@pytest.mark.parametrize(("device", "site"), [("Box 1", None), ("../x", None), ("box-1", "site/a"), ("central", None)])
def test_bad_or_reserved_ids_are_refused(registry: DeviceRegistry, device: str, site: str | None) -> None:
    with pytest.raises(EnrolmentError):
        registry.enroll(device, wire.DeviceKey.generate().public, site=site)
    assert registry.all_keys() == []


def test_rotation_overlaps_two_keys_until_the_old_one_is_revoked(registry: DeviceRegistry) -> None:
    old, new = wire.DeviceKey.generate(), wire.DeviceKey.generate()
    registry.enroll("box-1", old.public)
    registry.enroll("box-1", new.public)
    trust = registry.trust("box-1")
    assert trust is not None and {k.key_id for k in trust.active_keys} == {old.key_id, new.key_id}
    revoked = registry.revoke("box-1", "rotated", key_id=old.key_id)
    assert [k.key_id for k in revoked] == [old.key_id] and revoked[0].reason == "rotated"
    trust = registry.trust("box-1")
    assert trust is not None and [k.key_id for k in trust.active_keys] == [new.key_id]
    assert not trust.revoked
    old_row = trust.key(old.key_id)
    assert old_row is not None and old_row.revoked and old_row.revoked_at is not None


def test_revoking_a_device_revokes_every_key_for_good(registry: DeviceRegistry) -> None:
    k1, k2 = wire.DeviceKey.generate(), wire.DeviceKey.generate()
    registry.enroll("box-1", k1.public)
    registry.enroll("box-1", k2.public)
    assert len(registry.revoke("box-1", "  stolen\nfrom the pole ")) == 2
    trust = registry.trust("box-1")
    assert trust is not None and trust.revoked and not trust.allows_site("site-a")
    assert {k.reason for k in trust.keys} == {"stolen from the pole"}
    with pytest.raises(EnrolmentError, match="never trusted again"):
        registry.enroll("box-1", k1.public)
    with pytest.raises(EnrolmentError, match="no active key to revoke"):
        registry.revoke("box-1", "again")


def test_revoking_what_is_not_there_is_refused(registry: DeviceRegistry) -> None:
    with pytest.raises(EnrolmentError, match="no enrolled key"):
        registry.revoke("box-9", "x")
    registry.enroll("box-1", wire.DeviceKey.generate().public)
    with pytest.raises(EnrolmentError, match="no active key ed25519:"):
        registry.revoke("box-1", "x", key_id="ed25519:" + "1" * 32)


def test_a_second_connection_sees_a_revocation_at_once(tmp_path: Path) -> None:
    """The ingest and the CLI hold separate connections: no cache may hide a revocation."""
    path = tmp_path / "garbagewatch.db"
    ingest, cli = DeviceRegistry(open_database(path)), DeviceRegistry(open_database(path))
    key = wire.DeviceKey.generate()
    cli.enroll("box-1", key.public)
    trust = ingest.trust("box-1")
    assert trust is not None and not trust.revoked
    cli.revoke("box-1", "compromised")
    trust = ingest.trust("box-1")
    assert trust is not None and trust.revoked


def test_the_configs_keys_are_enrolled_and_follow_the_config(registry: DeviceRegistry) -> None:
    k1, k2 = wire.DeviceKey.generate(), wire.DeviceKey.generate()
    d1 = DeviceConfig.for_key("box-1", k1.public, site="site-a")
    d2 = DeviceConfig.for_key("box-2", k2.public)
    registry.sync_config([d1, d2])
    assert {(k.device_id, k.source, k.site) for k in registry.all_keys()} == {
        ("box-1", "config", "site-a"),
        ("box-2", "config", None),
    }
    registry.sync_config([d1])  # box-2 taken out of the file: no longer trusted
    t2 = registry.trust("box-2")
    assert t2 is not None and t2.revoked and t2.keys[0].reason == CONFIG_REMOVED
    registry.sync_config([d1, d2])  # and back in: trusted again
    t2 = registry.trust("box-2")
    assert t2 is not None and not t2.revoked


def test_an_operators_revocation_outlasts_the_config(
    registry: DeviceRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    key = wire.DeviceKey.generate()
    d1 = DeviceConfig.for_key("box-1", key.public)
    registry.sync_config([d1])
    registry.revoke("box-1", "compromised")
    with caplog.at_level(logging.WARNING, logger="central.devices"):
        registry.sync_config([d1])  # the service still starts
    trust = registry.trust("box-1")
    assert trust is not None and trust.revoked and trust.keys[0].reason == "compromised"
    assert any("config device box-1 is not trusted" in r.message for r in caplog.records)


def test_a_key_enrolled_by_an_operator_is_not_revoked_by_the_config(registry: DeviceRegistry) -> None:
    cli_key, cfg_key = wire.DeviceKey.generate(), wire.DeviceKey.generate()
    registry.enroll("box-1", cli_key.public)
    registry.sync_config([DeviceConfig.for_key("box-2", cfg_key.public)])
    registry.sync_config([])
    t1, t2 = registry.trust("box-1"), registry.trust("box-2")
    assert t1 is not None and not t1.revoked
    assert t2 is not None and t2.revoked


def test_making_a_registry_inside_a_callers_transaction_leaves_it_open(db: Database) -> None:
    """Other modules make one where they need it, maybe in the middle of their own transaction."""
    db.conn.execute("BEGIN")
    db.conn.execute("CREATE TABLE scratch (x INTEGER)")
    DeviceRegistry(db)
    assert db.conn.in_transaction
    db.conn.execute("ROLLBACK")
    assert "scratch" not in db.table_names()
