"""`garbagewatch`: one command line for every part (edge, central, model, demo)."""

from __future__ import annotations

import sys
from collections.abc import Callable

__all__ = ["main"]

USAGE = """usage: garbagewatch {edge,central,model,demo,verify} ...

  edge      the edge daemon: keygen, check-config, run
  central   the central service: run, serve, orders, devices, users, tokens, legal holds, retention sweep
  model     the detector: train, export, eval
  demo      the whole chain on this machine (broker, RTSP camera, edge, central)
  verify    check an exported evidence bundle offline against a device key fingerprint
"""


def _edge(argv: list[str]) -> int:
    from edge.cli import main

    return main(argv)


def _central(argv: list[str]) -> int:
    from central.cli import main

    return main(argv)


def _model(argv: list[str]) -> int:
    from models.cli import main

    return main(argv)


def _demo(argv: list[str]) -> int:
    from garbagewatch.demo import main

    return main(argv)


def _verify(argv: list[str]) -> int:
    from garbagewatch.verify import main

    return main(argv)


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "edge": _edge, "central": _central, "model": _model, "demo": _demo, "verify": _verify,
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        print(USAGE, file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())
