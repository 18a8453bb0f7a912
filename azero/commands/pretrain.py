"""`azero pretrain --game G --records PATH...`: the supervised start (azero/pretrain.py)."""
from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from azero.games import names

    p = sub.add_parser(
        "pretrain", help="train a network from game records (a supervised start for selfplay --init)",
        description="Train the policy and value heads of the game's AlphaZero network (the "
                    "config's model section) on recorded games: the move played as the policy "
                    "target, the game's result from the side to move as the value target. "
                    "Holds out a share of the games and reports move-prediction accuracy and the "
                    "value loss on them. The checkpoint starts a run: azero selfplay --init CKPT.")
    p.add_argument("--game", required=True, choices=names())
    p.add_argument("--records", required=True, nargs="+", metavar="PATH",
                   help="record files, or folders searched recursively for the game's record "
                        "files (by the suffix of its record format: .sgf, .pgn, .jsonl), e.g. "
                        "what azero arena wrote or a run's games/ folder")
    p.add_argument("--config", help="config file or bundled config name (default: the game's); "
                                    "its model section is the network, its train section the "
                                    "optimizer and schedule")
    p.add_argument("--out", metavar="CKPT",
                   help="checkpoint to write (default: runs/<game>_pretrain/pretrained.pt), "
                        "rewritten at every evaluation: the same command run again resumes "
                        "from it; metrics.jsonl goes beside it")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="optimizer steps")
    length.add_argument("--epochs", type=float,
                        help="passes over the training positions (default 1 without --steps)")
    p.add_argument("--holdout", type=float, default=0.05,
                   help="share of the games held out for the accuracy and value loss (split by "
                        "game, by a hash of the seed and the moves; default 0.05)")
    p.add_argument("--seed", type=int, help="seed of the split and the sampling (default: the "
                                            "config's seed)")
    p.add_argument("--eval-every", type=int, default=500, metavar="STEPS",
                   help="evaluate on the held-out games and rewrite the checkpoint this often")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set model.blocks=4 (repeatable); "
                        "train.total_steps, when set, replaces the default of the run's length")
    p.add_argument("--device", help="training device: auto, cpu, cuda (train.device)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from azero.config import ConfigError, load_config
    from azero.pretrain import RecordsError, pretrain

    overrides = list(args.overrides)
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    out = args.out or f"runs/{args.game}_pretrain/pretrained.pt"
    try:
        if args.eval_every < 1:
            raise ValueError(f"--eval-every must be >= 1, got {args.eval_every}")
        config = load_config(args.config or args.game, overrides)
        if config.game != args.game:
            raise ConfigError(f"game: the config is for {config.game!r}, not {args.game!r}")
        fit = not any(o.split("=", 1)[0].strip() == "train.total_steps" for o in overrides)
        summary = pretrain(config, args.records, out, steps=args.steps, epochs=args.epochs,
                           holdout=args.holdout, seed=args.seed, eval_every=args.eval_every,
                           fit_schedule=fit, progress=False if args.no_progress else None,
                           warn=lambda line: print(f"warning: {line}", file=sys.stderr))
    except (ConfigError, RecordsError, ValueError) as e:
        print(f"azero pretrain: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out} (step {summary['step']}); start self-play from it with: "
          f"azero selfplay --game {args.game} --init {out}")
    return 0
