"""scripts/ and .ci/run: the two commands a new user runs from a clean clone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ["scripts/bootstrap.sh", "scripts/test.sh", "scripts/demo.sh", ".ci/run"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_executable_strict_bash(script: str) -> None:
    path = REPO_ROOT / script
    assert os.access(path, os.X_OK), f"{script} must be executable"
    text = path.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_ci_runs_the_readme_test_command_only() -> None:
    commands = [
        line
        for line in (REPO_ROOT / ".ci/run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands[-1] == "exec bash scripts/test.sh"
