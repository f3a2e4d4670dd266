"""Run one service by its registered name: `python -m ecosystem risk-monitor` (the container image's entry point)."""

from __future__ import annotations

import importlib
import sys

from ecosystem.names import ALL_SERVICES


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ALL_SERVICES:
        print(f"usage: python -m ecosystem {{{'|'.join(ALL_SERVICES)}}}, got {args!r}", file=sys.stderr)
        return 2
    importlib.import_module("ecosystem.services." + args[0].replace("-", "_")).main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
