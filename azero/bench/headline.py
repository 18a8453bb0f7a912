"""headline figures in one run: rules vs OpenSpiel, search vs mctx, net, train, selfplay, solver

`azero bench all --markdown` prints the table that opens BENCHMARKS.md. Each part is one
`azero bench TARGET ...` command at sizes chosen to finish in a few minutes on 2 cores; every row
carries that command, so any figure can be measured again alone, and at larger sizes.
Parts (peers are outside code; baselines our own other path, both measured in the same run):
  * rules: every game's random playouts, against OpenSpiel's C++ (Connect Four, Go 9x9);
  * net: inference at batch 128 on the CPU, one thread, against our eager fp32 evaluator
    (baseline);
  * train: the optimizer step and the loop's sample + step at the configs' batch on the CPU, one
    thread;
  * selfplay: one self-play process, the configs' nets and searches (baseline: eager evaluator);
  * search: 256 trees x 32 simulations, PUCT and Gumbel, 7 and 82 actions, against mctx (when
    installed);
  * solver: each bundled network's decisive accuracy against its game's perfect-play set (Connect
    Four's), for the games that have one.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from azero import games
from azero.bench import TARGETS, target_parser
from azero.bench.report import Measurement


@dataclass(frozen=True)
class Part:
    target: str                                   # an `azero bench` target
    argv: tuple[str, ...]                         # its arguments
    keep: Callable[[Measurement], bool] = lambda m: True   # which of its rows are headline rows


def _solver_headline(m: Measurement) -> bool:
    """The solver's overall decisive accuracy (raw policy and search), not its per-stage rows."""
    return "decisive accuracy" in m.name and ", all " in m.name


def _bundled(name: str) -> str | None:
    """The checkpoint shipped for game `name` (None if there is none), relative to the working
    directory when inside it, so that the command in the table reads the same on every checkout."""
    from azero.players import PlayerSpecError, bundled_checkpoint
    try:
        path = bundled_checkpoint(name)
    except PlayerSpecError:
        return None
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


def parts(smoke: bool) -> list[Part]:
    """The headline commands over every registered game; `smoke`: the same parts at sizes that
    take seconds (the first game only, its tiny config, no mctx), for testing the table, not for
    figures."""
    from azero.bench.solver import games_with_solved_positions
    from azero.config import bundled_config_names
    solved = [(name, ckpt) for name in games_with_solved_positions()
              if (ckpt := _bundled(name)) is not None]
    if smoke:
        name = games.default_name()
        tiny = f"{name}_tiny"
        if tiny not in bundled_config_names():
            raise ValueError(f"--smoke needs a bundled config {tiny!r}")
        return [
            Part("rules", ("--game", name, "--seconds", "0.02", "--repeats", "1",
                           "--batch", "64")),
            Part("search", ("--batch", "8", "--simulations", "4", "--actions", "7",
                            "--algorithms", "gumbel", "--no-peer", "--seconds", "0.01")),
            Part("net", ("--game", tiny, "--batch", "8", "--seconds", "0.01", "--rounds", "1")),
            Part("train", ("--game", tiny, "--batch", "16", "--steps", "1", "--rounds", "1",
                           "--positions", "300")),
            Part("selfplay", ("--game", tiny, "--games", "4", "--steps", "1", "--rounds", "1")),
            *(Part("solver", ("--game", name, "--ckpt", ckpt, "--sims", "2"),
                   keep=_solver_headline) for name, ckpt in solved[:1]),
        ]
    every = tuple(games.names())
    # One torch thread, as each self-play worker has: with two on a shared 2-core machine, a
    # neighbour's load swung bench net's figures 10x between two runs a minute apart (one
    # thread: within 6%). The search, whose JAX peer leaves threads busy after it, comes after
    # the torch figures.
    return [
        *(Part("rules", ("--game", name, "--seconds", "2", "--repeats", "3")) for name in every),
        Part("net", ("--game", *every, "--batch", "128", "--seconds", "0.5", "--threads", "1")),
        Part("train", ("--game", *every, "--steps", "4", "--positions", "4096",
                       "--threads", "1")),
        Part("selfplay", ("--game", *every, "--steps", "2", "--rounds", "2")),
        Part("search", ("--quick",)),
        *(Part("solver", ("--game", name, "--ckpt", ckpt), keep=_solver_headline)
          for name, ckpt in solved),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes that finish in seconds: checks the table, not figures")


def measure(args: argparse.Namespace) -> Iterator[Measurement]:
    for part in parts(args.smoke):
        part_args = target_parser(part.target).parse_args(part.argv)
        command = shlex.join(["azero", "bench", part.target, *part.argv])
        print(f"azero bench all: {command}", file=sys.stderr, flush=True)
        kept = 0
        for m in importlib.import_module(TARGETS[part.target]).measure(part_args):
            if part.keep(m):
                kept += 1
                yield replace(m, command=command)
        if kept == 0:
            raise RuntimeError(f"`{command}` gave no headline figure (were its rows renamed?)")
