"""Connect Four's perfect-play set (its registry hook `solved_positions`): positions solved
exactly, each with the score of every legal move.

The file is JSON lines in the form of shared/bench/connect4 (see its README; the 1000 dev
positions ship in azero/bench/data): "moves" (1-indexed column digits from the empty board),
"stage" (early / middle / late), "scores" (one per column, null where the column is full),
"optimal" and "value_preserving" (1-indexed columns). The scoring itself is generic
(azero/bench/solver.py).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

import azero.bench
from azero.bench.solver import SolvedPosition

# The dev set of shared/bench/connect4, shipped with the package (see data/README.md there).
DEFAULT_POSITIONS = Path(azero.bench.__file__).resolve().parent / "data" / "connect4_positions_dev.jsonl"


def load_positions(path: str | os.PathLike = DEFAULT_POSITIONS) -> list[SolvedPosition]:
    """The positions of a file in the shared/bench/connect4 form. FileNotFoundError if missing,
    ValueError naming the line of a malformed one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"solver positions {path} not found (pass --positions FILE)")
    out = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                out.append(SolvedPosition(
                    moves=obj["moves"], stage=obj["stage"],
                    legal=tuple(c for c, s in enumerate(obj["scores"]) if s is not None),
                    optimal=tuple(c - 1 for c in obj["optimal"]),
                    preserving=tuple(c - 1 for c in obj["value_preserving"])))
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{number}: not a solved position: {e}") from None
    return out


def position_states(game, positions: list[SolvedPosition]) -> np.ndarray:
    """[N, S] states of the positions; checks the file's legal columns against the rules."""
    states = np.stack([game.from_moves(p.moves) for p in positions])
    legal = game.legal_mask(states)
    for p, row in zip(positions, legal):
        if tuple(np.flatnonzero(row)) != p.legal:
            raise ValueError(f"position {p.moves!r}: the file's legal columns {p.legal} differ "
                             f"from the rules' {tuple(np.flatnonzero(row))}")
    return states


def solved_positions(game, path: str | os.PathLike | None = None
                     ) -> tuple[list[SolvedPosition], np.ndarray]:
    """The registry hook: (positions, their states [N, S]) of `path`, or of the shipped dev set."""
    positions = load_positions(DEFAULT_POSITIONS if path is None else path)
    return positions, position_states(game, positions)
