"""`azero` command line: one module per subcommand under azero/commands/, each providing
`add_parser(subparsers)` which registers its parser and sets `func=run`. The logic lives in the
library so tests can call it without a shell."""
from __future__ import annotations

import argparse
import importlib
import sys

# Subcommand modules, in the order `azero --help` lists them.
_COMMANDS = ["selfplay", "pretrain", "arena", "play", "gtp", "uci", "bench"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azero", description="AlphaZero self-play engine for board games (MuZero-ready search).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"azero.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"azero.commands.{name}":
                raise
            continue  # subcommand not built yet
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from azero.games import GameUnavailableError
    try:
        return int(args.func(args) or 0)
    except GameUnavailableError as e:      # a game whose optional extra is not installed
        print(f"azero {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
