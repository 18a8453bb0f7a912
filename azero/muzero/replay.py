"""MuZero's replay: whole games (trajectories) in atomic shards, sampled as K-step windows.

A trajectory shard is an ordinary replay shard (azero.replay.write_shard: hidden temp file, fsync,
rename; same names; no pickle) whose rows are every position of each game, its final position
included, in game order, with per-row fields beyond the usual ones. For a game of T moves
(positions 0..T, position T the final one), rows 0..T hold:

    states     state_dtype [T+1, S]  the positions (observations are computed for sampled rows only)
    policy     float32 [T+1, A]      search policy at rows 0..T-1; zeros on the final row
    value      float32 [T+1]         outcome from the side to move (the AlphaZero target: such a
                                     shard can be read as one); a truncated game's root values
    action     int32 [T+1]           the move played from the row; -1 on the final row, which
                                     marks the end of a game
    reward     float32 [T+1]         the reward of that move for the player who made it (board
                                     games: 0, the result on the last move); 0 on the final row
    to_play    int8 [T+1]            side to move
    root_value float32 [T+1]         the search's root value (side to move); 0 on the final row
    truncated  uint8 [T+1]           1 on every row of a game cut off by the move cap (its final
                                     row is not terminal: no absorbing targets after it)

`TrajectoryBuffer` reads them (resume = read the shards again) and samples windows of K + 1
consecutive positions starting at uniformly drawn non-final rows. Targets past a game's end are
absorbing states (value 0, reward 0, no policy: policy_mask 0) with random actions (as the
paper); past a truncated game's end nothing is known and every mask is 0.

Value targets (side to move at each row t; σ_i = ±1: whether to_play[i] is the same player as
to_play[t], so rewards and values flip sign between alternating players):
    z_t = Σ_{i=t}^{b-1} σ_i r_i + [b < e] σ_b root_value[b],  b = min(t + n, e)  (n = td_steps;
    None: b = e, the game's outcome)  for a game ending at row e; a truncated game bootstraps from
    its last searched row, b = min(t + n, e - 1). With a root weight w > 0
    (selfplay.value_target_root_weight, as for AlphaZero) a searched row's target is
    (1 - w) z_t + w root_value[t]: the search's own estimate of the row pulls the noisy outcome
    toward it (the change that took AlphaZero on Connect Four past 0.90 in BENCHMARKS.md).
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..replay import ReplayBuffer, ShardWriter, _Chunk, _transform_rows

TRAJECTORY_FIELDS = ("action", "reward", "to_play", "root_value", "truncated")


def trajectory_dir(run_dir: str | os.PathLike) -> Path:
    """Where a run's trajectory shards live (beside the AlphaZero `replay/`)."""
    return Path(run_dir) / "trajectories"


def outcome_rewards(to_play: np.ndarray, final_result: float) -> np.ndarray:
    """A board game's rewards: to_play int [T+1], final_result (the rules' result at the final
    position, for the side to move there) -> float32 [T]: 0 but on the last move, the result
    for the player who made it."""
    to_play = np.asarray(to_play)
    rewards = np.zeros(len(to_play) - 1, np.float32)
    if len(rewards):
        same = to_play[-2] == to_play[-1]
        rewards[-1] = final_result if same else -final_result
    return rewards


def value_targets(reward: np.ndarray, to_play: np.ndarray, root_value: np.ndarray,
                  end: np.ndarray, truncated: np.ndarray, td_steps: int | None,
                  root_weight: float = 0.0) -> np.ndarray:
    """float32 [n] value targets of every row of consecutive whole games (see the module
    docstring). reward, root_value float [n]; to_play int [n]; end int64 [n]: the final row of
    each row's game; truncated bool [n]; root_weight w in [0, 1]. Final rows get 0. Two-player
    sign convention: a reward or value of the other player counts negated."""
    n = len(reward)
    rows = np.arange(n)
    # σ relative to the player to move at each game's final row: s(t, i) = sigma[t] * sigma[i]
    sigma = np.where(to_play == to_play[end], 1.0, -1.0)
    cumulative = np.zeros(n + 1)                    # cumulative[i] = Σ_{j<i} sigma_j r_j
    np.cumsum(sigma * reward, out=cumulative[1:])
    last = np.where(truncated, end - 1, end)        # the last row a target may come from
    horizon = last if td_steps is None else np.minimum(rows + int(td_steps), last)
    bootstrap = (horizon < end) & (rows < end)      # a searched row, not the terminal one
    b = np.clip(horizon, rows, None)
    z = sigma * (cumulative[b] - cumulative[rows])
    z = z + np.where(bootstrap, sigma * sigma[b] * root_value[b], 0.0)
    if root_weight > 0:
        z = (1.0 - root_weight) * z + root_weight * root_value
    return np.where(rows < end, z, 0.0).astype(np.float32)


class TrajectoryWriter(ShardWriter):
    """Collects finished games of one worker and writes them as trajectory shards.

        writer = TrajectoryWriter(trajectory_dir(run_dir), worker=0, games_per_shard=64)
        writer.add_trajectory(states [T+1, S], actions [T], rewards [T], to_play [T+1],
                              policy [T, A], root_value [T], truncated=False)
        writer.flush()

    positions_written counts rows: T + 1 per game (the final positions included)."""

    def add_trajectory(self, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                       to_play: np.ndarray, policy: np.ndarray, root_value: np.ndarray,
                       truncated: bool = False) -> Path | None:
        states = np.asarray(states)
        actions, rewards = np.asarray(actions), np.asarray(rewards, np.float32)
        to_play, policy = np.asarray(to_play), np.asarray(policy, np.float32)
        root_value = np.asarray(root_value, np.float32)
        T = len(actions)
        if (states.ndim != 2 or states.shape[0] != T + 1 or rewards.shape != (T,)
                or to_play.shape != (T + 1,) or policy.ndim != 2 or policy.shape[0] != T
                or root_value.shape != (T,)):
            raise ValueError(
                f"trajectory arrays disagree: states {states.shape}, actions {actions.shape}, "
                f"rewards {rewards.shape}, to_play {to_play.shape}, policy {policy.shape}, "
                f"root_value {root_value.shape} (want [T+1, S], [T], [T], [T+1], [T, A], [T])")
        if T and (actions.min() < 0 or actions.max() >= policy.shape[1]):
            raise ValueError(f"actions must lie in [0, {policy.shape[1]}), got "
                             f"{actions.min()}..{actions.max()}")
        action = np.append(actions.astype(np.int32), np.int32(-1))
        reward = np.append(rewards, np.float32(0))
        root = np.append(root_value, np.float32(0))
        flag = np.full(T + 1, bool(truncated))
        end = np.full(T + 1, T, np.int64)
        value = (np.append(root_value, np.float32(0)) if truncated else
                 value_targets(reward, to_play, root, end, flag, None))
        return self.add_game(states, np.concatenate([policy, np.zeros_like(policy[:1])]), value,
                             action=action, reward=reward, to_play=to_play.astype(np.int8),
                             root_value=root, truncated=flag.astype(np.uint8))


class MuZeroBatch(NamedTuple):
    """K-step training windows; row b, step k is position t + k of a game sampled at row t."""
    obs: np.ndarray             # float32 [B, C, H, W]: observation at step 0
    actions: np.ndarray         # int64 [B, K]: action from step k to k + 1 (random past the end)
    policy: np.ndarray          # float32 [B, K+1, A]: search policy targets (zeros where masked)
    value: np.ndarray           # float32 [B, K+1]: value targets, side to move at step k
    reward: np.ndarray          # float32 [B, K+1]: reward of the move into step k, for its mover
    policy_mask: np.ndarray     # float32 [B, K+1]: 1 where the step has a search policy
    value_mask: np.ndarray      # float32 [B, K+1]: 1 where the value target is known (absorbing 0s
                                #   past a terminal end count; past a truncated end they do not)
    reward_mask: np.ndarray     # float32 [B, K+1]: same for rewards; 0 at step 0
    inside_mask: np.ndarray     # float32 [B, K+1]: 1 where step k is a real position of the game
    future_obs: np.ndarray | None = None   # float32 [B, K, C, H, W]: observations at steps 1..K
                                           #   (consistency loss targets), when asked for


class _TrajectoryChunk(_Chunk):
    """One trajectory shard in memory (rows [start, n) in the window; start is a game's first
    row). Per-row arrays besides _Chunk's."""

    def __init__(self, base: _Chunk, extra: dict[str, np.ndarray], td_steps: int | None,
                 root_weight: float = 0.0):
        super().__init__(**{f: getattr(base, f) for f in base.__dataclass_fields__})
        self.action = extra["action"].astype(np.int32)        # [n]
        self.reward = extra["reward"].astype(np.float32)      # [n]
        self.to_play = extra["to_play"].astype(np.int8)       # [n]
        self.root_value = extra["root_value"].astype(np.float32)  # [n]
        self.truncated = extra["truncated"].astype(bool)      # [n]
        n = len(self.action)
        finals = np.flatnonzero(self.action < 0)
        if n == 0 or self.action[-1] != -1:
            raise ValueError("the last row is not a game's final row (action -1)")
        self.end = finals[np.searchsorted(finals, np.arange(n))]   # int64 [n]
        self.game_starts = np.concatenate([[0], finals[:-1] + 1])   # int64 [games]
        self.sample_rows = np.flatnonzero(self.action >= 0)         # int64: non-final rows
        self.value_target = value_targets(self.reward, self.to_play, self.root_value, self.end,
                                          self.truncated, td_steps, root_weight)

    def sample_count(self) -> int:
        return len(self.sample_rows) - int(np.searchsorted(self.sample_rows, self.start))


class TrajectoryBuffer(ReplayBuffer):
    """The newest ~`window_positions` positions (whole games: the window may exceed it by less
    than one game) of the trajectory shards in `directory`. refresh() as ReplayBuffer's (new
    shards only, unreadable ones skipped with a warning, hidden temp files never read);
    sample() draws K-step windows. td_steps and root_weight define the value targets (see
    value_targets)."""

    def __init__(self, directory: str | os.PathLike, game, window_positions: int,
                 unroll_steps: int = 5, td_steps: int | None = None, root_weight: float = 0.0):
        super().__init__(directory, game, window_positions)
        if unroll_steps < 1:
            raise ValueError(f"unroll_steps must be >= 1, got {unroll_steps}")
        if td_steps is not None and td_steps < 1:
            raise ValueError(f"td_steps must be >= 1 or None, got {td_steps}")
        self.unroll_steps = int(unroll_steps)
        self.td_steps = None if td_steps is None else int(td_steps)
        if not 0.0 <= root_weight <= 1.0:
            raise ValueError(f"root_weight must lie in [0, 1], got {root_weight}")
        self.root_weight = float(root_weight)

    def _load(self, path: Path) -> tuple[_Chunk, int]:
        base, num_games = super()._load(path)
        n = len(base.value)
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in TRAJECTORY_FIELDS if k not in data.files]
            if missing:
                raise KeyError(f"missing trajectory fields {missing}")
            extra = {k: np.asarray(data[k]) for k in TRAJECTORY_FIELDS}
        for k, v in extra.items():
            if v.shape != (n,):
                raise ValueError(f"field {k} has shape {v.shape}, want ({n},)")
        if (extra["action"] >= self.game.spec.num_actions).any():
            raise ValueError(f"actions beyond num_actions {self.game.spec.num_actions}")
        return _TrajectoryChunk(base, extra, self.td_steps, self.root_weight), num_games

    def _evict(self) -> None:
        """ReplayBuffer's eviction of the oldest positions, then the cut moved back to the start
        of the game it would split: whole games only."""
        super()._evict()
        if self._chunks:
            oldest = self._chunks[0]
            starts = oldest.game_starts
            game_start = int(starts[np.searchsorted(starts, oldest.start, "right") - 1])
            self._num_positions += oldest.start - game_start
            oldest.start = game_start

    @property
    def chunks(self) -> list[_TrajectoryChunk]:
        """The shards in the window, oldest first (rows [start, n) of each are in it)."""
        return list(self._chunks)

    @property
    def num_windows(self) -> int:
        """Non-final rows in the window: the starts sample() draws from."""
        return sum(c.sample_count() for c in self._chunks)

    def sample(self, batch_size: int, rng: np.random.Generator, *, augment: bool = True,
               future_observations: bool = False) -> MuZeroBatch:
        """`batch_size` windows of K + 1 steps from uniformly drawn non-final rows (with
        replacement), each under one random symmetry of the game (states, policies and actions
        alike). future_observations: also the observations of steps 1..K."""
        counts = np.array([c.sample_count() for c in self._chunks], np.int64)
        if counts.sum() == 0:
            raise ValueError(f"trajectory buffer {self.directory} is empty (call refresh() after "
                             "self-play has written shards)")
        spec, K, B, A = self.game.spec, self.unroll_steps, batch_size, self.game.spec.num_actions
        pick = rng.integers(0, counts.sum(), size=B)
        bounds = np.cumsum(counts)
        which = np.searchsorted(bounds, pick, side="right")
        # window index (0 = the oldest row in the window, as ReplayBuffer._gather counts) of
        # each chunk's first row
        sizes = np.array([c.size for c in self._chunks], np.int64)
        chunk_base = np.cumsum(sizes) - sizes - np.array([c.start for c in self._chunks], np.int64)
        window_idx = np.empty((B, K + 1), np.int64)
        value, reward = (np.zeros((B, K + 1), np.float32) for _ in range(2))
        actions = rng.integers(0, A, size=(B, K))        # past a game's end: random (the paper)
        policy_mask, value_mask, reward_mask, inside = (np.zeros((B, K + 1), np.float32)
                                                        for _ in range(4))
        steps = np.arange(K + 1)
        for c in np.unique(which):
            chunk = self._chunks[c]
            out = np.nonzero(which == c)[0]
            first = len(chunk.sample_rows) - counts[c]   # the first sample row in the window
            t0 = chunk.sample_rows[first + pick[out] - (bounds[c] - counts[c])]   # [b]
            t = t0[:, None] + steps                                              # [b, K+1]
            end = chunk.end[t0][:, None]                                         # [b, 1]
            trunc = chunk.truncated[t0][:, None]
            row = np.minimum(t, end)        # past the end: the final position (absorbing)
            window_idx[out] = chunk_base[c] + row
            live = t < end                  # a searched position: it has a policy and a move
            within = t <= end
            value[out] = np.where(within, chunk.value_target[row], 0.0)
            value_mask[out] = np.where(trunc, live, True)
            reward[out, 1:] = np.where(within[:, 1:], chunk.reward[row[:, :-1]], 0.0)
            reward_mask[out, 1:] = np.where(trunc, within, True)[:, 1:]
            policy_mask[out] = live
            inside[out] = within
            actions[out] = np.where(live[:, :-1], chunk.action[row[:, :-1]], actions[out])
        # states and dense policies (the final row's policy is stored as zeros)
        flat_states, flat_policy = self._gather(window_idx.reshape(-1))[:2]
        if augment and spec.num_symmetries > 1:
            sym = rng.integers(0, spec.num_symmetries, size=B)
            flat_states = _transform_rows(self.game, flat_states, np.repeat(sym, K + 1))
            flat_policy = self.game.transform_policies(flat_policy, np.repeat(sym, K + 1))
            actions = np.asarray(spec.action_permutations)[sym[:, None], actions]
        policy = np.ascontiguousarray(flat_policy, np.float32).reshape(B, K + 1, A)
        states = flat_states.reshape(B, K + 1, -1)
        obs = np.asarray(self.game.observation(np.ascontiguousarray(states[:, 0])), np.float32)
        future = None
        if future_observations:
            future = np.asarray(self.game.observation(
                np.ascontiguousarray(states[:, 1:].reshape(B * K, -1))), np.float32
            ).reshape(B, K, *obs.shape[1:])
        return MuZeroBatch(np.ascontiguousarray(obs), actions.astype(np.int64), policy, value,
                           reward, policy_mask, value_mask, reward_mask, inside, future)


__all__ = ["MuZeroBatch", "TRAJECTORY_FIELDS", "TrajectoryBuffer", "TrajectoryWriter",
           "outcome_rewards", "trajectory_dir", "value_targets"]
