"""Players that choose moves with the batched search (azero.search): over a network evaluator
(a checkpoint), or plain MCTS with random rollouts as the evaluator."""
from __future__ import annotations

import numpy as np

from .base import Decision
from .random_player import random_legal_actions


class SearchPlayer:
    """One BatchedSearch over all rows, run on the rows where this player is to move, without
    noise and picking the best move (arena and human play); trees follow every move played."""

    def __init__(self, game, evaluator, config, seed: int = 0, name: str = "search"):
        self.game = game
        self.evaluator = evaluator
        self.config = config
        self.name = name
        self._seed = seed
        self._search = None

    def begin(self, batch_size: int) -> None:
        from azero.search import BatchedSearch
        self._search = BatchedSearch(self.game, self.config, batch_size, seed=self._seed)

    def _require_search(self, batch: int):
        if self._search is None:
            self.begin(batch)
        return self._search

    def reset(self, rows: np.ndarray | None = None) -> None:
        if self._search is not None:
            self._search.reset(None if rows is None else np.asarray(rows, dtype=np.int64))

    def act(self, states: np.ndarray, active: np.ndarray) -> Decision:
        search = self._require_search(len(states))
        out = search.run(states, self.evaluator, add_noise=False, temperature=0.0,
                         active=np.asarray(active, dtype=bool))
        return Decision(np.asarray(out.actions, dtype=np.int64), out)

    def observe(self, actions: np.ndarray, active: np.ndarray) -> None:
        search = self._require_search(len(actions))
        search.advance(np.asarray(actions, dtype=np.int64), np.asarray(active, dtype=bool))


class RolloutEvaluator:
    """Evaluator for plain MCTS: uniform priors (zero logits), and as the value the result of one
    uniformly random playout from each leaf, from the leaf's side to move. All leaves of a call are
    played out together through the batched game API."""

    def __init__(self, game, seed: int = 0):
        self.game = game
        self._rng = np.random.default_rng(seed)

    def __call__(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits = np.zeros((len(states), self.game.spec.num_actions), dtype=np.float32)
        return logits, random_playout_values(self.game, states, self._rng)


def random_playout_values(game, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """float32 [L]: the final result of a uniformly random playout from each state, from that
    state's side to move (+1 win, 0 draw, -1 loss)."""
    states = np.array(states, copy=True)
    mover = game.to_play(states)
    live = np.flatnonzero(~game.terminal(states))
    for _ in range(game.spec.max_game_length + 1):
        if len(live) == 0:
            break
        sub = states[live]
        sub = game.step(sub, random_legal_actions(game.legal_mask(sub), rng))
        states[live] = sub
        live = live[~game.terminal(sub)]
    else:
        raise RuntimeError(f"{game.spec.name}: a random playout outlasted "
                           f"max_game_length={game.spec.max_game_length}")
    result = game.result(states)
    return np.where(game.to_play(states) == mover, result, -result).astype(np.float32)
