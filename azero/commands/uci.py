"""`azero uci`: a chess engine speaking UCI on stdin/stdout (Cute Chess, Arena, En Croissant,
cutechess-cli, fastchess, lichess-bot), for the games of the registry that speak UCI
(games.games_speaking("uci")).

Everything the engine says goes to stdout as UCI lines (problems with the input as `info string`);
tracebacks of internal errors go to stderr. See azero/protocols/uci.py for the commands and
options, uci_clock.py for the time a move takes, uci_search.py for the search and what it reports.
"""
from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .engine_args import DEFAULT_SIMS, add_engine_arguments
    p = sub.add_parser("uci", help="a UCI engine on stdin/stdout for UCI GUIs (Cute Chess, "
                                   "Arena, En Croissant), cutechess-cli and lichess-bot")
    add_engine_arguments(p, "uci", name_help="the engine's name in `id name`",
                         sims_help=f"simulations of a `go` without nodes or a clock: the "
                                   f"Simulations option's default (default: {DEFAULT_SIMS})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from azero.games import make
    from azero.players import make_player
    from azero.protocols import uci

    from .engine_args import load_engine

    loaded = load_engine(args, "uci", lambda: make(args.game), make_player)
    if loaded is None:
        return 2
    game, player = loaded
    out = uci.LineWriter(sys.stdout.buffer)
    engine = uci.UciEngine(game, player, send=out, name=args.name, seed=args.seed,
                           simulations=args.sims, log=sys.stderr,
                           output_closed=lambda: out.closed)
    # Bytes in: lines end at LF only, and no byte of input can stop the session.
    return uci.serve(engine, sys.stdin.buffer)
