"""Players that choose moves with the batched search (azero.search): over a network evaluator
(a checkpoint), or plain MCTS with random rollouts as the evaluator.

A search player can move under a time budget (`act(..., budget=seconds)`, as the GTP engine's
clock asks): the search then runs at most config.num_simulations simulations, fewer if the budget
runs out. A first small chunk (PROBE_SIMULATIONS) measures the speed when it is not yet known; then
the simulations that fit CHUNK_FRACTION of the time left at the measured speed, and a last chunk
for what is left, re-measured (the cost of a simulation varies; this keeps the overshoot small).
The chunks run on the same trees, so visits add up; with Gumbel each chunk does its own sequential
halving over the kept tree.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from .base import Decision
from .random_player import random_legal_actions

PROBE_SIMULATIONS = 8            # first chunk under a budget while the speed is not known yet
MAX_CHUNKS = 3                   # search runs per move under a budget
CHUNK_FRACTION = 0.75            # a chunk before the last plans for this share of the time left


class SearchPlayer:
    """One BatchedSearch over all rows, run on the rows where this player is to move, without
    noise and picking the best move (arena, human play, GTP); trees follow every move played."""

    def __init__(self, game, evaluator, config, seed: int = 0, name: str = "search"):
        self.game = game
        self.evaluator = evaluator
        self.config = config
        self.name = name
        self.seconds_per_simulation: float | None = None   # measured under budgets
        self.simulations = 0                                # run by the last `act`
        self._seed = seed
        self._search = None

    @property
    def max_simulations(self) -> int:
        return self.config.num_simulations

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

    def act(self, states: np.ndarray, active: np.ndarray, budget: float | None = None
            ) -> Decision:
        """states [B, S], active bool [B] (see Player.act). budget: seconds this call may take
        (None: config.num_simulations simulations; see the module docstring)."""
        search = self._require_search(len(states))
        active = np.asarray(active, dtype=bool)
        limit = self.max_simulations
        if budget is None:
            out, done = self._run(search, states, active, limit), limit
        else:
            deadline = time.monotonic() + budget
            out, done = None, 0
            for chunk in range(MAX_CHUNKS):
                if self.seconds_per_simulation is None:
                    n = min(PROBE_SIMULATIONS, limit - done)
                else:
                    share = 1.0 if chunk == MAX_CHUNKS - 1 else CHUNK_FRACTION
                    n = min(limit - done, int(share * (deadline - time.monotonic())
                                              / self.seconds_per_simulation))
                if out is None:
                    n = max(n, min(1, limit))     # always one search (0 sims if limit is 0)
                elif n < 1:
                    break
                out = self._run(search, states, active, n)
                done += n
                if done >= limit or time.monotonic() >= deadline:
                    break
        self.simulations = done
        return Decision(np.asarray(out.actions, dtype=np.int64), out)

    def _run(self, search, states: np.ndarray, active: np.ndarray, simulations: int):
        """One search of `simulations` on the kept trees; updates the measured speed."""
        # BatchedSearch reads the number of simulations from its config at each run; the other
        # settings are fixed when it is built and stay as they are.
        search.config = replace(self.config, num_simulations=int(simulations))
        t0 = time.monotonic()
        out = search.run(states, self.evaluator, add_noise=False, temperature=0.0, active=active)
        if simulations > 0:
            rate = (time.monotonic() - t0) / simulations
            prev = self.seconds_per_simulation
            self.seconds_per_simulation = rate if prev is None else 0.5 * (prev + rate)
        return out

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
    """float32 [L]: the outcome of a uniformly random playout from each state, from that state's
    side to move: +1 win, 0 draw, -1 loss for a playout the rules end; for one cut off by the
    move cap (game.truncated), the game's `adjudicate` where it has one (Go: its score of the
    board as it stands), else 0."""
    states = np.array(states, copy=True)
    mover = game.to_play(states)
    live = np.flatnonzero(~(game.terminal(states) | game.truncated(states)))
    for _ in range(game.spec.max_game_length + 1):
        if len(live) == 0:
            break
        sub = states[live]
        sub = game.step(sub, random_legal_actions(game.legal_mask(sub), rng))
        states[live] = sub
        live = live[~(game.terminal(sub) | game.truncated(sub))]
    else:
        raise RuntimeError(f"{game.spec.name}: a random playout outlasted "
                           f"max_game_length={game.spec.max_game_length}")
    value = game.result(states)
    cut = game.truncated(states)
    if cut.any():
        adjudicate = getattr(game, "adjudicate", None)
        value[cut] = adjudicate(states[cut]) if callable(adjudicate) else 0.0
    return np.where(game.to_play(states) == mover, value, -value).astype(np.float32)
