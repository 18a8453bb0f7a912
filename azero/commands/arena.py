"""`azero arena`: a match between two players, with Elo and an SPRT verdict."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from azero.arena import MatchConfig, run_match
from azero.games import default_name, make, names
from azero.players import PLAYER_SPECS_HELP, PlayerSpecError, close_players, make_player
from azero.records import record_format
from azero.stats import SprtConfig

from .engine_args import DEFAULT_SIMS, add_threads_argument, set_threads


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("arena", help="match two players: W/D/L, Elo, SPRT")
    p.add_argument("--a", required=True,
                   help=f"player A: {PLAYER_SPECS_HELP}; or a folder of checkpoints (e.g. "
                        "runs/GAME/checkpoints/generations), each playing B")
    p.add_argument("--b", required=True, help="player B, as --a")
    p.add_argument("--game", default=default_name(), choices=names())
    p.add_argument("--komi", type=float, default=None,
                   help="Go: komi of every game (default: the rules' 7; 7.5 rules out draws)")
    p.add_argument("--games", type=int, default=100, help="at most this many games (pairs)")
    p.add_argument("--sims", type=int, default=None,
                   help=f"search simulations for checkpoint players (default: "
                        f"{DEFAULT_SIMS.replace('the checkpoint', 'each checkpoint')})")
    p.add_argument("--in-flight", type=int, default=32, help="games played side by side")
    p.add_argument("--opening-plies", type=int, default=2,
                   help="random plies opening each colour-swapped pair of games")
    p.add_argument("--elo0", type=float, default=0.0, help="SPRT H0: A is elo0 stronger")
    p.add_argument("--elo1", type=float, default=35.0, help="SPRT H1: A is elo1 stronger")
    p.add_argument("--alpha", type=float, default=0.05, help="SPRT false-positive rate")
    p.add_argument("--beta", type=float, default=0.05, help="SPRT false-negative rate")
    p.add_argument("--sprt-model", choices=("trinomial", "normal"), default="trinomial")
    p.add_argument("--no-sprt", action="store_true", help="play all games, no early stop")
    p.add_argument("--records", default=None,
                   help="file the games are appended to (default: arena-<time> in the current "
                        "folder, in the game's record format)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true",
                   help="go on with a match cut short: the games --records holds of it count as "
                        "played and only the others are played (the same command otherwise: "
                        "the same players, --seed, --games and --opening-plies)")
    p.add_argument("--quiet", action="store_true", help="no per-game progress")
    add_threads_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    players: list = []
    try:
        return _run(args, players)
    finally:
        close_players(*players)


def _run(args: argparse.Namespace, players: list) -> int:
    if not set_threads(args, "azero arena"):
        return 2
    if args.resume and not args.records:
        print("azero arena: --resume needs --records, the file of the match to go on with",
              file=sys.stderr)
        return 2
    try:
        game = make(args.game) if args.komi is None else make(args.game, komi=args.komi)
    except TypeError:
        print(f"azero arena: --komi: {args.game} has no komi", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"azero arena: --komi: {e}", file=sys.stderr)
        return 2
    specs = _specs_of_a(args.a)
    if not specs:
        print(f"azero arena: --a {args.a}: a folder without checkpoints (*.pt)", file=sys.stderr)
        return 2
    try:
        b = make_player(args.b, game, simulations=args.sims, seed=args.seed + 1,
                        device=args.device, as_engine=True)
        players.append(b)
        b_name = b.name
        sprt_cfg = None if args.no_sprt else SprtConfig(args.elo0, args.elo1, args.alpha,
                                                        args.beta, args.sprt_model)
        cfg = MatchConfig(games=args.games, in_flight=args.in_flight,
                          opening_plies=args.opening_plies, sprt=sprt_cfg, seed=args.seed)
    except (PlayerSpecError, ValueError) as e:
        print(f"azero arena: {e}", file=sys.stderr)
        return 2
    stamp = time.strftime("arena-%Y%m%d-%H%M%S")
    suffix = record_format(game.spec.name).suffix
    results = []
    for spec in specs:
        try:
            a = make_player(spec, game, simulations=args.sims, seed=args.seed, device=args.device,
                            as_engine=True)
        except (PlayerSpecError, ValueError) as e:
            print(f"azero arena: {e}", file=sys.stderr)
            return 2
        players.append(a)
        b.name = b_name
        if a.name == b_name:
            a.name, b.name = f"A:{a.name}", f"B:{b_name}"
        if args.records:
            given = Path(args.records)     # games.sgf -> games-gen-0003.sgf for each checkpoint
            records = args.records if len(specs) == 1 else str(
                given.with_name(f"{given.stem}-{Path(spec).stem}{given.suffix}"))
        else:
            records = stamp + ("" if len(specs) == 1 else f"-{Path(spec).stem}") + suffix
        try:
            result = _play(args, game, a, b, cfg, records)
        except ValueError as e:               # a resumed match's records are another match's
            if not args.resume:
                raise
            print(f"azero arena: --resume: {records}: {e}", file=sys.stderr)
            return 2
        results.append((spec, result))
        close_players(a)
        players.remove(a)
    if len(specs) > 1:
        print(f"\nagainst {b_name}:")
        width = max(len(Path(spec).name) for spec, _ in results)
        for spec, r in results:
            print(f"{Path(spec).name:<{width}}  {r.stats}")
    return 0


def _specs_of_a(a: str) -> list[str]:
    """--a: one player spec, or a folder of checkpoints (a run's checkpoints/generations), each
    playing B in turn, in name order."""
    path = Path(a)
    if path.is_dir():
        return [str(p) for p in sorted(path.glob("*.pt"))]
    return [a]


def _play(args, game, a, b, cfg: MatchConfig, records: str):
    def progress(record, stats) -> None:
        if not args.quiet:
            print(f"game {record.info['game_index'] + 1:>4}: {record.players[0]} - "
                  f"{record.players[1]} {record.result_string:<7}  {a.name}: {stats}",
                  flush=True)

    if not args.records and not args.resume:      # the stamped name: the one place it is told
        print(f"records: {records} (should the match stop early, the same command with "
              f"--records {records} --resume plays the games it lacks)", flush=True)
    result = run_match(game, a, b, cfg, records=records, progress=progress,
                       info={"match": f"{a.name} vs {b.name}"}, resume=args.resume)
    print(result.summary())
    print(f"records: {records}")
    return result
