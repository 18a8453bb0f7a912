"""Replay data: self-play workers write finished games as shard files; the trainer reads them.

Shards live in `<run_dir>/replay/` as `shard-<time_ns:020d>-w<worker:03d>-<seq:06d>.npz`: names sort
by creation time and never collide across worker processes (worker id + per-worker sequence). Each
shard is written atomically (azero.atomic: hidden `.shard-*.tmp` file, fsync, rename), so a reader
sees only complete shards and a killed worker loses only games in flight.

Shard contents (np.savez_compressed):
    states  spec.state_dtype [N, S]  positions (game state rows, in the game's own dtype, any
                            fixed width: stored and read back unchanged), in game order
    policy  float32 [N, A]  search policy targets (0 on illegal actions)
    value   float32 [N]     final result of the game from the side to move at that position
    num_games int64 []      games in the shard
    ownership int8  [N, H, W] optional: final ownership from the side to move at that position
                            (+1 own, -1 opponent's, 0 neutral; Go), the ownership head's target
    ownership_weight uint8 [N] optional, with ownership: 1 where the target is exact (game ended
                            by the rules), 0 where there is none (resigned / move-capped game:
                            target zeros). Missing with ownership present: all 1 (older shards).
                            A shard without ownership counts as weight 0 in a window with it.
    game_index int32 [N]    optional (ShardWriter writes it): which game of the shard each
                            position belongs to (0, 0, ..., 1, 1, ...). With it the reader knows
                            each position's successor in its game: the next row of the same
                            game whose game.move_number is one more (a position searched for
                            training right after it). That successor's policy is the position's
                            opponent-reply target (KataGo's auxiliary policy target; rows
                            without a successor, such as a game's last position or one followed
                            by a cheap search under playout cap randomisation, have none:
                            weight 0). Derived when read, not stored: no copy of the policy.
    + optional per-position fields (e.g. root_value float32 [N]) kept on disk for analysis.

We store states, not observations. States are the exact positions (a few words per position),
observations are derived features (Go with history planes: ~20x larger as float32), so shards stay
small, features can be changed without regenerating data, and the trainer computes
`game.observation` for the sampled batch only, which is cheap batched numba code. In memory the
policy is kept sparse (nonzero entries only): chess has 4672 actions but ~35 legal moves.
Ownership stays int8 (81 bytes a position on 9x9: 8 MB per 100k positions) and is turned into
float32 for the sampled batch only.
"""
from __future__ import annotations

import itertools
import os
import re
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .atomic import atomic_write_with

_SHARD_RE = re.compile(r"^shard-\d{20}-w\d+-\d+\.npz$")
REQUIRED_FIELDS = ("states", "policy", "value")
GAME_INDEX_FIELD = "game_index"


def replay_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "replay"


def shard_name(worker: int, seq: int, time_ns: int | None = None) -> str:
    t = time.time_ns() if time_ns is None else time_ns
    return f"shard-{t:020d}-w{int(worker):03d}-{int(seq):06d}.npz"


def write_shard(directory: str | os.PathLike, worker: int, seq: int, states: np.ndarray,
                policy: np.ndarray, value: np.ndarray, num_games: int,
                game_index: np.ndarray | None = None, **extra: np.ndarray) -> Path:
    """Atomically write one shard of positions. Shapes: states [N, S] (the game's state_dtype,
    kept as it is), policy [N, A], value [N]; game_index [N] (optional: each position's game,
    see the module docstring); extra arrays must have N rows. Returns the shard's path."""
    states = np.ascontiguousarray(states)
    if states.dtype.hasobject:
        raise ValueError("states must be a plain numeric array, not Python objects")
    policy = np.ascontiguousarray(policy, dtype=np.float32)
    value = np.ascontiguousarray(value, dtype=np.float32)
    n = states.shape[0]
    if states.ndim != 2 or policy.ndim != 2 or value.shape != (n,) or policy.shape[0] != n:
        raise ValueError(f"shard arrays disagree: states {states.shape}, policy {policy.shape}, "
                         f"value {value.shape} (want [N, S], [N, A], [N])")
    for k, v in extra.items():
        if k in REQUIRED_FIELDS or k == "num_games":
            raise ValueError(f"extra field {k!r} clashes with a shard field")
        if np.shape(v)[:1] != (n,):
            raise ValueError(f"extra field {k!r} has shape {np.shape(v)}, want {n} rows")
    arrays = dict(states=states, policy=policy, value=value,
                  num_games=np.asarray(num_games, np.int64), **extra)
    if game_index is not None:
        if np.shape(game_index) != (n,):
            raise ValueError(f"{GAME_INDEX_FIELD} has shape {np.shape(game_index)}, want ({n},)")
        arrays[GAME_INDEX_FIELD] = np.asarray(game_index, np.int32)
    path = Path(directory) / shard_name(worker, seq)
    atomic_write_with(path, lambda f: np.savez_compressed(f, **arrays))
    return path


class ShardWriter:
    """Collects finished games of one worker and writes them as shards.

        writer = ShardWriter(replay_dir(run_dir), worker=3, games_per_shard=64)
        writer.add_game(states [T, S], policy [T, A], value [T], root_value=... [T])
        writer.flush()   # at exit: write what is collected, even if fewer games
    """

    def __init__(self, directory: str | os.PathLike, worker: int, games_per_shard: int = 64):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.worker = int(worker)
        self.games_per_shard = int(games_per_shard)
        self._seq = itertools.count()
        self._games: list[dict[str, np.ndarray]] = []
        self.games_written = 0
        self.positions_written = 0
        self.shards_written: list[Path] = []

    def add_game(self, states: np.ndarray, policy: np.ndarray, value: np.ndarray,
                 **extra: np.ndarray) -> Path | None:
        """Add one game; writes a shard (and returns its path) once games_per_shard are pending."""
        game = dict(states=states, policy=policy, value=value, **extra)
        if self._games and game.keys() != self._games[0].keys():
            raise ValueError(f"game fields {sorted(game)} differ from the pending games' "
                             f"{sorted(self._games[0])}: every game of a shard needs the same fields")
        self._games.append(game)
        if len(self._games) >= self.games_per_shard:
            return self.flush()
        return None

    @property
    def pending_games(self) -> int:
        return len(self._games)

    def flush(self) -> Path | None:
        if not self._games:
            return None
        keys = self._games[0].keys()
        merged = {k: np.concatenate([np.asarray(g[k]) for g in self._games]) for k in keys}
        lengths = [len(g["value"]) for g in self._games]
        game_index = np.repeat(np.arange(len(lengths), dtype=np.int32), lengths)
        path = write_shard(self.directory, self.worker, next(self._seq), num_games=len(self._games),
                           game_index=game_index, **merged)
        self.games_written += len(self._games)
        self.positions_written += len(merged["value"])
        self.shards_written.append(path)
        self._games = []
        return path


class Batch(NamedTuple):
    obs: np.ndarray       # float32 [B, *observation_shape]
    policy: np.ndarray    # float32 [B, A]
    value: np.ndarray     # float32 [B]
    # float32 [B, H, W] in {-1, 0, 1}, under the same symmetry as obs; None unless some shard
    # of the window holds ownership targets
    ownership: np.ndarray | None = None
    # float32 [B]: 1 where `ownership` is a real target, 0 where there is none (zeros there);
    # None with ownership None
    ownership_weight: np.ndarray | None = None


class OpponentBatch(NamedTuple):
    """A Batch (same first five fields) with the opponent-reply targets:
    sample(opponent_policy=True)."""
    obs: np.ndarray
    policy: np.ndarray
    value: np.ndarray
    ownership: np.ndarray | None
    ownership_weight: np.ndarray | None
    # float32 [B, A]: the policy of each position's successor, under the same symmetry as obs
    opponent_policy: np.ndarray
    # float32 [B]: 1 where opponent_policy is a target, 0 where the position has no successor
    opponent_policy_weight: np.ndarray


@dataclass
class _Chunk:
    """One shard's positions in memory. Rows [start, n) are inside the window."""
    name: str
    states: np.ndarray          # spec.state_dtype [n, S]
    value: np.ndarray           # float32 [n]
    policy_offsets: np.ndarray  # int64 [n + 1]: row i's entries are [off[i], off[i+1])
    policy_actions: np.ndarray  # int32 [nnz]
    policy_probs: np.ndarray    # float32 [nnz]
    ownership: np.ndarray | None = None   # int8 [n, H, W], or None if the shard has none
    ownership_weight: np.ndarray | None = None  # float32 [n], with ownership
    start: int = 0
    game_index: np.ndarray | None = None  # int32 [n], or None for shards without it
    # int32 [n]: the row of each position's successor in its game (always a later row), -1
    # where there is none; computed from game_index on the first opponent_policies() call
    next_row: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.value) - self.start


class ReplayBuffer:
    """The newest `window_positions` positions of the shards in `directory`.

    `refresh()` scans for shards not seen before (call it as often as you like: it lists the folder
    and reads only new files), appends them in name (= creation) order and evicts the oldest
    positions beyond the window. `sample` draws uniformly from the window with a random symmetry
    per position. Readable while workers write: temp files are hidden names that never match.
    """

    def __init__(self, directory: str | os.PathLike, game, window_positions: int):
        if window_positions < 1:
            raise ValueError(f"window_positions must be >= 1, got {window_positions}")
        self.directory = Path(directory)
        self.game = game
        self.window_positions = int(window_positions)
        self._chunks: list[_Chunk] = []
        self._seen: set[str] = set()
        self._num_positions = 0
        self.games_seen = 0          # games in all shards read so far (including evicted ones)
        self.positions_seen = 0      # positions in all shards read so far (including evicted ones)
        self.shards_seen = 0
        self.bad_shards: list[str] = []

    # ---------------------------------------------------------------- reading
    def refresh(self) -> int:
        """Read new shards; returns how many positions were added."""
        if not self.directory.is_dir():
            return 0
        # scandir, not glob: 3x cheaper on the 100k-shard folders of long GPU runs (0.054 s
        # against 0.16 s a call on cpu2), and the loop refreshes every log.every_steps steps.
        with os.scandir(self.directory) as entries:
            new = sorted(e.name for e in entries
                         if e.name not in self._seen and _SHARD_RE.match(e.name))
        if not new:
            return 0
        # Newest first: shards that would be evicted at once are only counted, not loaded
        # (fast restart of a long run).
        loaded: list[_Chunk] = []
        room = self.window_positions
        added = 0
        for name in reversed(new):
            path = self.directory / name
            try:
                if room > 0:
                    chunk, num_games = self._load(path)
                    n = len(chunk.value)
                    room -= n
                    loaded.append(chunk)
                else:
                    n, num_games = _count(path)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                warnings.warn(f"replay: skipping unreadable shard {path}: {type(e).__name__}: {e}",
                              RuntimeWarning, stacklevel=2)
                self.bad_shards.append(name)
                self._seen.add(name)
                continue
            self._seen.add(name)
            self.shards_seen += 1
            self.games_seen += num_games
            self.positions_seen += n
            added += n
        for chunk in reversed(loaded):
            if chunk.size:
                self._chunks.append(chunk)
                self._num_positions += chunk.size
        self._evict()
        return added

    def _load(self, path: Path) -> tuple[_Chunk, int]:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in REQUIRED_FIELDS if k not in data.files]
            if missing:
                raise KeyError(f"missing fields {missing}")
            states = np.ascontiguousarray(data["states"])
            policy = np.asarray(data["policy"], dtype=np.float32)
            value = np.ascontiguousarray(data["value"], dtype=np.float32)
            num_games = int(data["num_games"]) if "num_games" in data.files else 0
            game_index = (np.asarray(data[GAME_INDEX_FIELD], np.int32)
                          if GAME_INDEX_FIELD in data.files else None)
            ownership = ownership_weight = None
            if "ownership" in data.files:
                ownership = np.ascontiguousarray(data["ownership"], dtype=np.int8)
                ownership_weight = (np.ascontiguousarray(data["ownership_weight"], np.float32)
                                    if "ownership_weight" in data.files
                                    else np.ones(len(ownership), np.float32))
        spec = self.game.spec
        n = len(value)
        if states.shape != (n, spec.state_size) or policy.shape != (n, spec.num_actions):
            raise ValueError(f"shapes states {states.shape}, policy {policy.shape}, value {value.shape} "
                             f"do not fit {spec.name} (S={spec.state_size}, A={spec.num_actions})")
        if states.dtype != spec.state_dtype:
            raise ValueError(f"states dtype {states.dtype} does not fit {spec.name} "
                             f"(state_dtype {spec.state_dtype})")
        if ownership is not None and (spec.board_shape is None
                                      or ownership.shape != (n, *spec.board_shape)):
            raise ValueError(f"ownership shape {ownership.shape} does not fit {spec.name} "
                             f"(want [{n}, *board_shape {spec.board_shape}])")
        if game_index is not None and game_index.shape != (n,):
            raise ValueError(f"{GAME_INDEX_FIELD} shape {game_index.shape} does not fit {n} positions")
        if ownership_weight is not None and ownership_weight.shape != (n,):
            raise ValueError(f"ownership_weight shape {ownership_weight.shape} does not fit "
                             f"{n} positions")
        rows, actions = np.nonzero(policy)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
        chunk = _Chunk(path.name, states, value, offsets, actions.astype(np.int32),
                       policy[rows, actions].astype(np.float32), ownership, ownership_weight,
                       game_index=game_index)
        return chunk, num_games

    def _evict(self) -> None:
        excess = self._num_positions - self.window_positions
        while excess > 0 and self._chunks:
            oldest = self._chunks[0]
            if oldest.size <= excess:
                self._chunks.pop(0)
                excess -= oldest.size
                self._num_positions -= oldest.size
            else:
                oldest.start += excess
                self._num_positions -= excess
                excess = 0

    # ---------------------------------------------------------------- sampling
    def __len__(self) -> int:
        return self._num_positions

    @property
    def num_positions(self) -> int:
        """Positions currently in the window."""
        return self._num_positions

    @property
    def has_ownership(self) -> bool:
        """Whether some shard of the window has ownership targets (then sample() returns them
        with ownership_weight: 0 on positions without a target, e.g. from older shards without
        ownership or from resigned games)."""
        return any(c.ownership is not None for c in self._chunks)

    def positions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All positions of the window, oldest first: (states [n, S], policy [n, A], value [n])."""
        return self._gather(np.arange(self._num_positions))[:3]

    def ownership_targets(self) -> np.ndarray | None:
        """int8 [n, H, W] ownership targets of the window, in the order of positions() (zeros
        where there is none: see ownership_weights()); None unless has_ownership."""
        return self._gather(np.arange(self._num_positions))[3]

    def ownership_weights(self) -> np.ndarray | None:
        """float32 [n]: 1 where ownership_targets() is a real target, 0 where not; None unless
        has_ownership."""
        return self._gather(np.arange(self._num_positions))[4]

    def _gather(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                np.ndarray | None, np.ndarray | None]:
        """Window indices (0 = oldest) -> (states, dense policy, value, ownership int8 or None,
        ownership weight float32 or None) in the same order."""
        spec = self.game.spec
        states = np.empty((len(idx), spec.state_size), spec.state_dtype)
        policy = np.zeros((len(idx), spec.num_actions), np.float32)
        value = np.empty((len(idx),), np.float32)
        ownership = weight = None
        if self.has_ownership:
            ownership = np.zeros((len(idx), *spec.board_shape), np.int8)
            weight = np.zeros(len(idx), np.float32)
        for c, out, local in self._locate(idx):
            chunk = self._chunks[c]
            states[out] = chunk.states[local]
            value[out] = chunk.value[local]
            if ownership is not None and chunk.ownership is not None:
                ownership[out] = chunk.ownership[local]
                weight[out] = chunk.ownership_weight[local]
            _scatter_policies(chunk, local, out, policy)
        return states, policy, value, ownership, weight

    def _locate(self, idx: np.ndarray):
        """Window indices -> (chunk number, [the output positions], [their rows in the chunk])
        for each chunk holding some of them."""
        sizes = np.array([c.size for c in self._chunks], np.int64)
        bounds = np.cumsum(sizes)
        which = np.searchsorted(bounds, idx, side="right")
        for c in np.unique(which):
            out = np.nonzero(which == c)[0]
            yield c, out, idx[out] - (bounds[c] - sizes[c]) + self._chunks[c].start

    def opponent_policies(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window indices [n] -> (opponent-reply targets float32 [n, A]: the policy of each
        position's successor in its game, zeros where there is none; weights float32 [n]: 1
        where there is one). Shards without game_index have none."""
        policy = np.zeros((len(idx), self.game.spec.num_actions), np.float32)
        weight = np.zeros(len(idx), np.float32)
        for c, out, local in self._locate(idx):
            chunk = self._chunks[c]
            if chunk.game_index is None:
                continue
            if chunk.next_row is None:
                chunk.next_row = successor_rows(chunk.game_index,
                                                self.game.move_number(chunk.states))
            nxt = chunk.next_row[local]
            has = nxt >= 0
            weight[out[has]] = 1.0
            _scatter_policies(chunk, nxt[has], out[has], policy)
        return policy, weight

    def sample(self, batch_size: int, rng: np.random.Generator, *, augment: bool = True,
               opponent_policy: bool = False) -> Batch | OpponentBatch:
        """Uniform sample (with replacement) from the window, each position under a random symmetry
        of the game (observations, policies and ownership targets transformed consistently).
        opponent_policy: an OpponentBatch, with the opponent-reply targets and weights
        (opponent_policies()) under the same symmetries."""
        if self._num_positions == 0:
            raise ValueError(f"replay buffer {self.directory} is empty (call refresh() after "
                             "self-play has written shards)")
        idx = rng.integers(0, self._num_positions, size=batch_size)
        states, policy, value, ownership, weight = self._gather(idx)
        opponent = opponent_weight = None
        if opponent_policy:
            opponent, opponent_weight = self.opponent_policies(idx)
        spec = self.game.spec
        if augment and spec.num_symmetries > 1:
            k = rng.integers(0, spec.num_symmetries, size=batch_size)
            # The states move before they are observed: a state row is the cheap side to
            # transform (Go: 153 int64 against 23 float32 planes of 81 points); 1.7-1.8x faster
            # sampling for Go (BENCHMARKS.md). Same result: transform_states commutes with
            # observation (tests/test_replay.py checks every sample against it).
            states = _transform_rows(self.game, states, k)
            policy = self.game.transform_policies(policy, k)
            if opponent is not None:
                opponent = self.game.transform_policies(opponent, k)
            if ownership is not None:
                # one plane [N, 1, H, W]: it moves exactly like the observation's board planes
                ownership = self.game.transform_observations(ownership[:, None], k)[:, 0]
        obs = np.asarray(self.game.observation(states), dtype=np.float32)
        if ownership is not None:
            ownership = np.ascontiguousarray(ownership, np.float32)
        batch = Batch(np.ascontiguousarray(obs, np.float32), np.ascontiguousarray(policy, np.float32),
                      value, ownership, weight)
        if opponent is None:
            return batch
        return OpponentBatch(*batch, np.ascontiguousarray(opponent, np.float32), opponent_weight)

    def stats(self) -> dict[str, Any]:
        return {"positions_in_window": self._num_positions, "positions_seen": self.positions_seen,
                "games_seen": self.games_seen, "shards_seen": self.shards_seen,
                "bad_shards": len(self.bad_shards)}


def _scatter_policies(chunk: _Chunk, local: np.ndarray, out: np.ndarray,
                      policy: np.ndarray) -> None:
    """policy[out[r]] = the dense policy of the chunk's row local[r] (its sparse entries)."""
    lo, hi = chunk.policy_offsets[local], chunk.policy_offsets[local + 1]
    counts = hi - lo
    # entry positions of all selected rows, flattened: lo[r] + 0..counts[r]-1
    flat = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    policy[np.repeat(out, counts), chunk.policy_actions[flat]] = chunk.policy_probs[flat]


def successor_rows(game_index: np.ndarray, move_number: np.ndarray) -> np.ndarray:
    """game_index [n] (a shard's), move_number [n] (game.move_number of its states) -> int32 [n]:
    i + 1 where row i + 1 is the same game's position one ply after row i, else -1."""
    game_index, move_number = np.asarray(game_index), np.asarray(move_number)
    nxt = np.full(len(game_index), -1, np.int32)
    if len(game_index) > 1:
        follows = ((game_index[1:] == game_index[:-1])
                   & (move_number[1:] == move_number[:-1] + 1))
        nxt[:-1][follows] = np.flatnonzero(follows).astype(np.int32) + 1
    return nxt


def _transform_rows(game, states: np.ndarray, k: np.ndarray) -> np.ndarray:
    """states [N, S], k [N] -> states with symmetry k[i] applied to row i."""
    out = states.copy()
    for sym in np.unique(k):
        if sym:
            rows = k == sym
            out[rows] = game.transform_states(states[rows], int(sym))
    return out


def _count(path: Path) -> tuple[int, int]:
    """(positions, games) of a shard without reading its big arrays."""
    with np.load(path, allow_pickle=False) as data:
        n = len(data["value"])
        games = int(data["num_games"]) if "num_games" in data.files else 0
    return n, games


__all__ = ["Batch", "OpponentBatch", "ReplayBuffer", "ShardWriter", "replay_dir", "shard_name", "successor_rows",
           "write_shard"]
