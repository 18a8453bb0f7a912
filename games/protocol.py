"""The game protocol: what every game folder provides.

A game is a static `GameSpec` plus pure, batched functions over NumPy state arrays.

Invariants every game keeps (the conformance suite in `conformance.py` checks them):
  * A batch of states is a C-contiguous array `[B, S]` of `spec.state_dtype`; row b is one
    complete position (board, side to move, move count, terminal flag and result, and whatever the
    rules need such as ko/superko history). Functions never modify their input in place.
  * Players are 0 (moves first) and 1. `to_play(states)` is the side to move.
  * `result(states)` is the final score from the point of view of the side to move in that
    (terminal) state: +1 win, 0 draw, -1 loss; 0 for non-terminal states.
  * A game ends by its rules (`terminal`) or is cut off by the move cap (`truncated`, as gymnasium
    and pgx keep them apart): `truncated(states)` is True for the live (non-terminal) states with
    at least `spec.max_game_length` plies played, and never for a terminal state. A truncated
    position is not a draw and has no result (`result` is 0 there, as for any live state): it
    still has legal moves, and the rules may go on past the cap (a caller that wants the whole
    game, e.g. a GTP engine, keeps playing); whoever needs a number for it asks the search (its
    value), or the game's optional `adjudicate` (see below), never `result`.
  * `legal_mask(states)` is non-empty for every non-terminal state (truncated ones included) and
    all-False for terminal ones.
  * `step` on a terminal state or with an illegal action raises `IllegalActionError` naming the
    action and the position; it never returns a corrupt state.
  * Symmetry k (0 <= k < spec.num_symmetries, 0 = identity) maps actions by
    `spec.action_permutations[k]` ([num_symmetries, num_actions]: action a becomes perm[k, a]) and
    maps states, observations and policies consistently, so that
    `legal_mask(transform_states(s, k))[:, perm[k]] == legal_mask(s)`.

`spec.action_planes`, where a game gives it, draws every action on the board (see GameSpec).

Optional, beyond the protocol: `step_with_info` (a fused step, games/kernel_game.py) and
`adjudicate(states) -> float32 [B]`, a score in [-1, 1] for the side to move of a position cut off
by the cap (Go: the sign of the area score of the board as it stands). Matches (azero/arena.py)
and random playouts use it to score a game that was cut off; it is never a training label.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


class IllegalActionError(ValueError):
    """An action that is not legal in the given position (or any action in a finished game)."""


@dataclass(frozen=True)
class GameSpec:
    name: str                               # registry name, e.g. "connect4"
    num_actions: int                        # size of the flat action space
    observation_shape: tuple[int, ...]      # network input per position, e.g. (C, H, W)
    state_size: int                         # S: columns of a state row
    # The move cap: a live state with this many plies played is truncated (see the invariants).
    max_game_length: int
    num_players: int = 2
    state_dtype: np.dtype = field(default_factory=lambda: np.dtype(np.int64))
    num_symmetries: int = 1
    # [num_symmetries, num_actions] int64; row 0 is the identity.
    action_permutations: np.ndarray | None = None
    board_shape: tuple[int, int] | None = None   # (rows, cols) for rendering/ownership, if a board game
    # A promise of the rules: every move passes the turn, to_play(step(s, a)) == 1 - to_play(s)
    # for every live s and legal a (Go's pass included). The conformance suite checks it; the
    # search then knows every backup sign (-1) without reading to_play twice per expansion.
    # False (the default) makes no promise: signs come from to_play of parent and child.
    alternating_turns: bool = False
    # float32 [num_actions, P, H, W] or None: each action drawn on the observation's board
    # (H, W = observation_shape[1:]) as P planes, in the observation's orientation (the side to
    # move's view where the observation is): the cells a move touches. A learned model
    # (MuZero's dynamics) reads its action through them, as MiniZero and LightZero encode
    # board-game actions; None: the model learns a plane per action. Symmetry k maps the planes
    # of action a to those of perm[k, a], as it maps observations.
    action_planes: np.ndarray | None = None


@runtime_checkable
class Game(Protocol):
    """What `games.make(name)` returns. All array functions are batched over the leading axis."""

    spec: GameSpec

    def initial_states(self, n: int) -> np.ndarray:
        """[n, S] copies of the starting position."""

    def step(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """states [B, S], actions [B] int -> new states [B, S]. Raises IllegalActionError."""

    def legal_mask(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> bool [B, A]."""

    def terminal(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> bool [B]: the game is over by its rules."""

    def truncated(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> bool [B]: the game is live but cut off by the move cap
        (move_number >= spec.max_game_length); never True where `terminal` is."""

    def result(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> float32 [B], score for the side to move (+1/0/-1), 0 if not terminal."""

    def to_play(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> int8 [B], 0 or 1."""

    def move_number(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> int32 [B], plies played so far."""

    def observation(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> float32 [B, *spec.observation_shape], from the side to move's point of view."""

    def transform_states(self, states: np.ndarray, k: int) -> np.ndarray:
        """Apply symmetry k to every state."""

    def transform_observations(self, obs: np.ndarray, k: np.ndarray) -> np.ndarray:
        """obs [N, *obs_shape], k [N] int -> obs with symmetry k[i] applied to row i."""

    def transform_policies(self, policies: np.ndarray, k: np.ndarray) -> np.ndarray:
        """policies [N, A], k [N] int -> policies with symmetry k[i] applied to row i."""

    def parse_action(self, state: np.ndarray, text: str) -> int:
        """One state [S] and a move as a human writes it -> action. Raises ValueError with a reason
        (garbled text, or a well-formed but illegal move)."""

    def format_action(self, state: np.ndarray, action: int) -> str:
        """One state [S] and an action -> the move as a human writes it."""

    def render(self, state: np.ndarray, last_action: int | None = None, color: bool = False) -> str:
        """One state [S] -> a text diagram (ANSI colours if `color`)."""
