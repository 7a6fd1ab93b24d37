"""`garbagewatch central enroll-device | revoke-device | devices` on a real config file and database."""

from __future__ import annotations

from pathlib import Path

import pytest

import wire
from central.config import load_config
from central.devices import DeviceRegistry
from central.store.database import open_database
from garbagewatch.cli import main


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "central.yaml"
    path.write_text("data_dir: data\n")
    return path


def keypair(tmp_path: Path, name: str) -> tuple[wire.DeviceKey, Path]:
    key = wire.DeviceKey.generate()
    folder = tmp_path / name
    folder.mkdir()
    key.save(folder / "device.key", folder / "device.pub")
    return key, folder / "device.pub"


def registry(config_file: Path) -> DeviceRegistry:
    return DeviceRegistry(open_database(load_config(config_file).db_path))


def test_enroll_list_and_revoke(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, pub = keypair(tmp_path, "box-1")
    cfg = str(config_file)
    assert main(["central", "enroll-device", "--config", cfg, "--device", "box-1", "--public-key", str(pub),
                 "--site", "site-a"]) == 0  # fmt: skip
    assert f"enrolled box-1: key {key.key_id}, site site-a" in capsys.readouterr().out
    trust = registry(config_file).trust("box-1")
    assert trust is not None and trust.key(key.key_id) is not None and trust.allows_site("site-a")

    assert main(["central", "devices", "--config", cfg]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 2 and listing[1].split()[:5] == ["box-1", key.key_id, "site-a", "cli", listing[1].split()[4]]
    assert listing[1].endswith("active")

    assert main(["central", "revoke-device", "--config", cfg, "--device", "box-1", "--reason", "box stolen"]) == 0
    assert f"revoked box-1: key {key.key_id}" in capsys.readouterr().out
    trust = registry(config_file).trust("box-1")
    assert trust is not None and trust.revoked

    main(["central", "devices", "--config", cfg])
    assert "box stolen" in capsys.readouterr().out


def test_revoking_one_key_of_two(config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, old_pub = keypair(tmp_path, "old")
    new, new_pub = keypair(tmp_path, "new")
    cfg = str(config_file)
    for pub in (old_pub, new_pub):
        assert main(["central", "enroll-device", "--config", cfg, "--device", "box-1", "--public-key", str(pub)]) == 0
    assert main(["central", "revoke-device", "--config", cfg, "--device", "box-1", "--key-id", old.key_id]) == 0
    trust = registry(config_file).trust("box-1")
    assert trust is not None and [k.key_id for k in trust.active_keys] == [new.key_id]


def test_refusals_exit_non_zero_with_the_reason(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = str(config_file)
    _, pub = keypair(tmp_path, "box-1")
    assert main(["central", "revoke-device", "--config", cfg, "--device", "box-1"]) == 1
    assert "has no enrolled key" in capsys.readouterr().err
    assert main(["central", "enroll-device", "--config", cfg, "--device", "box-1", "--public-key", str(pub)]) == 0
    assert main(["central", "enroll-device", "--config", cfg, "--device", "box-2", "--public-key", str(pub)]) == 1
    assert "already enrolled for device 'box-1'" in capsys.readouterr().err
    not_a_key = tmp_path / "not-a-key.pub"
    not_a_key.write_text("hello\n")
    assert main(["central", "enroll-device", "--config", cfg, "--device", "box-3", "--public-key",
                 str(not_a_key)]) == 2  # fmt: skip
    assert "not-a-key.pub" in capsys.readouterr().err
    assert main(["central", "enroll-device", "--config", str(tmp_path / "missing.yaml"), "--device", "box-3",
                 "--public-key", str(pub)]) == 2  # fmt: skip
    assert "missing.yaml" in capsys.readouterr().err
