"""Training throughput: samples per second of the trainer's optimizer step, by batch size, and of
the loop's whole step (replay sample with symmetry augmentation + optimizer step, as the loop
runs it: Trainer.train_steps, with the batches sampled ahead on a thread under
train.prefetch_batches). `--prefetch N` times that loop step with N batches prefetched against
the same in series (prefetch 0) as its baseline; `--observation-batch` adds the positions per
second of the game's observation encoding (game.observation, what each sampled batch pays).

Ours is the trainer as the loop runs it (with `train.amp`, bf16 autocast on a GPU with bf16 or
a CPU with native bf16: runtime.training_autocast_dtype); there the baseline (our own other path,
not a peer) is the same step in fp32, timed alternately in the same run (elsewhere the step is
fp32 already, so no baseline). The replay store is a temporary one filled
with positions from random games (uniform policy targets, random results; ownership targets
where the config's net has that head): the cost of a step does not depend on what the targets
say.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from typing import Iterator

import numpy as np
import torch

from azero import games
from azero.bench import add_threads_argument, apply_threads
from azero.bench.report import Measurement


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--game", nargs="+", default=games.names(),
                        help="configs to measure (bundled config names; default: every game's)")
    parser.add_argument("--batch", type=int, nargs="+", default=None,
                        help="batch sizes (default: the config's train.batch_size)")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per timed round")
    parser.add_argument("--rounds", type=int, default=2,
                        help="timed rounds, alternating ours and the fp32 baseline "
                             "(best round counts)")
    parser.add_argument("--positions", type=int, default=20000,
                        help="positions in the temporary replay store")
    add_threads_argument(parser)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--prefetch", type=int, default=None,
                        help="time the loop step with this train.prefetch_batches against 0 "
                             "(sampling in series) as the baseline (default: the config's value, "
                             "no baseline)")
    parser.add_argument("--observation-batch", type=int, nargs="+", default=[],
                        help="also time game.observation at these batch sizes (positions/s)")


def _fill_replay(directory, game, config, positions: int, rng: np.random.Generator) -> None:
    from azero.bench.net import random_positions
    from azero.replay import write_shard
    states = random_positions(game, positions, rng)
    legal = game.legal_mask(states)
    policy = legal / legal.sum(axis=1, keepdims=True)
    value = rng.choice(np.array([-1.0, 0.0, 1.0], np.float32), size=positions)
    extra = {}
    if config.model.ownership_head:
        shape = (positions, *game.spec.board_shape)
        extra = {"ownership": rng.integers(-1, 2, size=shape).astype(np.int8),
                 "ownership_weight": np.ones(positions, np.uint8)}
    write_shard(directory, worker=0, seq=0, states=states, policy=policy, value=value,
                num_games=positions // 40, **extra)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(step, device: torch.device, steps: int, batch: int) -> float:
    """Samples per second of `steps` calls of step()."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def _observation_rate(game, states: np.ndarray, batch: int, steps: int, rounds: int) -> float:
    """Positions per second of game.observation over consecutive batches of `states` (best of
    `rounds` rounds of `steps` calls)."""
    best = 0.0
    game.observation(states[:batch])                    # compiled and warm
    for _ in range(rounds):
        t0 = time.perf_counter()
        for i in range(steps):
            start = (i * batch) % (len(states) - batch + 1)
            game.observation(states[start:start + batch])
        best = max(best, steps * batch / (time.perf_counter() - t0))
    return best


def measure_game(name: str, args: argparse.Namespace) -> Iterator[Measurement]:
    import dataclasses

    from azero.config import load_config
    from azero.nets import resolve_device
    from azero.nets.runtime import training_autocast_dtype
    from azero.replay import ReplayBuffer
    from azero.train import Trainer

    config = load_config(name)
    game = config.make_game()
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    arch = f"{config.model.blocks}x{config.model.channels}"
    with tempfile.TemporaryDirectory(prefix="azero-bench-train-") as tmp:
        _fill_replay(tmp, game, config, args.positions, rng)
        buffer = ReplayBuffer(tmp, game, args.positions)
        buffer.refresh()
        states = buffer.positions()[0] if args.observation_batch else None    # [n, S]
        for batch in args.observation_batch:
            yield Measurement(name=f"{name} observation encoding (game.observation), batch {batch}",
                              value=_observation_rate(game, states, batch, max(args.steps, 20),
                                                      max(args.rounds, 3)),
                              unit="positions/s")
        trainers = {"ours": Trainer.create(config, game, device)}
        if config.train.amp and training_autocast_dtype(device) is not None:
            fp32 = load_config(name, ["train.amp=false"])
            trainers["fp32"] = Trainer.create(fp32, game, device)
        for batch in args.batch or [config.train.batch_size]:
            fixed = buffer.sample(batch, rng)
            best = {k: 0.0 for k in trainers}
            for trainer in trainers.values():            # warm-up: first calls, allocations
                trainer.train_step(fixed)
            ours = trainers["ours"]
            # the loop step under each prefetch depth timed: ours first, in series as baseline
            prefetch = [config.train.prefetch_batches if args.prefetch is None else args.prefetch]
            if args.prefetch is not None and args.prefetch > 0:
                prefetch.append(0)
            loop = {depth: 0.0 for depth in prefetch}
            for depth in prefetch:                       # warm-up of the loop step
                ours.cfg = dataclasses.replace(ours.cfg, batch_size=batch, prefetch_batches=depth)
                ours.train_steps(buffer, 2, rng)
            for _ in range(args.rounds):
                for k, trainer in trainers.items():
                    best[k] = max(best[k], _rate(lambda: trainer.train_step(fixed), device,
                                                 args.steps, batch))
                for depth in prefetch:
                    ours.cfg = dataclasses.replace(ours.cfg, batch_size=batch,
                                                   prefetch_batches=depth)
                    loop[depth] = max(loop[depth], _rate(
                        lambda: ours.train_steps(buffer, args.steps, rng), device, 1,
                        args.steps * batch))
            fp32 = ("same step in fp32", best["fp32"]) if "fp32" in trainers else (None, None)
            yield Measurement(name=f"{name} {arch} optimizer step, batch {batch}, {device}",
                              value=best["ours"], unit="samples/s", baseline=fp32[0],
                              baseline_value=fp32[1])
            serial = ("same, sampled in series (prefetch 0)", loop[0]) if len(prefetch) > 1 \
                else (None, None)
            yield Measurement(name=f"{name} {arch} replay sample + optimizer step, batch {batch}, "
                              f"prefetch {prefetch[0]}, {device}", value=loop[prefetch[0]],
                              unit="samples/s", baseline=serial[0], baseline_value=serial[1])


def measure(args: argparse.Namespace) -> Iterator[Measurement]:
    if args.batch is not None and min(args.batch) < 1:
        raise ValueError(f"--batch: sizes must be >= 1, got {min(args.batch)}")
    if args.positions < max([*(args.batch or [1]), *args.observation_batch]):
        raise ValueError(f"--positions {args.positions} is smaller than the largest batch")
    if args.observation_batch and min(args.observation_batch) < 1:
        raise ValueError(f"--observation-batch: sizes must be >= 1, got "
                         f"{min(args.observation_batch)}")
    if args.prefetch is not None and args.prefetch < 0:
        raise ValueError(f"--prefetch must be >= 0, got {args.prefetch}")
    apply_threads(args)
    for name in args.game:
        yield from measure_game(name, args)
