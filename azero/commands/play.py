"""`azero play`: play a game against a bot in the terminal."""
from __future__ import annotations

import argparse
import sys

from azero.games import default_name, make, names
from azero.players import PlayerSpecError, bundled_checkpoint, make_player
from azero.players.human import play_terminal

from .engine_args import DEFAULT_SIMS, add_threads_argument, set_threads


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("play", help="play against a bot in the terminal")
    p.add_argument("--game", default=default_name(), choices=names())
    p.add_argument("--ckpt", default=None,
                   help="checkpoint to play against (default: the bundled one), or 'random' / "
                        "'mcts-rollout:N'")
    p.add_argument("--sims", type=int, default=None,
                   help=f"search simulations per bot move (default: {DEFAULT_SIMS})")
    p.add_argument("--second", action="store_true", help="let the bot move first")
    p.add_argument("--no-color", action="store_true", help="plain text board")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    add_threads_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not set_threads(args, "azero play"):
        return 2
    game = make(args.game)
    try:
        spec = args.ckpt if args.ckpt is not None else bundled_checkpoint(game.spec.name)
        bot = make_player(spec, game, simulations=args.sims, seed=args.seed, device=args.device,
                          name="azero" if args.ckpt is None else None, as_engine=True)
    except PlayerSpecError as e:
        print(f"azero play: {e}", file=sys.stderr)
        return 2
    color = not args.no_color and sys.stdout.isatty()
    play_terminal(game, bot, human_first=not args.second, color=color)
    return 0
