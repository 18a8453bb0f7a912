"""`azero bench {rules,search,net,train,selfplay,solver,perft,all}`: measured figures as a table,
`--json` lines or a `--markdown` table (each row with its date, machine and command)."""
from __future__ import annotations

import argparse
import importlib
import sys

from azero.bench import TARGETS, command_line, target_parser
from azero.bench.report import (describe_machine, stamped, write_json_lines, write_markdown,
                                write_table)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "bench", help="measure speed and strength, beside outside peers and our own baselines")
    targets = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for name, module_name in TARGETS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as e:
            if e.name != module_name:
                raise
            continue
        p = targets.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(func=run, bench_module=module)
        output = p.add_mutually_exclusive_group()
        output.add_argument("--json", action="store_true", help="one JSON object per line")
        output.add_argument("--markdown", action="store_true",
                            help="a markdown table; each row with its date, machine and command")


def run(args: argparse.Namespace) -> int:
    # The target's own arguments only (the output flags say how, not what, it measures).
    command = command_line(args.target, target_parser(args.target), args)
    machine = describe_machine()
    measurements = []
    try:
        for m in args.bench_module.measure(args):
            m = stamped(m, command=command, machine=machine)
            measurements.append(m)
            if args.json:
                write_json_lines([m], sys.stdout)
    except ValueError as e:          # a bad argument value: said in one line, not a traceback
        print(f"azero bench {args.target}: {e}", file=sys.stderr)
        return 2
    if args.markdown:
        write_markdown(measurements, sys.stdout)
    elif not args.json:
        write_table(measurements, sys.stdout)
    return 0
