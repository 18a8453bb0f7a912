"""Benchmarks behind `azero bench`: each target's module provides `add_arguments(parser)` and
`measure(args) -> Iterable[Measurement]` (azero/bench/report.py)."""
from __future__ import annotations

import argparse
import importlib
import shlex

# bench target -> its module
TARGETS = {
    "rules": "azero.bench.rules",
    "search": "azero.bench.search",
    "net": "azero.bench.net",
    "train": "azero.bench.train",
    "selfplay": "azero.bench.selfplay",
    "solver": "azero.bench.solver",
    "perft": "azero.bench.perft",
    "all": "azero.bench.headline",
}


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """--threads for a target whose figures come from torch operators (apply_threads)."""
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own choice; beside a training "
                             "run, 1 is faster)")


def apply_threads(args: argparse.Namespace) -> None:
    """torch at --threads threads (add_threads_argument), where given; ValueError below 1."""
    if args.threads is None:
        return
    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    import torch
    torch.set_num_threads(args.threads)


def target_parser(target: str) -> argparse.ArgumentParser:
    """A parser of `azero bench TARGET`'s own arguments (without the output flags)."""
    module = importlib.import_module(TARGETS[target])
    parser = argparse.ArgumentParser(prog=f"azero bench {target}")
    module.add_arguments(parser)
    return parser


def command_line(target: str, parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """`azero bench TARGET ...` naming every argument of `parser` whose value in `args` differs
    from its default: parsing it again with `parser` gives the same values."""
    words = ["azero", "bench", target]
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        option = action.option_strings[-1]
        if isinstance(action, argparse._StoreConstAction):    # store_true / store_false
            words.append(option)
        elif isinstance(value, (list, tuple)):
            words += [option, *map(str, value)]
        else:
            words += [option, str(value)]
    return shlex.join(words)
