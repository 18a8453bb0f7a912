"""Network inference throughput: positions per second through the evaluator the search calls, by
batch size (observation encoding, host-device copies and the forward pass, all included).

Ours is the inference snapshot self-play uses (BatchNorm folded; on a CPU channels-last and, where
the CPU computes bf16 in hardware, bf16 weights; bf16 autocast on a GPU); the baselines (our own
other paths, not a peer) are the same network through the plain eager evaluator in fp32 and,
when the snapshot is not fp32 already, the fp32 snapshot, timed alternately in the same run. The network is the config's
architecture with random weights (or `--ckpt`); the positions come from random games, so the
input is the real encoding.
"""
from __future__ import annotations

import argparse
import time
from typing import Iterator

import numpy as np
import torch

from azero import games
from azero.bench import add_threads_argument, apply_threads
from azero.bench.report import Measurement
from azero.nets.runtime import PRECISIONS, inference_weight_dtype


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--game", nargs="+", default=games.names(),
                        help="configs to measure (bundled config names; default: every game's)")
    parser.add_argument("--ckpt", default=None, help="a checkpoint instead of random weights "
                        "(only with a single --game)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 128, 1024],
                        help="positions per evaluator call")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="minimum timed seconds per batch size and evaluator, per round")
    parser.add_argument("--rounds", type=int, default=2,
                        help="timed rounds, alternating the two evaluators (best round counts)")
    add_threads_argument(parser)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--try", dest="variants", nargs="+", default=[], choices=sorted(VARIANTS),
                        help="also time these ways of running the snapshot, each against the "
                        "fp32 snapshot (measured and not adopted: BENCHMARKS.md)")
    add_precision_argument(parser)


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--precision", default=None, choices=PRECISIONS,
                        help="the snapshot's weights on a CPU (default: auto, or "
                        "$AZERO_INFERENCE_PRECISION: bf16 where the CPU has native bf16)")


def snapshot_evaluators(net, game, device, precision: str | None, wrap=lambda e: e,
                        make=None) -> dict:
    """{"snapshot": the inference snapshot at `precision`} plus, when that snapshot's weights are
    not fp32, {"fp32 snapshot": the same at fp32}, the baseline its precision is judged by.
    wrap(evaluator) may put a timing proxy around the main snapshot. make(net, game, device,
    snapshot=, precision=) builds each (default: azero.nets.make_evaluator; a MuZero net's
    bench passes MuZeroEvaluator)."""
    if make is None:
        from azero.nets import make_evaluator as make
    out = {"snapshot": wrap(make(net, game, device, snapshot=True, precision=precision))}
    if inference_weight_dtype(torch.device(device), precision) != torch.float32:
        out["fp32 snapshot"] = make(net, game, device, snapshot=True, precision="fp32")
    return out


def precision_label(device, precision: str | None) -> str:
    """"" for fp32 snapshots, else " bfloat16" (what a measurement's name gets appended)."""
    weights = inference_weight_dtype(torch.device(device), precision)
    return "" if weights == torch.float32 else f" {str(weights).removeprefix('torch.')}"


def _int8_dynamic(module: torch.nn.Module) -> torch.nn.Module:
    """torch's dynamic int8 quantization (it covers the Linear layers: the heads, not the
    convolutions)."""
    return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)


# --try variants: name -> (snapshot precision, transform of the prepared snapshot module)
VARIANTS = {
    "int8-dynamic": ("fp32", _int8_dynamic),
    "compile": ("fp32", torch.compile),
    "compile-bf16": ("bf16", torch.compile),
}


def random_positions(game, count: int, rng: np.random.Generator, min_plies: int = 60) -> np.ndarray:
    """[count, S] non-terminal positions drawn from uniformly random games: at most 256 games
    side by side, restarted when they end, for at least `min_plies` plies (so that late positions
    are among them, not only the first moves), then `count` of the positions met."""
    from azero.players.random_player import random_legal_actions
    found = []
    states = game.initial_states(min(count, 256))
    for _ in range(max(min_plies, -(-count // len(states)))):
        found.append(states.copy())
        states = game.step(states, random_legal_actions(game.legal_mask(states), rng))
        over = game.terminal(states)
        states[over] = game.initial_states(int(over.sum()))
    pool = np.concatenate(found)
    return pool[rng.choice(len(pool), size=count, replace=False)]


def _rate(evaluate, states: np.ndarray, batch: int, min_seconds: float) -> float:
    """Positions per second of evaluate() over consecutive batches of `states`."""
    calls = done = 0
    t0 = time.perf_counter()
    while True:
        start = (calls * batch) % (len(states) - batch + 1)
        evaluate(states[start:start + batch])
        calls += 1
        done += batch
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return done / elapsed


def bench_net(config, game, ckpt_path: str | None, device):
    """The net a benchmark runs: `ckpt_path`'s, else the config's architecture with random weights
    (BatchNorm statistics randomised so that folding them is not a no-op), in eval mode."""
    if ckpt_path is not None:
        from azero import checkpoint
        return checkpoint.load(ckpt_path, expected_game=game.spec.name, device=device).model
    from azero.nets import make_muzero_net, make_net
    torch.manual_seed(0)
    net = (make_muzero_net(game.spec, config.model, config.muzero)
           if config.algorithm == "muzero" else make_net(game.spec, config.model))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return net.to(device).eval()


def measure_game(name: str, args: argparse.Namespace) -> Iterator[Measurement]:
    from azero.config import load_config
    from azero.nets import make_evaluator, resolve_device

    config = load_config(name)
    game = config.make_game()
    device = resolve_device(args.device)
    net = bench_net(config, game, args.ckpt, device)
    evaluators = {**snapshot_evaluators(net, game, device, args.precision),
                  "eager": make_evaluator(net, game, device, amp=False)}
    rng = np.random.default_rng(0)
    states = random_positions(game, 2 * max(args.batch), rng)
    for variant in args.variants:
        precision, transform = VARIANTS[variant]
        evaluators[variant] = make_evaluator(net, game, device, snapshot=True,
                                             precision=precision, transform=transform)
    arch = f"{config.model.blocks}x{config.model.channels}"
    for batch in args.batch:
        best = dict.fromkeys(evaluators, 0.0)
        warm_up = {}
        for k, evaluate in evaluators.items():          # warm-up: first calls, allocations
            t0 = time.perf_counter()                    # (torch.compile compiles here)
            evaluate(states[:batch])
            warm_up[k] = time.perf_counter() - t0
        for _ in range(args.rounds):
            for k, evaluate in evaluators.items():
                best[k] = max(best[k], _rate(evaluate, states, batch, args.seconds))
        label = (f"{name} {arch} net inference, batch {batch}, {device}"
                 f"{precision_label(device, args.precision)}")
        yield Measurement(name=label, value=best["snapshot"], unit="positions/s",
                          baseline="same net, eager fp32 evaluator", baseline_value=best["eager"])
        if "fp32 snapshot" in best:
            yield Measurement(name=label, value=best["snapshot"], unit="positions/s",
                              baseline="same net, fp32 snapshot",
                              baseline_value=best["fp32 snapshot"])
        for variant in args.variants:
            yield Measurement(
                name=f"{name} {arch} net inference, batch {batch}, {device} {variant} "
                     f"(first call {warm_up[variant]:.1f} s)",
                value=best[variant], unit="positions/s", baseline="same net, fp32 snapshot",
                baseline_value=best.get("fp32 snapshot", best["snapshot"]))


def measure(args: argparse.Namespace) -> Iterator[Measurement]:
    if args.ckpt is not None and len(args.game) != 1:
        raise ValueError("--ckpt needs exactly one --game")
    if min(args.batch) < 1:
        raise ValueError(f"--batch: sizes must be >= 1, got {min(args.batch)}")
    apply_threads(args)
    for name in args.game:
        yield from measure_game(name, args)
