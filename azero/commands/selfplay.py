"""`azero selfplay --game G`: the main job, self-play -> train -> gate, resumable."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    from azero.games import names

    p = sub.add_parser("selfplay", help="train a network by self-play (resumes an existing run)",
                       description="Self-play, training and gating into a run directory. Running "
                                   "the same command again resumes where it stopped.")
    p.add_argument("--game", required=True, choices=names())
    p.add_argument("--config", help="config file or bundled config name (default: the game's)")
    p.add_argument("--run-dir", help="run directory (default: the config's run_dir, runs/<game>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set search.num_simulations=32 (repeatable)")
    p.add_argument("--workers", type=int, help="self-play worker processes (selfplay.workers)")
    p.add_argument("--device", help="training/inference device: auto, cpu, cuda (train.device)")
    p.add_argument("--hours", type=float, help="stop after this many hours")
    p.add_argument("--iterations", type=int, help="stop after this many gated candidates")
    p.add_argument("--init", metavar="CKPT",
                   help="start a new run from this checkpoint's network (its architecture replaces "
                        "the config's model section; optimizer, step and schedule start afresh)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace):
    """The run's config: an existing run directory's config.yaml (resume) or the named config,
    with command-line overrides on top. A new run with --init takes its model section from the
    checkpoint's architecture (an explicit --set model.KEY still wins, and the loop then refuses
    the mismatch)."""
    from azero.config import ConfigError, load_config

    overrides = list(args.overrides)
    if args.workers is not None:
        overrides.append(f"selfplay.workers={args.workers}")
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    if args.run_dir is not None:
        overrides.append(f"run_dir={args.run_dir}")
    base = load_config(args.config or args.game, overrides)
    stored = Path(base.run_dir) / "config.yaml"
    if stored.is_file():
        config = load_config(str(stored), overrides)
        print(f"resuming {config.run_dir} (config from {stored})", file=sys.stderr)
    elif args.init is not None:
        config = load_config(args.config or args.game, _model_overrides(args.init) + overrides)
    else:
        config = base
    if config.game != args.game:
        raise ConfigError(f"game: the run in {config.run_dir} is for {config.game!r}, "
                          f"not {args.game!r}")
    return config


def _model_overrides(path: str) -> list[str]:
    """`model.KEY=VALUE` overrides that make the config describe the network in `path`."""
    from azero import checkpoint as ckpt
    from azero.nets import model_settings_of

    architecture = ckpt.read_payload(path)["architecture"]
    return [f"model.{key}={json.dumps(value)}" for key, value in model_settings_of(architecture).items()]


def run(args: argparse.Namespace) -> int:
    from azero.checkpoint import CheckpointError
    from azero.config import ConfigError
    from azero.loop import Limits, run_loop
    from azero.rundir import RunDirBusy

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        config = resolve_config(args)
        summary = run_loop(config, Limits(hours=args.hours, iterations=args.iterations),
                           progress=False if args.no_progress else None, init=args.init)
    except (ConfigError, CheckpointError, RunDirBusy) as e:
        print(f"azero selfplay: {e}", file=sys.stderr)
        return 2
    print(f"stopped ({summary['reason']}): step {summary['step']}, generation "
          f"{summary['generation']}, {summary['games_seen']} games, "
          f"{summary['positions_seen']} positions in {config.run_dir}")
    return 130 if summary["reason"] == "interrupted" else 0
