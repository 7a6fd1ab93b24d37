#!/usr/bin/env bash
# Run the test suite: prepares the machine first (scripts/bootstrap.sh), then pytest with any
# arguments given (default: -q). Exits with pytest's exit code.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
if [ $# -eq 0 ]; then
  set -- -q
fi
exec .venv/bin/python -m pytest "$@"
