"""A player that picks a uniformly random legal move."""
from __future__ import annotations

import numpy as np

from .base import Decision


def random_legal_actions(legal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """legal bool [B, A] (each row non-empty) -> int64 [B], uniform over each row's legal actions."""
    return np.where(legal, rng.random(legal.shape), -1.0).argmax(axis=1)


class RandomPlayer:
    def __init__(self, game, seed: int = 0, name: str = "random"):
        self.game = game
        self.name = name
        self._rng = np.random.default_rng(seed)

    def begin(self, batch_size: int) -> None:
        pass

    def reset(self, rows: np.ndarray | None = None) -> None:
        pass

    def act(self, states: np.ndarray, active: np.ndarray) -> Decision:
        actions = np.zeros(len(states), dtype=np.int64)
        rows = np.flatnonzero(active)
        if len(rows):
            actions[rows] = random_legal_actions(self.game.legal_mask(states[rows]), self._rng)
        return Decision(actions)

    def observe(self, actions: np.ndarray, active: np.ndarray) -> None:
        pass
