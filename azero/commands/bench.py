"""`azero bench {rules,search,net,train,selfplay,solver}`: measured figures as a table, or `--json` lines."""
from __future__ import annotations

import argparse
import importlib
import sys

from azero.bench.report import write_json_lines, write_table

# bench target -> module in azero.bench providing `add_arguments(parser)` and
# `measure(args) -> Iterable[Measurement]`.
_TARGETS = {
    "rules": "azero.bench.rules",
    "search": "azero.bench.search",
    "net": "azero.bench.net",
    "train": "azero.bench.train",
    "selfplay": "azero.bench.selfplay",
    "solver": "azero.bench.solver",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="measure speed and strength, beside peers")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, module_name in _TARGETS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue
        p = targets.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        p.add_argument("--json", action="store_true", help="one JSON object per line")
        module.add_arguments(p)
        p.set_defaults(func=run, bench_module=module)


def run(args: argparse.Namespace) -> int:
    measurements = []
    try:
        for m in args.bench_module.measure(args):
            measurements.append(m)
            if args.json:
                write_json_lines([m], sys.stdout)
    except ValueError as e:          # a bad argument value: said in one line, not a traceback
        print(f"azero bench {args.target}: {e}", file=sys.stderr)
        return 2
    if not args.json:
        write_table(measurements, sys.stdout)
    return 0
