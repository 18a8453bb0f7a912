"""`KernelGame`: the batched array API of a `Game` (see protocol.py) over a game's numba kernels.

A game folder whose rules.py keeps the kernel conventions below subclasses `KernelGame`, sets
`rules` (that module) and `spec`, and adds only what is its own: `initial_states`, symmetries of
states and observations, notation, display, and `_illegal_reason`.

What `rules` provides (every kernel reads `states` and writes only to the arrays it is given):
  * STATE_SIZE (the default row width; a game may set a wider spec.state_size per instance if its
    kernels read the width from `states.shape[1]`, as go9's do), and the state-row fields PLY
    (plies played; the side to move is PLY % 2) and STATUS, which equals ONGOING until the game
    is over by its rules. The move cap is not the rules' business: a live state with PLY >=
    spec.max_game_length is truncated (`truncated`), and `step` may go on past it.
  * step(states [B, S], actions [B] int64, out [B, S]) -> first illegal row, or -1.
  * step_with_info(states, actions, out, legal [B, A] bool, terminal [B] bool,
    result [B] float32) -> as step, and fills the other three for the new states.
  * legal_mask(states, out [B, A] bool), result(states, out [B] float32),
    observation(states, out [B, *spec.observation_shape] float32).
Here A = spec.num_actions and S = spec.state_size.

The wrappers are hot paths (search calls them at every expansion, often at small batches): each
validates its input once, allocates its outputs and makes one kernel call; keep it that way.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from .protocol import GameSpec, IllegalActionError

_KERNEL_NAMES = ("STATE_SIZE", "PLY", "STATUS", "ONGOING",
                 "step", "step_with_info", "legal_mask", "result", "observation")


ANSI_RESET = "\x1b[0m"


def render_row(row: np.ndarray, pieces: tuple[str, str], ansi: tuple[str, str], *,
               color: bool, marked_col: int = -1) -> str:
    """One board row as text: each cell 3 characters, " X " for player 0's piece (pieces[0];
    wrapped in ansi[0] ... reset when `color`), " . " for an empty cell (row value < 0), and the
    cell at `marked_col` in brackets, "[X]" (the last move)."""
    cells = []
    for c, p in enumerate(row):
        piece = "." if p < 0 else pieces[p]
        if color and p >= 0:
            piece = ansi[p] + piece + ANSI_RESET
        cells.append(f"[{piece}]" if c == marked_col else f" {piece} ")
    return "".join(cells)


class ArrayGame:
    """What every game class shares, kernels or not: input checks, the policy permutation of
    symmetries, error messages and replaying moves from text. A subclass sets `spec` and gives
    `_illegal_reason` and `describe`."""
    spec: GameSpec

    # ---------------------------------------------------------------- symmetries

    def transform_policies(self, policies: np.ndarray, k: np.ndarray) -> np.ndarray:
        """policies [N, A], k [N] -> policies with symmetry k[i] applied to row i
        (out[i, perm[k[i], a]] = policies[i, a])."""
        policies = np.asarray(policies)
        k = self._symmetry_indices(k, len(policies))
        out = np.empty_like(policies)
        out[np.arange(len(policies))[:, None], self.spec.action_permutations[k]] = policies
        return out

    # ---------------------------------------------------------------- helpers

    def _batch(self, states: np.ndarray) -> np.ndarray:
        """Any array-like -> C-contiguous int64 [B, S] (no copy if it already is one)."""
        states = np.ascontiguousarray(states, dtype=np.int64)
        if states.ndim != 2 or states.shape[1] != self.spec.state_size:
            raise ValueError(f"{self.spec.name} states are [B, {self.spec.state_size}] int64, "
                             f"got shape {states.shape}")
        return states

    def _single(self, state: np.ndarray) -> np.ndarray:
        state = np.asarray(state)
        if state.shape != (self.spec.state_size,):
            raise ValueError(f"expected one {self.spec.name} state [{self.spec.state_size}], "
                             f"got shape {state.shape}")
        return state

    def _actions(self, actions: np.ndarray, batch: int) -> np.ndarray:
        actions = np.asarray(actions)
        if actions.dtype.kind not in "iu" and actions.size:
            raise ValueError(f"{self.spec.name} actions are integers, got dtype {actions.dtype}")
        actions = np.ascontiguousarray(actions, dtype=np.int64)
        if actions.shape != (batch,):
            raise ValueError(f"expected actions [{batch}], got shape {actions.shape}")
        return actions

    def _symmetries_text(self) -> str:
        n = self.spec.num_symmetries
        return "0 and 1" if n == 2 else f"0..{n - 1}"

    def _symmetry_indices(self, k, n: int) -> np.ndarray:
        k = np.broadcast_to(np.asarray(k, dtype=np.int64), (n,))
        if n and (k.min() < 0 or k.max() >= self.spec.num_symmetries):
            raise ValueError(f"{self.spec.name} has symmetries {self._symmetries_text()}, "
                             f"got {np.unique(k).tolist()}")
        return k

    def _illegal_message(self, states: np.ndarray, actions: np.ndarray, row: int) -> str:
        state, action = states[row], int(actions[row])
        return (f"illegal {self.spec.name} action {action} in batch row {row}: "
                f"{self._illegal_reason(state, action)}; {self.describe(state)}")

    def _illegal_reason(self, state: np.ndarray, action: int) -> str:
        """Why `action` (any int, possibly out of range) is illegal in the one state [S]."""
        raise NotImplementedError

    def describe(self, state: np.ndarray) -> str:
        """One-line description of a state [S] for messages."""
        raise NotImplementedError

    def play_texts(self, moves, where=lambda i, text: f"move {i + 1} ({text!r})") -> np.ndarray:
        """Moves in the game's notation (parse_action), played from the start -> state [S].
        Raises ValueError (IllegalActionError for an illegal move) starting with `where(i,
        text)` for the offending move."""
        states = self.initial_states(1)
        for i, text in enumerate(moves):
            try:
                action = self.parse_action(states[0], text)
            except ValueError as e:
                raise type(e)(f"{where(i, text)}: {e}") from None
            states = self.step(states, np.array([action]))
        return states[0]


class KernelGame(ArrayGame):
    rules: ModuleType      # the game's rules module, with the names in _KERNEL_NAMES
    spec: GameSpec

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        missing = [name for name in _KERNEL_NAMES if not hasattr(cls.rules, name)]
        if missing:
            raise TypeError(f"{cls.__name__}.rules ({cls.rules.__name__}) lacks {missing}")
        if cls.spec.state_size != cls.rules.STATE_SIZE:
            raise TypeError(f"{cls.__name__}.spec.state_size {cls.spec.state_size} != "
                            f"rules.STATE_SIZE {cls.rules.STATE_SIZE}")

    # ---------------------------------------------------------------- batched array API

    def step(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """states [B, S], actions [B] int -> new states [B, S]. Raises IllegalActionError naming
        the first bad row's action, the reason and the position; `states` is never modified."""
        states, actions = self._batch(states), self._actions(actions, len(states))
        out = np.empty_like(states)
        bad = self.rules.step(states, actions, out)
        if bad >= 0:
            raise IllegalActionError(self._illegal_message(states, actions, bad))
        return out

    def step_with_info(self, states: np.ndarray, actions: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Fused `step` + `legal_mask` + `terminal` + `result` of the new states, in one pass:
        states [B, S], actions [B] -> (new states [B, S] int64, legal [B, A] bool,
        terminal [B] bool, result [B] float32). Same errors as `step`."""
        states, actions = self._batch(states), self._actions(actions, len(states))
        b = len(states)
        out = np.empty_like(states)
        legal = np.empty((b, self.spec.num_actions), dtype=np.bool_)
        terminal = np.empty(b, dtype=np.bool_)
        result = np.empty(b, dtype=np.float32)
        bad = self.rules.step_with_info(states, actions, out, legal, terminal, result)
        if bad >= 0:
            raise IllegalActionError(self._illegal_message(states, actions, bad))
        return out, legal, terminal, result

    def legal_mask(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> bool [B, A]; all False once the game is over."""
        states = self._batch(states)
        out = np.empty((len(states), self.spec.num_actions), dtype=np.bool_)
        self.rules.legal_mask(states, out)
        return out

    def terminal(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> bool [B]: over by the rules."""
        rules = self.rules
        return self._batch(states)[:, rules.STATUS] != rules.ONGOING

    def truncated(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> bool [B]: live but cut off by the move cap (PLY >= spec.max_game_length)."""
        states, rules = self._batch(states), self.rules
        return (states[:, rules.STATUS] == rules.ONGOING) & (
            states[:, rules.PLY] >= self.spec.max_game_length)

    def result(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> float32 [B]: +1 / -1 if the side to move has won / lost the finished game,
        0 for a draw or a game not over (the game's module docstring says which occur)."""
        states = self._batch(states)
        out = np.empty(len(states), dtype=np.float32)
        self.rules.result(states, out)
        return out

    def to_play(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> int8 [B]: 0 (the first player) or 1."""
        return (self._batch(states)[:, self.rules.PLY] & 1).astype(np.int8)

    def move_number(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> int32 [B]: plies played."""
        return self._batch(states)[:, self.rules.PLY].astype(np.int32)

    def observation(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> float32 [B, *spec.observation_shape]; the game's module docstring lists the
        channels."""
        states = self._batch(states)
        out = np.empty((len(states),) + self.spec.observation_shape, dtype=np.float32)
        self.rules.observation(states, out)
        return out
