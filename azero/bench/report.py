"""One measured figure, optionally beside the same figure for a peer measured in the same run,
and the two output formats of `azero bench`: a table, and one JSON object per line."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Iterable, TextIO


@dataclass(frozen=True)
class Measurement:
    name: str                        # e.g. "connect4 random playouts, batched, 1 core"
    value: float
    unit: str                        # e.g. "moves/s", "sims/s", "fraction"
    peer: str | None = None          # e.g. "open_spiel connect_four (C++)"
    peer_value: float | None = None  # the peer's figure, same run, same machine

    @property
    def ratio(self) -> float | None:
        """Ours over the peer's (higher is better for rates); None without a peer figure."""
        if self.peer_value is None or self.peer_value == 0 or math.isnan(self.peer_value):
            return None
        return self.value / self.peer_value

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "peer": self.peer,
            "peer_value": self.peer_value,
            "ratio": self.ratio,
        }


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.3f}"


def write_json_lines(measurements: Iterable[Measurement], out: TextIO) -> None:
    for m in measurements:
        out.write(json.dumps(m.as_dict()) + "\n")
        out.flush()


def write_table(measurements: Iterable[Measurement], out: TextIO) -> None:
    rows = [
        (m.name, _fmt(m.value), m.unit, m.peer or "-", _fmt(m.peer_value),
         "-" if m.ratio is None else f"{m.ratio:.2f}x")
        for m in measurements
    ]
    header = ("benchmark", "ours", "unit", "peer", "peer value", "ratio")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    out.write(line + "\n" + "-" * len(line) + "\n")
    for r in rows:
        out.write("  ".join(c.ljust(w) if i in (0, 2, 3) else c.rjust(w)
                            for i, (c, w) in enumerate(zip(r, widths))) + "\n")
