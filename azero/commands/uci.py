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
    from azero.games import games_speaking
    speaking = games_speaking("uci")
    p = sub.add_parser("uci", help="a UCI engine on stdin/stdout for UCI GUIs (Cute Chess, "
                                   "Arena, En Croissant), cutechess-cli and lichess-bot")
    p.add_argument("--game", default=speaking[0] if speaking else None,
                   help=f"a game that speaks UCI: {', '.join(speaking) or 'none registered'} "
                        f"(default: %(default)s)")
    p.add_argument("--ckpt", default=None,
                   help="checkpoint to play with (default: the game's bundled one), or "
                        "'random' / 'mcts-rollout:N'")
    p.add_argument("--sims", type=int, default=None,
                   help="simulations of a `go` without nodes or a clock: the Simulations "
                        "option's default (default: the checkpoint's config)")
    p.add_argument("--name", default="azero", help="the engine's name in `id name`")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from azero.games import games_speaking, make
    from azero.players import PlayerSpecError, bundled_checkpoint, make_player

    speaking = games_speaking("uci")
    if args.game not in speaking:
        print(f"azero uci: {args.game!r} does not speak UCI; the games that do: "
              f"{', '.join(speaking) or 'none'}", file=sys.stderr)
        return 2
    if args.sims is not None and args.sims < 1:
        print(f"azero uci: --sims must be at least 1, got {args.sims}", file=sys.stderr)
        return 2
    try:
        game = make(args.game)
        spec = args.ckpt if args.ckpt is not None else str(bundled_checkpoint(args.game))
        player = make_player(spec, game, simulations=args.sims, seed=args.seed,
                             device=args.device)
    except (PlayerSpecError, ValueError) as e:
        print(f"azero uci: {e}", file=sys.stderr)
        return 2
    from azero.protocols import uci
    out = uci.LineWriter(sys.stdout.buffer)
    engine = uci.UciEngine(game, player, send=out, name=args.name, seed=args.seed,
                           simulations=args.sims, log=sys.stderr,
                           output_closed=lambda: out.closed)
    # Bytes in: lines end at LF only, and no byte of input can stop the session.
    return uci.serve(engine, sys.stdin.buffer)
