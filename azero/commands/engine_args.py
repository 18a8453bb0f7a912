"""What the engine subcommands (`azero gtp`, `azero uci`) share: the arguments that pick the game
and the player, and their checks; --threads also serves `azero play` and `azero arena`, every
command whose network plays. Not a subcommand itself (azero/cli.py lists those).

Each subcommand's game must speak its protocol (games.games_speaking(protocol)); the player is
the --ckpt spec (default: the game's bundled checkpoint), built by the subcommand's own factory.
Every problem is one line on stderr, `azero COMMAND: reason`, and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable


# --sims's default, in the words of every command whose network plays for a user
# (players.load_checkpoint(as_engine=True)).
DEFAULT_SIMS = "the checkpoint's play.num_simulations, else its search.num_simulations"


def add_threads_argument(p: argparse.ArgumentParser) -> None:
    """--threads: torch's threads for a player's network (every command whose network plays:
    gtp, uci, play, arena)."""
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for the network (default 1: a one-game search is as "
                        "fast on one as on two, and a second thread waits for a time slice at "
                        "every operator whenever anything else uses the cores, such as the "
                        "opponent engine or a training run; an idle machine plays a match of "
                        "two networks faster on 2)")


def set_threads(args: argparse.Namespace, where: str) -> bool:
    """Apply --threads (add_threads_argument); False after printing the reason when it is
    below 1."""
    if args.threads < 1:
        print(f"{where}: --threads must be at least 1, got {args.threads}", file=sys.stderr)
        return False
    from azero.nets import set_torch_threads
    set_torch_threads(args.threads)
    return True


def add_engine_arguments(p: argparse.ArgumentParser, protocol: str, *, sims_help: str,
                         name_help: str) -> None:
    """--game (a game speaking `protocol`, GTP or UCI; default the first such game), --ckpt,
    --sims, --name, --device, --seed, --threads."""
    from azero.games import games_speaking
    speaking = games_speaking(protocol)
    p.add_argument("--game", default=speaking[0] if speaking else None,
                   help=f"a game that speaks {protocol.upper()}: "
                        f"{', '.join(speaking) or 'none registered'} (default: %(default)s)")
    p.add_argument("--ckpt", default=None,
                   help="checkpoint to play with (default: the game's bundled one), or "
                        "'random' / 'mcts-rollout:N'")
    p.add_argument("--sims", type=int, default=None, help=sims_help)
    p.add_argument("--name", default="azero", help=name_help)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    add_threads_argument(p)


def load_engine(args: argparse.Namespace, protocol: str, make_game: Callable[[], Any],
                make_mover: Callable[..., Any]) -> tuple[Any, Any] | None:
    """(game, mover) for an engine subcommand's arguments (see add_engine_arguments):
    `make_game()` builds the game, `make_mover(spec, game, simulations=, seed=, device=,
    as_engine=True)` the player of the --ckpt spec (at its config's play simulations), with
    torch at --threads threads. None after printing the reason when any of it fails: a game
    that does not speak `protocol`, --sims or --threads below 1, a bad spec or checkpoint."""
    from azero.games import games_speaking
    from azero.players import PlayerSpecError, bundled_checkpoint

    where = f"azero {protocol}"
    speaking = games_speaking(protocol)
    if args.game not in speaking:
        print(f"{where}: {args.game!r} does not speak {protocol.upper()}; the games that do: "
              f"{', '.join(speaking) or 'none'}", file=sys.stderr)
        return None
    if args.sims is not None and args.sims < 1:
        print(f"{where}: --sims must be at least 1, got {args.sims}", file=sys.stderr)
        return None
    if not set_threads(args, where):
        return None
    try:
        game = make_game()
        spec = args.ckpt if args.ckpt is not None else str(bundled_checkpoint(args.game))
        mover = make_mover(spec, game, simulations=args.sims, seed=args.seed,
                           device=args.device, as_engine=True)
    except (PlayerSpecError, ValueError) as e:
        print(f"{where}: {e}", file=sys.stderr)
        return None
    return game, mover
