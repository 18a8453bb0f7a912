"""Reanalyze (MuZero appendix H; MuZero Unplugged): fresh policy and value targets for stored
games from a new search of the NEWEST network, for a share of the training data.

Where it runs, and why: a step inside the trainer's process, before each training chunk
(azero.loop calls the algorithm's before_training hook), with the trainer's own network, and the
refreshed targets live in memory beside the replay:
  * the newest network is the trainer's, at every step, with no checkpoint to write or poll;
  * nothing goes to disk, so there is nothing to make atomic or to resume: a kill -9 loses only
    refreshed targets, and the resumed trainer recomputes them with a network at least as new
    (stalest games first, the never-refreshed ones before all others);
  * on this 2-core CPU a separate process would only take its share of the same cores; the
    pacing below keeps its cost proportional to the training it feeds.

What it does. `ReanalyzeBuffer` is a TrajectoryBuffer whose `sample` draws each window from the
refreshed games with probability `fraction` (muzero.reanalyze_fraction; Binomial(B, fraction) of
a batch of B) and from all games, with their self-play targets, otherwise. A refreshed shard is a
copy of the shard's rows with the policy and root value of every searched row replaced by a new
search's (MuZeroSearch over the trainer's network, root from the real position and its legal
mask, no root noise: the network's best estimate, not an exploration); the value targets are then
recomputed from them as for self-play data (muzero.td_steps: n-step targets bootstrap from the
refreshed root values; with td_steps null they stay the game's outcome, mixed with the refreshed
root values by selfplay.value_target_root_weight).

Which shard. `Reanalyzer` refreshes one shard at a time, the one with the stalest targets first
(never-refreshed shards oldest first, then by the training step of their last refresh) among
the shards with fewer than half the window's positions newer than them, in searches of
selfplay.games_per_worker positions, and publishes a shard's copy once all its windowed rows are
done. The half-window rule matters whenever Reanalyze refreshes fewer positions a step than
self-play adds (fraction < 1): stalest-first alone then fell behind to the window's oldest shard,
whose copy was evicted within a few steps or before its search was done (in a steady-state test,
47% of the searched positions were thrown away), and the refreshed share of every batch came
from those few positions. Now a copy stays in the window for at least another half window, and
at fraction 0.5 the copies hold about a quarter of the window.

Pacing: each optimizer step draws fraction x batch_size windows from refreshed games; for each
refreshed position to serve about as many windows as a self-play one (train_samples_per_position)
the trainer refreshes fraction x batch_size / train_samples_per_position positions per step
(whole searches of games_per_worker positions, when that many are owed).
"""
from __future__ import annotations

import time

import numpy as np

from ..replay import _Chunk
from .replay import MuZeroBatch, TrajectoryBuffer, _TrajectoryChunk


class ReanalyzeBuffer(TrajectoryBuffer):
    """A TrajectoryBuffer that samples a share `fraction` of its windows from the shards
    Reanalyze has refreshed (`publish`), with their refreshed targets. fraction 0, or no refreshed
    shard in the window: TrajectoryBuffer's sample, draw for draw."""

    def __init__(self, directory, game, window_positions: int, unroll_steps: int = 5,
                 td_steps: int | None = None, fraction: float = 0.0, root_weight: float = 0.0):
        super().__init__(directory, game, window_positions, unroll_steps, td_steps, root_weight)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
        self.fraction = float(fraction)
        self._fresh: dict[str, _TrajectoryChunk] = {}      # shard name -> refreshed copy
        self.refreshed_step: dict[str, int] = {}           # shard name -> step of its refresh
        # samples the refreshed copies with TrajectoryBuffer's sampler (its chunks are set to
        # the live copies before each draw; it reads no files)
        self._view = TrajectoryBuffer(directory, game, window_positions, unroll_steps, td_steps,
                                      root_weight)

    @property
    def chunks(self) -> list[_TrajectoryChunk]:
        """The shards in the window, oldest first (rows [start, n) of each are in it)."""
        return list(self._chunks)

    def refreshed(self) -> list[_TrajectoryChunk]:
        """The refreshed copies of the shards still in the window, their window start kept in
        step with the shard's (eviction); copies of evicted shards are dropped."""
        live = {c.name: c for c in self._chunks}
        for name in [n for n in self._fresh if n not in live]:
            del self._fresh[name]
            self.refreshed_step.pop(name, None)
        out = []
        for name, chunk in live.items():
            if name in self._fresh:
                self._fresh[name].start = chunk.start
                out.append(self._fresh[name])
        return out

    def publish(self, chunk: _TrajectoryChunk, policy: np.ndarray, root_value: np.ndarray,
                step: int) -> None:
        """Refreshed targets for a shard of the window: policy float32 [n, A] and root_value
        float32 [n] for all its rows (final rows: zero policy, value 0; rows before its window
        start are never sampled). The value targets are recomputed from them (td_steps)."""
        n = len(chunk.action)
        policy = np.asarray(policy, np.float32)
        if policy.shape != (n, self.game.spec.num_actions) or np.shape(root_value) != (n,):
            raise ValueError(f"refreshed targets of {chunk.name} have shapes {policy.shape} and "
                             f"{np.shape(root_value)}, want ({n}, {self.game.spec.num_actions}) "
                             f"and ({n},)")
        rows, actions = np.nonzero(policy)                 # sparse rows, as ReplayBuffer keeps them
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
        base = _Chunk(chunk.name, chunk.states, chunk.value, offsets, actions.astype(np.int32),
                      policy[rows, actions], start=chunk.start)
        extra = {"action": chunk.action, "reward": chunk.reward, "to_play": chunk.to_play,
                 "root_value": np.asarray(root_value, np.float32), "truncated": chunk.truncated}
        self._fresh[chunk.name] = _TrajectoryChunk(base, extra, self.td_steps, self.root_weight)
        self.refreshed_step[chunk.name] = int(step)

    def sample(self, batch_size: int, rng: np.random.Generator, *, augment: bool = True,
               future_observations: bool = False) -> MuZeroBatch:
        """TrajectoryBuffer.sample, with Binomial(batch_size, fraction) of the windows drawn
        (uniformly) from the refreshed shards, with their refreshed targets; those come first."""
        fresh = self.refreshed() if self.fraction > 0 else []
        if not fresh:
            return super().sample(batch_size, rng, augment=augment,
                                  future_observations=future_observations)
        n_fresh = int(rng.binomial(batch_size, self.fraction))
        parts = []
        if n_fresh:
            self._view._chunks = fresh
            parts.append(self._view.sample(n_fresh, rng, augment=augment,
                                           future_observations=future_observations))
        if batch_size - n_fresh:
            parts.append(super().sample(batch_size - n_fresh, rng, augment=augment,
                                        future_observations=future_observations))
        return MuZeroBatch(*(None if fields[0] is None else np.concatenate(fields)
                             for fields in zip(*parts)))


class Reanalyzer:
    """The trainer process's Reanalyze step: `reanalyzer(steps)` before a chunk of `steps`
    optimizer steps refreshes the positions those steps are owed (see the module docstring) and
    returns figures for the chunk's metrics record.

    net: the trainer's MuZeroNet itself (searched as it is at each call: the newest weights);
    search_config: the self-play search settings; batch_size: positions per search."""

    def __init__(self, net, game, buffer: ReanalyzeBuffer, search_config, *, batch_size: int,
                 positions_per_step: float, seed: int = 0, step_of=lambda: 0):
        from ..nets.muzero_evaluator import MuZeroEvaluator, MuZeroSearch

        self.game = game
        self.buffer = buffer
        self.batch_size = int(batch_size)
        self.positions_per_step = float(positions_per_step)
        self.evaluator = MuZeroEvaluator(net, game)         # the live net, never a snapshot
        self.search = MuZeroSearch(self.evaluator, search_config, self.batch_size, seed=seed)
        self.step_of = step_of                               # the trainer's step, for publish
        self._credit = 0.0                                   # positions owed
        self._work: _Work | None = None
        self.positions_refreshed = 0                         # since construction
        self.shards_refreshed = 0

    def __call__(self, steps: int) -> dict[str, float]:
        self._credit += steps * self.positions_per_step
        t0 = time.monotonic()
        done = 0
        while self._credit >= self.batch_size:
            n = self.refresh(self.batch_size)
            if n == 0:
                self._credit = 0.0            # nothing to refresh yet: owe nothing for it
                break
            self._credit -= n
            done += n
        return {"reanalyzed_positions": done, "reanalyze_seconds": time.monotonic() - t0,
                "reanalyzed_shards_live": len(self.buffer.refreshed())}

    def refresh(self, max_positions: int) -> int:
        """Search up to `max_positions` (<= batch_size) rows of the shard being refreshed (the
        stalest of the window's newer half, when none is under way); publish it once done.
        Returns the rows searched (0: nothing in the window)."""
        work = self._work
        live = {c.name: c for c in self.buffer.chunks}
        if work is None or work.chunk.name not in live or live[work.chunk.name] is not work.chunk:
            work = self._work = self._next(live)
            if work is None:
                return 0
        rows = work.rows[work.done:work.done + min(max_positions, self.batch_size)]
        policy, root_value = self.search_rows(work.chunk.states[rows])
        work.policy[rows] = policy
        work.root_value[rows] = root_value
        work.done += len(rows)
        if work.done == len(work.rows):
            self.buffer.publish(work.chunk, work.policy, work.root_value, self.step_of())
            self.shards_refreshed += 1
            self._work = None
        self.positions_refreshed += len(rows)
        return len(rows)

    def search_rows(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """states [n, S] (n <= batch_size, non-terminal real positions) -> (policy targets
        float32 [n, A], root values float32 [n]) of a fresh search without root noise."""
        n = len(states)
        padded = np.repeat(states[:1], self.batch_size, axis=0)
        padded[:n] = states
        active = np.zeros(self.batch_size, bool)
        active[:n] = True
        self.search.reset()
        out = self.search.run(padded, add_noise=False, active=active)
        return (np.asarray(out.policy_target[:n], np.float32),
                np.asarray(out.root_value[:n], np.float32))

    def _next(self, live: dict) -> "_Work | None":
        """The shard with the stalest targets among those with half the window or more still
        ahead of them: never refreshed (oldest first), then the one refreshed the longest ago."""
        steps = self.buffer.refreshed_step
        order = sorted(enumerate(self._long_lived(list(live.values()))),
                       key=lambda ic: (steps.get(ic[1].name, -1), ic[0]))
        for _, chunk in order:
            rows = chunk.sample_rows[chunk.sample_rows >= chunk.start]
            if len(rows):
                return _Work(chunk, rows, self.game.spec.num_actions)
        return None

    def _long_lived(self, chunks: list) -> list:
        """The shards of `chunks` (oldest first; the same order out) with fewer than half the
        window's positions newer than them: each stays in the window for at least another half
        window of self-play (why: the module docstring, "Which shard")."""
        half = self.buffer.window_positions / 2
        kept, newer = [], 0                      # newer: positions in the shards after this one
        for chunk in reversed(chunks):
            if newer >= half:
                break
            kept.append(chunk)
            newer += chunk.size
        return kept[::-1]


class _Work:
    """A shard being refreshed: its searched rows in the window and the targets so far."""

    def __init__(self, chunk: _TrajectoryChunk, rows: np.ndarray, num_actions: int):
        self.chunk = chunk
        self.rows = rows                                            # int64 [m]
        n = len(chunk.action)
        self.policy = np.zeros((n, num_actions), np.float32)        # [n, A]
        self.root_value = np.zeros(n, np.float32)                   # [n]
        self.done = 0


__all__ = ["ReanalyzeBuffer", "Reanalyzer"]
