"""The self-play worker: a process that plays games with the current best network and writes them
as replay shards. It talks to the rest of the run only through files (RunDir), so any pool backend
(azero/pool.py) can host it.

    worker(worker_id, stop_event, run_dir, config_dict)
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np


def selfplay_worker(worker_id: int, stop_event, run_dir: str, config_dict: dict) -> None:
    """Play until `stop_event` is set. A new best network (checkpoints/best.json's generation
    changes) is loaded between moves without a restart. Ctrl-C goes to the parent, which sets
    the event; the worker then writes the games it has finished and exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from azero import checkpoint as ckpt
    from azero.config import Config
    from azero.games import make
    from azero.nets import make_evaluator, resolve_device, set_torch_threads
    from azero.replay import ShardWriter
    from azero.rundir import RunDir
    from azero.selfplay import SelfPlay, SelfPlaySettings

    config = Config.from_dict(config_dict)
    sp_cfg = config.selfplay
    set_torch_threads(sp_cfg.threads_per_worker, processes=sp_cfg.workers + 1)
    run = RunDir.at(run_dir)
    game = make(config.game)
    device = resolve_device(config.train.device)

    generation, net = _load_best(run, game.spec.name, device, ckpt)
    evaluator = make_evaluator(net, game, device)
    settings = SelfPlaySettings(
        num_games=sp_cfg.games_per_worker,
        temperature_moves=sp_cfg.temperature_moves,
        temperature=sp_cfg.temperature,
        add_noise=sp_cfg.add_noise,
        max_moves=sp_cfg.max_moves,
        resign_threshold=sp_cfg.resign_threshold,
        resign_playout_fraction=sp_cfg.resign_playout_fraction,
    )
    seed = (config.seed * 1_000_003 + worker_id * 7919 + os.getpid() + time.time_ns()) % 2**63
    selfplay = SelfPlay(game, config.search.to_search_config(), settings, seed=seed)
    writer = ShardWriter(run.replay, worker=worker_id, games_per_shard=sp_cfg.games_per_shard)
    last_poll = time.monotonic()
    parent = os.getppid()
    try:
        # A parent killed with SIGKILL cannot stop us: leave when we are orphaned.
        while not stop_event.is_set() and os.getppid() == parent:
            for g in selfplay.play_move(evaluator):
                extra = {"generation": np.full(len(g.value_targets), generation, np.int32)}
                if g.false_resignation is not None:
                    extra["false_resignation"] = np.full(len(g.value_targets), g.false_resignation)
                writer.add_game(g.states, g.policy_targets, g.value_targets, **extra)
            if time.monotonic() - last_poll >= sp_cfg.checkpoint_poll_seconds:
                last_poll = time.monotonic()
                info = run.read_best_info()
                if info is not None and info["generation"] != generation:
                    generation, new_net = _load_best(run, game.spec.name, device, ckpt)
                    net.load_state_dict(new_net.state_dict())
    finally:
        writer.flush()


def _load_best(run, game_name: str, device, ckpt):
    """(generation, net) of the current best checkpoint. best.json is written after best.pt, so
    the generation read first is never newer than the weights read after it."""
    info = run.read_best_info() or {"generation": 0}
    loaded = ckpt.load(run.best, expected_game=game_name, device=device)
    return int(info["generation"]), loaded.model
