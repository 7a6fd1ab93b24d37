"""`python -m central run --config FILE`: the same as `garbagewatch central`."""

from central.cli import main

raise SystemExit(main())
