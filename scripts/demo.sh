#!/usr/bin/env bash
# Run the demo: prepares the machine first (scripts/bootstrap.sh), then `garbagewatch demo`
# with any arguments given (see `scripts/demo.sh --help`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/bootstrap.sh
exec .venv/bin/garbagewatch demo "$@"
