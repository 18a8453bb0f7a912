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
    from azero.config import ALGORITHMS
    from azero.backends import BACKENDS

    p.add_argument("--game", required=True, choices=names())
    p.add_argument("--algo", choices=ALGORITHMS,
                   help="training algorithm (the config's `algorithm`, default alphazero); without "
                        "--config, muzero takes the game's bundled <game>_muzero config if there "
                        "is one")
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
    p.add_argument("--backend", choices=BACKENDS, default="local",
                   help="where self-play workers run: local = processes of this machine "
                        "(default); ray = Ray actors on the nodes of a cluster (pip install "
                        "'azero[ray]'; README: Self-play on a Ray cluster)")
    p.add_argument("--address", metavar="auto|HOST:PORT",
                   help="--backend ray: the cluster to join (auto: the one started on this "
                        "machine with 'ray start --head'); default: a Ray instance of its own")
    p.add_argument("--inference-server", action="store_true",
                   help="one inference server process holds the network on train.device and "
                        "batches every worker's leaf evaluations (selfplay.inference_server; "
                        "pays with one GPU and many CPU workers; README: The inference server)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace):
    """The run's config: an existing run directory's config.yaml (resume) or the named config,
    with command-line overrides on top. A new run with --init takes its model section from the
    checkpoint's architecture (an explicit --set model.KEY still wins, and the loop then refuses
    the mismatch)."""
    from azero.config import MODEL_KIND_OF, ConfigError, bundled_config_names, load_config

    algo = getattr(args, "algo", None)
    name = args.config
    if name is None:
        name = (f"{args.game}_muzero" if algo == "muzero"
                and f"{args.game}_muzero" in bundled_config_names() else args.game)
    overrides = [] if algo is None else [f"algorithm={algo}", f"model.kind={MODEL_KIND_OF[algo]}"]
    overrides += list(args.overrides)
    if args.workers is not None:
        overrides.append(f"selfplay.workers={args.workers}")
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    if getattr(args, "inference_server", False):
        overrides.append("selfplay.inference_server=true")
    if args.run_dir is not None:
        overrides.append(f"run_dir={args.run_dir}")
    base = load_config(name, overrides)
    stored = Path(base.run_dir) / "config.yaml"
    if stored.is_file():
        run_algorithm = load_config(str(stored)).algorithm
        if algo is not None and algo != run_algorithm:
            raise ConfigError(f"algorithm: the run in {base.run_dir} trains {run_algorithm}, "
                              f"not {algo} (another --run-dir for a {algo} run)")
        config = load_config(str(stored), overrides)
        print(f"resuming {config.run_dir} (config from {stored})", file=sys.stderr)
    elif args.init is not None:
        config = load_config(name, _model_overrides(args.init, base) + overrides)
    else:
        config = base
    if config.game != args.game:
        raise ConfigError(f"game: the run in {config.run_dir} is for {config.game!r}, "
                          f"not {args.game!r}")
    return config


def _model_overrides(path: str, config) -> list[str]:
    """`KEY=VALUE` overrides that make `config` describe the network in `path` (model: and, for
    MuZero, muzero: keys); none for a checkpoint of another algorithm, which the loop refuses
    with its reason (azero.loop.check_init)."""
    from azero import checkpoint as ckpt
    from azero.algorithms import algorithm_for

    payload = ckpt.read_payload(path)
    if str(payload.get("algorithm", "alphazero")) != config.algorithm:
        return []
    settings = algorithm_for(config).init_overrides(payload["architecture"])
    return [f"{key}={json.dumps(value)}" for key, value in settings.items()]


def run(args: argparse.Namespace) -> int:
    from azero.checkpoint import CheckpointError
    from azero.config import ConfigError
    from azero.loop import Limits, run_loop
    from azero.backends import make_backend
    from azero.rundir import RunDirBusy

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        backend = make_backend(args.backend, args.address)
        config = resolve_config(args)
        summary = run_loop(config, Limits(hours=args.hours, iterations=args.iterations),
                           progress=False if args.no_progress else None, init=args.init,
                           backend=backend)
    except (ConfigError, CheckpointError, RunDirBusy) as e:
        print(f"azero selfplay: {e}", file=sys.stderr)
        return 2
    print(f"stopped ({summary['reason']}): step {summary['step']}, generation "
          f"{summary['generation']}, {summary['games_seen']} games, "
          f"{summary['positions_seen']} positions in {config.run_dir}")
    return 130 if summary["reason"] == "interrupted" else 0
