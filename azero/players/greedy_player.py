"""A 1-ply greedy player: a fixed, weak and cheap anchor.

It plays the legal move with the highest immediate score by the game's own measure, the registry
hook `greedy_scores` (games/__init__.py): a callable (game, states [R, S]) -> float [R, A], higher
is better, read at legal actions only (chess: mate in one first, else the most material won by
the move; games/chess/greedy.py). Ties, the common case, are broken uniformly at random by the
player's own generator, so its games are repeatable given the seed. It looks no further than its
own move: it takes a defended queen with its own.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .base import Decision
from .random_player import RandomPlayer, random_legal_actions


def greedy_scores_of(game) -> Callable[[object, np.ndarray], np.ndarray]:
    """The game's move measure (registry hook `greedy_scores`). ValueError for a game without
    one, naming the games that have one."""
    from azero.games import entry, hook, names
    scores = hook(game.spec.name, "greedy_scores")
    if scores is None:
        having = [name for name in names() if entry(name).greedy_scores]
        raise ValueError(f"greedy: {game.spec.name} has no move measure for a greedy player "
                         f"(registry hook greedy_scores); games with one: "
                         f"{', '.join(having) or 'none'}")
    return scores


class GreedyPlayer(RandomPlayer):
    """RandomPlayer's draw, narrowed to the best-scoring legal moves of each row."""

    def __init__(self, game, seed: int = 0, name: str = "greedy"):
        super().__init__(game, seed=seed, name=name)
        self._scores = greedy_scores_of(game)

    def act(self, states: np.ndarray, active: np.ndarray) -> Decision:
        actions = np.zeros(len(states), dtype=np.int64)
        rows = np.flatnonzero(active)
        if len(rows):
            legal = self.game.legal_mask(states[rows])                      # bool [R, A]
            scores = np.where(legal, self._scores(self.game, states[rows]), -np.inf)
            best = legal & (scores == scores.max(axis=1, keepdims=True))    # bool [R, A]
            actions[rows] = random_legal_actions(best, self._rng)
        return Decision(actions)
