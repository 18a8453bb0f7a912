"""The player interface that matches, the terminal and the benchmarks drive.

A player chooses moves for a batch of games played in lockstep. Row b of every array is one game;
a player owns whatever per-row state it needs (a search tree per row) and keeps it in step with
the games through `observe`, which it is told after EVERY move in a row, its own and the
opponent's, so a search player can reuse the subtree of the move actually played.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from azero.search import SearchOutput


@dataclass
class Decision:
    actions: np.ndarray                      # int [B]; meaningful only in the rows asked for
    search: "SearchOutput | None" = None     # the search behind the moves (search players)
    resigned: np.ndarray | None = None       # bool [B]: rows where the player resigns instead
                                             # (its action there is ignored); None = no row

    def resigns(self, row: int = 0) -> bool:
        return self.resigned is not None and bool(self.resigned[row])


@runtime_checkable
class Player(Protocol):
    name: str

    def begin(self, batch_size: int) -> None:
        """Get ready for `batch_size` games side by side (drops every row's state)."""

    def reset(self, rows: np.ndarray | None = None) -> None:
        """A new game starts in these rows (all rows if None)."""

    def act(self, states: np.ndarray, active: np.ndarray) -> Decision:
        """states [B, S]; active bool [B]: the rows where this player is to move now (those rows
        are non-terminal; the others may hold anything)."""

    def observe(self, actions: np.ndarray, active: np.ndarray) -> None:
        """actions [B] were played in the rows where active [B] is True, by either side."""
