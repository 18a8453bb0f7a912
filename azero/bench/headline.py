"""headline figures in one run: rules vs OpenSpiel, search vs mctx, net, train, selfplay, solver

`azero bench all --markdown` prints the table that opens BENCHMARKS.md. Each part is one
`azero bench TARGET ...` command at sizes chosen to finish in a few minutes on 2 cores; every row
carries that command, so any figure can be measured again alone, and at larger sizes.
Parts (peers are outside code; baselines our own other path, both measured in the same run):
  * rules: Connect Four and Go 9x9 random playouts, against OpenSpiel's C++;
  * search: 256 trees x 32 simulations, PUCT and Gumbel, 7 and 82 actions, against mctx (when
    installed);
  * net: inference at batch 128 on the CPU, against our eager fp32 evaluator (baseline);
  * train: the optimizer step and the loop's sample + step at the configs' batch on the CPU;
  * selfplay: one self-play process, the configs' nets and searches (baseline: eager evaluator);
  * solver: the bundled Connect Four network's decisive accuracy against perfect play.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
from dataclasses import dataclass, replace
from typing import Callable, Iterator

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


def _bundled_connect4() -> str:
    """The bundled Connect Four checkpoint, relative to the working directory when inside it
    (so that the command in the table reads the same on every checkout)."""
    from azero.players import bundled_checkpoint
    path = bundled_checkpoint("connect4")
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


def parts(smoke: bool) -> list[Part]:
    """The headline commands; `smoke`: the same parts at sizes that take seconds (tiny configs,
    no mctx), for testing the table, not for figures."""
    ckpt = _bundled_connect4()
    if smoke:
        return [
            Part("rules", ("--game", "connect4", "--seconds", "0.02", "--repeats", "1",
                           "--batch", "64")),
            Part("search", ("--batch", "8", "--simulations", "4", "--actions", "7",
                            "--algorithms", "gumbel", "--no-peer", "--seconds", "0.01")),
            Part("net", ("--game", "connect4_tiny", "--batch", "8", "--seconds", "0.01",
                         "--rounds", "1")),
            Part("train", ("--game", "connect4_tiny", "--batch", "16", "--steps", "1",
                           "--rounds", "1", "--positions", "300")),
            Part("selfplay", ("--game", "connect4_tiny", "--games", "4", "--steps", "1",
                              "--rounds", "1")),
            Part("solver", ("--ckpt", ckpt, "--sims", "2"), keep=_solver_headline),
        ]
    return [
        Part("rules", ("--game", "connect4", "--seconds", "1", "--repeats", "2")),
        Part("rules", ("--game", "go9", "--seconds", "1", "--repeats", "2")),
        Part("search", ("--quick",)),
        Part("net", ("--game", "connect4", "go9", "--batch", "128", "--seconds", "0.5")),
        Part("train", ("--game", "connect4", "go9", "--steps", "8", "--positions", "4096")),
        Part("selfplay", ("--game", "connect4", "go9", "--steps", "2", "--rounds", "2")),
        Part("solver", ("--ckpt", ckpt), keep=_solver_headline),
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
