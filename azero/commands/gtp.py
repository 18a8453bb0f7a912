"""`azero gtp`: a Go engine speaking GTP v2 on stdin/stdout (GoGui, Sabaki, gogui-twogtp), for
the games of the registry that speak GTP (games.games_speaking("gtp")).

Answers go to stdout, everything else (what the engine thinks, why a move was illegal) to
stderr. See azero/protocols/gtp.py for the commands, resignation, and the modules behind them
(the wire format, the position, the clock)."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .engine_args import DEFAULT_SIMS, add_engine_arguments
    p = sub.add_parser("gtp", help="play Go over GTP v2 (stdin/stdout) for GoGui, Sabaki, twogtp")
    add_engine_arguments(p, "gtp", name_help="what `name` answers",
                         sims_help=f"search simulations per move at most (default: "
                                   f"{DEFAULT_SIMS}); a GTP clock may lower it")
    p.add_argument("--komi", type=float, default=None,
                   help="komi until the controller sends one (default: the rules' 7)")
    p.add_argument("--resign-threshold", type=float, default=None,
                   help="resign when the root value is below this (default -0.9)")
    p.add_argument("--no-resign", action="store_true", help="never resign")
    p.add_argument("--resign-min-plies", type=int, default=None,
                   help="no resignation before this many plies (default 20)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from azero.games import make
    from azero.protocols import gtp, gtp_protocol

    from .engine_args import load_engine

    loaded = load_engine(args, "gtp", lambda: make(args.game) if args.komi is None
                         else make(args.game, komi=args.komi), gtp.make_mover)
    if loaded is None:
        return 2
    game, mover = loaded
    threshold = None if args.no_resign else (
        gtp.DEFAULT_RESIGN_THRESHOLD if args.resign_threshold is None else args.resign_threshold)
    min_plies = gtp.DEFAULT_RESIGN_MIN_PLIES if args.resign_min_plies is None \
        else args.resign_min_plies
    engine = gtp.GtpEngine(mover, game, name=args.name, resign_threshold=threshold,
                           resign_min_plies=min_plies,
                           game_factory=lambda komi: make(args.game, komi=komi), log=sys.stderr)
    # Bytes both ways: lines end at LF only, and no byte of input can stop the session.
    return gtp_protocol.serve(engine, sys.stdin.buffer, sys.stdout.buffer)
