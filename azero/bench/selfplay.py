"""Self-play throughput: positions per second of one self-play process (the config's network and
search, many games in lockstep), with the inference snapshot the workers use beside the plain
eager PyTorch evaluator as the baseline (our own other path, not a peer) and, where the snapshot
runs in bf16 (azero.nets.runtime.inference_weight_dtype), the fp32 snapshot, timed alternately in
the same run.

A MuZero config (algorithm muzero) measures the search over its learned model the same way:
the snapshot is MuZeroEvaluator's (BatchNorm folded, bf16 where the CPU has it), the eager
baseline the live fp32 net.

A position is one move searched and played in one game; `--games` games advance together, so a
self-play step adds `--games` positions. The network is the config's architecture with random
weights (`--ckpt` for a trained one: same cost, other games' lengths), BatchNorm statistics
randomised so that folding them is not a no-op.

`--split` adds where the inference snapshot's self-play time goes, as fractions of it: the
network's forward passes, the rules (every call into the game by self-play and the search:
step_with_info of the leaves, the moves played, terminal, ...), the observation features the
evaluator asks of the game, and the rest (the C++ search, game records, Python glue). Each call is
timed as it happens (perf_counter around it), so the four add up to 1.
"""
from __future__ import annotations

import argparse
import time
from typing import Iterator

import numpy as np
import torch

from azero import games
from azero.bench.net import (add_precision_argument, bench_net, precision_label,
                              snapshot_evaluators)
from azero.bench.report import Measurement


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--game", nargs="+", default=games.names(),
                        help="configs to measure (bundled config names; default: every game's)")
    parser.add_argument("--ckpt", default=None, help="a checkpoint instead of random weights "
                        "(only with a single --game)")
    parser.add_argument("--games", type=int, default=None,
                        help="games in lockstep (default: the config's games_per_worker)")
    parser.add_argument("--steps", type=int, default=4, help="self-play steps per timed round")
    parser.add_argument("--rounds", type=int, default=4,
                        help="timed rounds, alternating the two evaluators")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (workers use 1)")
    parser.add_argument("--device", default="cpu")
    add_precision_argument(parser)
    parser.add_argument("--split", action="store_true",
                        help="also report the shares of the snapshot's time spent in the network, "
                             "the rules, the observation features and the rest (search, glue)")


class _TimedGame:
    """`game` seen through a proxy that sums the seconds spent in its method calls (`seconds`);
    everything else (spec, attributes) is the game's own."""

    def __init__(self, game):
        self._game, self.spec, self.seconds = game, game.spec, 0.0

    def __getattr__(self, name):
        attr = getattr(self._game, name)
        if not callable(attr):
            return attr

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0
        return timed


class _TimedEvaluator:
    """An evaluator whose calls' seconds are summed in `seconds`."""

    def __init__(self, evaluator):
        self.evaluator, self.seconds = evaluator, 0.0

    def __call__(self, states):
        t0 = time.perf_counter()
        try:
            return self.evaluator(states)
        finally:
            self.seconds += time.perf_counter() - t0


def measure_game(name: str, args: argparse.Namespace) -> Iterator[Measurement]:
    from azero.config import SelfPlayConfig, load_config
    from azero.muzero.selfplay import muzero_search_factory
    from azero.nets import make_evaluator
    from azero.nets.muzero_evaluator import MuZeroEvaluator
    from azero.selfplay import SelfPlay

    config = load_config(name)
    game = config.make_game()
    net = bench_net(config, game, args.ckpt, args.device)
    num_games = args.games or config.selfplay.games_per_worker
    # With --split the snapshot's run sees the game (its rules, and apart the features its
    # evaluator asks for) and its evaluator through timing proxies; the eager run never does.
    split = args.split
    rules, features = (_TimedGame(game), _TimedGame(game)) if split else (game, game)
    muzero = config.algorithm == "muzero"
    if muzero and split:
        raise ValueError(f"--split: {name} is a MuZero config; the split is measured for "
                         f"AlphaZero configs (their network calls are the evaluator's)")
    make = MuZeroEvaluator if muzero else make_evaluator
    evaluators = {**snapshot_evaluators(net, features, args.device, args.precision,
                                        wrap=_TimedEvaluator if split else lambda e: e,
                                        make=make),
                  "eager": make(net, game, args.device)}
    settings = SelfPlayConfig(games_per_worker=num_games)
    runs = {k: SelfPlay(rules if k == "snapshot" else game, config.search, settings,
                        seed=np.random.SeedSequence(0),
                        make_search=(muzero_search_factory(evaluator, config.search)
                                     if muzero else None))
            for k, evaluator in evaluators.items()}
    seconds = dict.fromkeys(evaluators, 0.0)
    for k, evaluator in evaluators.items():               # warm-up: first calls, allocations
        list(runs[k].play_move(evaluator))
    if split:                                             # only the timed rounds count
        rules.seconds = features.seconds = evaluators["snapshot"].seconds = 0.0
    for _ in range(args.rounds):
        for k, evaluator in evaluators.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                list(runs[k].play_move(evaluator))
            seconds[k] += time.perf_counter() - t0
    positions = num_games * args.steps * args.rounds
    s = config.search
    m = config.muzero
    network = (f"MuZero latent {m.latent_channels}, {m.representation_blocks}/{m.dynamics_blocks}/"
               f"{m.prediction_blocks} blocks" if muzero
               else f"{config.model.blocks}x{config.model.channels} net")
    label = (f"{name} self-play, {network}, "
             f"{num_games} games x {s.num_simulations} {s.algorithm} sims, "
             f"{args.threads} thread(s), {args.device}{precision_label(args.device, args.precision)}")
    yield Measurement(name=label, value=positions / seconds["snapshot"], unit="positions/s",
                      baseline="same, eager torch evaluator (no BN folding)",
                      baseline_value=positions / seconds["eager"])
    if "fp32 snapshot" in seconds:
        yield Measurement(name=label, value=positions / seconds["snapshot"], unit="positions/s",
                          baseline="same, fp32 snapshot",
                          baseline_value=positions / seconds["fp32 snapshot"])
    if split:
        total = seconds["snapshot"]
        network = evaluators["snapshot"].seconds - features.seconds
        shares = {"the network's forward passes": network,
                  "the rules (game calls of self-play and the search)": rules.seconds,
                  "the observation features": features.seconds,
                  "the rest (C++ search, records, glue)": total - network - rules.seconds
                  - features.seconds}
        for what, spent in shares.items():
            yield Measurement(name=f"{label}: share of its time in {what}", value=spent / total,
                              unit="fraction")


def measure(args: argparse.Namespace) -> Iterator[Measurement]:
    if args.ckpt is not None and len(args.game) != 1:
        raise ValueError("--ckpt needs exactly one --game")
    torch.set_num_threads(args.threads)
    for name in args.game:
        yield from measure_game(name, args)
