"""Reanalyze (MuZero appendix H; MuZero Unplugged): fresh policy and value targets for stored
games from a new search of the NEWEST network, for a share of the training data.

Where it runs, and why: in a worker process of its own beside the trainer and the self-play
workers (azero/muzero/reanalyze_worker.py), which searches with the trainer's newest weights
(handed over before every training chunk) and writes each refreshed shard's targets as a file
that the trainer's ReanalyzeBuffer reads between chunks. It first ran inside the trainer's
process, between chunks; on the 2-core CPU that held the trainer for half of each hour, the
pacer then paused self-play, and a core sat idle about a third of the time (BENCHMARKS.md,
"Reanalyze on against off at equal compute"). As a process it takes whatever core the others
leave.

What it does. `ReanalyzeBuffer` is a TrajectoryBuffer whose `sample` draws each window from the
refreshed games with probability `fraction` (muzero.reanalyze_fraction; Binomial(B, fraction) of
a batch of B) and from all games, with their self-play targets, otherwise. A refreshed shard is a
copy of the shard's rows with the policy and root value of every searched row replaced by a new
search's (MuZeroSearch over the newest network, root from the real position and its legal
mask, no root noise: the network's best estimate, not an exploration); the value targets are then
recomputed from them as for self-play data (muzero.td_steps: n-step targets bootstrap from the
refreshed root values; with td_steps null they stay the game's outcome, mixed with the refreshed
root values by selfplay.value_target_root_weight).

Which shard. `Reanalyzer` refreshes one shard at a time, the one with the stalest targets first
(never-refreshed shards oldest first, then by the training step of their last refresh) among
the shards with fewer than half the window's positions newer than them, in searches of
selfplay.games_per_worker positions, and publishes a shard's targets once all its windowed rows
are done. The half-window rule matters whenever Reanalyze refreshes fewer positions a step than
self-play adds (fraction < 1): stalest-first alone then fell behind to the window's oldest shard,
whose copy was evicted within a few steps or before its search was done (in a steady-state test,
47% of the searched positions were thrown away), and the refreshed share of every batch came
from those few positions. Now a copy stays in the window for at least another half window, and
at fraction 0.5 the copies hold about a quarter of the window.

Pacing: each optimizer step draws fraction x batch_size windows from refreshed games; for each
refreshed position to serve about as many windows as a self-play one (train_samples_per_position)
Reanalyze refreshes fraction x batch_size / train_samples_per_position positions per step the
trainer announces (whole searches of games_per_worker positions, when that many are owed).
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from ..replay import _Chunk
from .replay import MuZeroBatch, TrajectoryBuffer, _TrajectoryChunk


class ReanalyzeBuffer(TrajectoryBuffer):
    """A TrajectoryBuffer that samples a share `fraction` of its windows from the shards
    Reanalyze has refreshed (`publish`), with their refreshed targets. fraction 0, or no refreshed
    shard in the window: TrajectoryBuffer's sample, draw for draw."""

    def __init__(self, directory, game, window_positions: int, unroll_steps: int = 5,
                 td_steps: int | None = None, fraction: float = 0.0, root_weight: float = 0.0,
                 store=None):
        super().__init__(directory, game, window_positions, unroll_steps, td_steps, root_weight)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
        self.fraction = float(fraction)
        self._fresh: dict[str, _TrajectoryChunk] = {}      # shard name -> refreshed copy
        self.refreshed_step: dict[str, int] = {}           # shard name -> step of its refresh
        # where a Reanalyze worker writes its targets (reanalyze_worker.RefreshedTargets): read
        # on refresh(); None: only publish() brings refreshed targets
        self.store = store
        # samples the refreshed copies with TrajectoryBuffer's sampler (its chunks are set to
        # the live copies before each draw; it reads no files)
        self._view = TrajectoryBuffer(directory, game, window_positions, unroll_steps, td_steps,
                                      root_weight)

    def refresh(self) -> int:
        """TrajectoryBuffer.refresh, then the targets the store holds that are new since the last
        call, for the shards in the window (a shard the worker read before this buffer did is
        published at a later call; targets of the wrong shape are skipped with a warning).
        Returns the positions added, as TrajectoryBuffer's."""
        added = super().refresh()
        if self.store is not None:
            live = {c.name: c for c in self._chunks}
            for name, policy, root_value, step in self.store.read_new(live):
                try:
                    self.publish(live[name], policy, root_value, step)
                except ValueError as e:
                    warnings.warn(f"reanalyze: skipping {e}", RuntimeWarning, stacklevel=2)
        return added

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
    """The Reanalyze search: `reanalyzer(steps)` for `steps` optimizer steps announced refreshes
    the positions they are owed (see the module docstring) and returns figures of the call.

    net: a MuZeroNet, searched as it is at each call (the Reanalyze worker loads the newest
    weights into it); buffer: a TrajectoryBuffer, the window whose shards are refreshed;
    search_config: the self-play search settings; batch_size: positions per search; publish:
    publish(chunk, policy [n, A], root_value [n], step) of a shard's refreshed targets (default:
    buffer.publish, a ReanalyzeBuffer's); step_of: the network's training step, for publish."""

    def __init__(self, net, game, buffer, search_config, *, batch_size: int,
                 positions_per_step: float, seed: int = 0, step_of=lambda: 0, publish=None):
        from ..nets.muzero_evaluator import MuZeroEvaluator, MuZeroSearch

        self.game = game
        self.buffer = buffer
        self.publish = buffer.publish if publish is None else publish
        self.batch_size = int(batch_size)
        self.positions_per_step = float(positions_per_step)
        self.evaluator = MuZeroEvaluator(net, game)         # the live net, never a snapshot
        self.search = MuZeroSearch(self.evaluator, search_config, self.batch_size, seed=seed)
        self.step_of = step_of
        self.refreshed_step: dict[str, int] = {}             # shard name -> step of its refresh
        self._credit = 0.0                                   # positions owed
        self._work: _Work | None = None
        self.positions_refreshed = 0                         # since construction
        self.shards_refreshed = 0

    def __call__(self, steps: int, should_stop=lambda: False) -> dict[str, float]:
        """Add the positions `steps` steps are owed, then search while whole searches are owed
        and `should_stop()` is false (checked before each search; the credit left stays)."""
        self._credit += steps * self.positions_per_step
        t0 = time.monotonic()
        done = 0
        while self._credit >= self.batch_size and not should_stop():
            n = self.refresh(self.batch_size)
            if n == 0:
                self._credit = 0.0            # nothing to refresh yet: owe nothing for it
                break
            self._credit -= n
            done += n
        return {"reanalyzed_positions": done, "reanalyze_seconds": time.monotonic() - t0}

    @property
    def owed(self) -> bool:
        """Whether a whole search is owed."""
        return self._credit >= self.batch_size

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
            self.publish(work.chunk, work.policy, work.root_value, work.step)
            self.refreshed_step[work.chunk.name] = work.step
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
        for name in [n for n in self.refreshed_step if n not in live]:
            del self.refreshed_step[name]                  # evicted
        steps = self.refreshed_step
        order = sorted(enumerate(self._long_lived(list(live.values()))),
                       key=lambda ic: (steps.get(ic[1].name, -1), ic[0]))
        for _, chunk in order:
            rows = chunk.sample_rows[chunk.sample_rows >= chunk.start]
            if len(rows):
                return _Work(chunk, rows, self.game.spec.num_actions, int(self.step_of()))
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
    """A shard being refreshed: its searched rows in the window and the targets so far. `step`:
    the training step of the network of its first search; the shard is published as refreshed
    at that step even when newer weights searched its later rows (its oldest targets count)."""

    def __init__(self, chunk: _TrajectoryChunk, rows: np.ndarray, num_actions: int, step: int):
        self.chunk = chunk
        self.step = step
        self.rows = rows                                            # int64 [m]
        n = len(chunk.action)
        self.policy = np.zeros((n, num_actions), np.float32)        # [n, A]
        self.root_value = np.zeros(n, np.float32)                   # [n]
        self.done = 0


__all__ = ["ReanalyzeBuffer", "Reanalyzer"]
