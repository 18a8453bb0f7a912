"""One measured figure, optionally beside the same figure for an outside peer and for a baseline
of ours measured in the same run, and the output formats of `azero bench`: a table, one JSON
object per line, and a markdown table whose every row says when, where and by which command it
was measured.

A *peer* is outside code doing the same job (OpenSpiel, mctx, GNU Go, Stockfish...). A *baseline*
is our own other path or earlier code (the eager fp32 evaluator beside the inference snapshot,
the fp32 step beside autocast): a ratio against it says what a change of ours buys, not where we
stand among engines, so the two are never mixed.
"""
from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Iterable, TextIO


@dataclass(frozen=True)
class Measurement:
    name: str                            # e.g. "connect4 random playouts, batched, 1 core"
    value: float
    unit: str                            # e.g. "moves/s", "sims/s", "fraction"
    peer: str | None = None              # outside code, e.g. "open_spiel connect_four (C++)"
    peer_value: float | None = None      # the peer's figure, same run, same machine
    baseline: str | None = None          # our own other path, e.g. "eager fp32 evaluator"
    baseline_value: float | None = None  # the baseline's figure, same run, same machine
    # Stamped by the runner (`stamped`) as each figure is produced:
    date: str | None = None              # UTC, "YYYY-MM-DD HH:MM"
    machine: str | None = None           # describe_machine()
    command: str | None = None           # the `azero bench ...` command that reproduces it

    def __post_init__(self):
        if (self.peer_value is not None) and self.peer is None:
            raise ValueError(f"{self.name}: a peer figure without the peer's name")
        if (self.baseline_value is not None) and self.baseline is None:
            raise ValueError(f"{self.name}: a baseline figure without the baseline's name")

    @property
    def ratio(self) -> float | None:
        """Ours over the peer's (higher is better for rates); None without a peer figure."""
        return _ratio(self.value, self.peer_value)

    @property
    def baseline_ratio(self) -> float | None:
        """Ours over our baseline's; None without a baseline figure."""
        return _ratio(self.value, self.baseline_value)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "peer": self.peer,
            "peer_value": self.peer_value,
            "ratio": self.ratio,
            "baseline": self.baseline,
            "baseline_value": self.baseline_value,
            "baseline_ratio": self.baseline_ratio,
            "date": self.date,
            "machine": self.machine,
            "command": self.command,
        }


def _ratio(ours: float, other: float | None) -> float | None:
    if other is None or other == 0 or math.isnan(other):
        return None
    return ours / other


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")


def describe_machine() -> str:
    """e.g. "2 cores AMD EPYC, 23 GiB, no GPU": the cores this process may use, the CPU model,
    the memory, and the first CUDA device if torch sees one."""
    from azero.nets.runtime import available_cpus
    cores = available_cpus()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [f"{cores} cores {cpu}".strip()]
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        parts.append(f"{memory / 2**30:.0f} GiB")
    except (AttributeError, ValueError, OSError):
        pass
    try:
        import torch
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        gpu = None
    parts.append(gpu or "no GPU")
    return ", ".join(parts)


def stamped(m: Measurement, *, command: str, machine: str) -> Measurement:
    """`m` with the time it was produced (now), the machine and its command; a command the
    measurement already carries (set by `azero bench all`) is kept."""
    return replace(m, date=utc_now(), machine=machine, command=m.command or command)


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3f}"


def _fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x"


def write_json_lines(measurements: Iterable[Measurement], out: TextIO) -> None:
    for m in measurements:
        out.write(json.dumps(m.as_dict()) + "\n")
        out.flush()


def write_table(measurements: Iterable[Measurement], out: TextIO) -> None:
    """A plain-text table; the baseline columns appear only when some row has a baseline."""
    measurements = list(measurements)
    header = ["benchmark", "ours", "unit", "peer", "peer value", "ratio"]
    with_baseline = any(m.baseline is not None for m in measurements)
    if with_baseline:
        header += ["baseline (ours)", "baseline value", "vs baseline"]
    rows = []
    for m in measurements:
        row = [m.name, _fmt(m.value), m.unit, m.peer or "-", _fmt(m.peer_value),
               _fmt_ratio(m.ratio)]
        if with_baseline:
            row += [m.baseline or "-", _fmt(m.baseline_value), _fmt_ratio(m.baseline_ratio)]
        rows.append(row)
    left_aligned = {0, 2, 3, 6}                  # text columns; numbers are right-aligned
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out.write(line + "\n" + "-" * len(line) + "\n")
    for r in rows:
        out.write("  ".join(c.ljust(w) if i in left_aligned else c.rjust(w)
                            for i, (c, w) in enumerate(zip(r, widths))).rstrip() + "\n")


MARKDOWN_HEADER = ("figure", "ours", "compared with (same run, same machine)", "its figure",
                   "ours / its", "date (UTC)", "machine", "command")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_markdown(measurements: Iterable[Measurement], out: TextIO) -> None:
    """A markdown table, one row per figure, with its date, machine and command. The comparison
    columns name a peer as "peer: ..." and a baseline of ours as "baseline (ours): ...", one
    line each where a row has both."""
    out.write("| " + " | ".join(MARKDOWN_HEADER) + " |\n")
    out.write("|---|---:|---|---:|---:|---|---|---|\n")
    for m in measurements:
        compared, figures, ratios = [], [], []
        for kind, who, value, ratio in (("peer", m.peer, m.peer_value, m.ratio),
                                        ("baseline (ours)", m.baseline, m.baseline_value,
                                         m.baseline_ratio)):
            if who is not None:
                compared.append(f"{kind}: {who}")
                figures.append(_fmt(value))
                ratios.append(_fmt_ratio(ratio))
        cells = [m.name, f"{_fmt(m.value)} {m.unit}", "<br>".join(compared) or "-",
                 "<br>".join(figures) or "-", "<br>".join(ratios) or "-", m.date or "-",
                 m.machine or "-", f"`{m.command}`" if m.command else "-"]
        out.write("| " + " | ".join(_cell(c) for c in cells) + " |\n")
