"""A player that searches a MuZero network's learned model (azero.nets.muzero_evaluator).

At each move the root comes from the REAL position: representation + prediction on its
observation, and the legal mask of the real game (the only place legality enters); below the
root the dynamics network alone. The tree follows every move played (advance), so the subtree of
the move actually played is reused, its root re-evaluated on the real position. Budgets, chunks
and the speed estimate are SearchPlayer's.
"""
from __future__ import annotations

from .search_player import SearchPlayer


class MuZeroPlayer(SearchPlayer):
    """SearchPlayer over a MuZeroEvaluator: its searcher is a MuZeroSearch (ModelSearch with
    BatchedSearch's face), so `act`, `observe`, `reset` and budgets work unchanged. `evaluator`
    is the MuZeroEvaluator, also an AlphaZero Evaluator of real states (the raw policy)."""

    def __init__(self, game, evaluator, config, seed: int = 0, name: str = "muzero"):
        super().__init__(game, evaluator, config, seed=seed, name=name)

    def begin(self, batch_size: int) -> None:
        from azero.nets.muzero_evaluator import MuZeroSearch
        self._search = MuZeroSearch(self.evaluator, self.config, batch_size, seed=self._seed)


__all__ = ["MuZeroPlayer"]
