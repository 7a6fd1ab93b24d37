"""`garbagewatch central hold | holds | release-hold | retention-sweep` on a real data directory.

The orders were closed 100 days ago (on a hand clock) and the config keeps evidence 30 days; the
commands themselves run on the wall clock, as an operator's would.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from caseflow_fixtures import Clock
from retention_fixtures import DAY, Archive, jpeg_bytes

from central.cli import main as central_main
from central.store.database import open_database


def test_hold_holds_release_hold_and_a_dry_run_then_a_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = Archive.open(tmp_path, Clock(time.time() - 100 * DAY), 30)
    config = archive.config
    held, (held_sha,) = archive.camera_order("z1", jpeg_bytes("disputed"))
    free, (free_sha,) = archive.camera_order("z2", jpeg_bytes("settled"))
    archive.close(held)
    archive.close(free)
    archive.db.close()
    yaml = tmp_path / "central.yaml"
    yaml.write_text(f"data_dir: {config.data_dir}\nretention:\n  evidence_days: 30\n")

    def cli(*args: str) -> tuple[int, str, str]:
        code = central_main([args[0], "--config", str(yaml), *args[1:]])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = cli("hold", "--order", held, "--reason", "complaint 2026-118")
    assert code == 0 and f"legal hold placed on {held}" in out
    code, _, err = cli("hold", "--order", held, "--reason", "again")
    assert code == 1 and "release that hold first" in err
    code, out, _ = cli("holds")
    assert code == 0 and held in out and "complaint 2026-118" in out and free not in out

    code, out, _ = cli("retention-sweep", "--dry-run")
    assert code == 0 and "would purge 1 file(s)" in out and free_sha in out and held_sha not in out
    assert archive.store.has(free_sha)  # a dry run deletes nothing

    code, out, _ = cli("release-hold", "--order", held, "--reason", "case settled")
    assert code == 0 and f"legal hold on {held} released" in out
    code, _, err = cli("release-hold", "--order", held, "--reason", "again")
    assert code == 1 and "nothing to release" in err
    code, out, _ = cli("holds")
    assert held not in out

    code, out, _ = cli("retention-sweep")
    assert code == 0 and "purged 2 file(s)" in out
    assert not archive.store.has(free_sha) and not archive.store.has(held_sha)

    db = open_database(config.db_path)
    rows = list(db.query("SELECT actor, action, subject, reason, detail FROM audit_log WHERE actor LIKE 'cli:%'"))
    db.close()
    assert [r["action"] for r in rows] == ["order.hold", "order.hold.release", "evidence.purge", "evidence.purge"]
    assert {json.loads(r["detail"])["orders"][0] for r in rows[2:]} == {held, free}
