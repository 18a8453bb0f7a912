"""Training throughput: samples per second of the trainer's optimizer step, by batch size, and of
the loop's whole step (replay sample with symmetry augmentation + optimizer step).

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
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


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


def measure_game(name: str, args: argparse.Namespace) -> Iterator[Measurement]:
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
        trainers = {"ours": Trainer.create(config, game, device)}
        if config.train.amp and training_autocast_dtype(device) is not None:
            fp32 = load_config(name, ["train.amp=false"])
            trainers["fp32"] = Trainer.create(fp32, game, device)
        for batch in args.batch or [config.train.batch_size]:
            fixed = buffer.sample(batch, rng)
            best = {k: 0.0 for k in trainers}
            loop = 0.0
            for trainer in trainers.values():            # warm-up: first calls, allocations
                trainer.train_step(fixed)
            for _ in range(args.rounds):
                for k, trainer in trainers.items():
                    best[k] = max(best[k], _rate(lambda: trainer.train_step(fixed), device,
                                                 args.steps, batch))
                ours = trainers["ours"]
                loop = max(loop, _rate(lambda: ours.train_step(buffer.sample(batch, rng)),
                                       device, args.steps, batch))
            fp32 = ("same step in fp32", best["fp32"]) if "fp32" in trainers else (None, None)
            yield Measurement(name=f"{name} {arch} optimizer step, batch {batch}, {device}",
                              value=best["ours"], unit="samples/s", baseline=fp32[0],
                              baseline_value=fp32[1])
            yield Measurement(name=f"{name} {arch} replay sample + optimizer step, batch {batch}, "
                              f"{device}", value=loop, unit="samples/s")


def measure(args: argparse.Namespace) -> Iterator[Measurement]:
    if args.batch is not None and min(args.batch) < 1:
        raise ValueError(f"--batch: sizes must be >= 1, got {min(args.batch)}")
    if args.positions < max(args.batch or [1]):
        raise ValueError(f"--positions {args.positions} is smaller than the largest batch")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    for name in args.game:
        yield from measure_game(name, args)
