"""Connect Four as a `Game` (see games/protocol.py): the batched array API over the numba kernels in
rules.py (games/kernel_game.py), plus what humans see: move notation (columns "1".."7"), text
diagrams, error messages.

Conventions
  * action = column 0..6 (left to right), the same as OpenSpiel's connect_four; humans and the
    perfect-play data in shared/bench/connect4 write columns 1-indexed: "1".."7".
    A = 7: legal_mask is [B, 7].
  * state row: int64 [4] = (side to move's stones, all stones, ply, status); see rules.py.
    move_number = ply = stones on the board.
  * result: -1 if the side to move has lost, 0 for a draw or a game not over (the side to move
    never stands at a win: the winning move ends the game).
  * observation: float32 [3, 6, 7] from the side to move's view, row 0 = the TOP row (as drawn):
    channel 0 own stones, 1 opponent stones, 2 all ones when the second player is to move.
  * symmetries: 0 identity, 1 left-right mirror (column c <-> 6 - c).
  * players: 0 ("X", red) moves first, 1 ("O", yellow).

Beyond the protocol, `step_with_info` steps and returns the new states' legal mask, terminal flag
and result from the same pass (what a search driver needs after every expansion: one call instead of
four, which matters at small batches; at B=4096 the kernel time is about that of the separate
calls), and `from_moves` builds a position from a move string such as "4453".
"""
from __future__ import annotations

import numpy as np

from ..kernel_game import KernelGame, render_row
from ..protocol import GameSpec, IllegalActionError
from . import rules

_MIRROR = np.arange(rules.COLUMNS - 1, -1, -1, dtype=np.int64)
_PERMUTATIONS = np.stack([np.arange(rules.COLUMNS, dtype=np.int64), _MIRROR])   # [2, 7]
_PERMUTATIONS.flags.writeable = False
# [7, 1, 6, 7]: a move is its column (where in it the stone lands is the dynamics' to learn)
_ACTION_PLANES = np.zeros((rules.COLUMNS, 1, rules.ROWS, rules.COLUMNS), np.float32)
_ACTION_PLANES[np.arange(rules.COLUMNS), 0, :, np.arange(rules.COLUMNS)] = 1.0
_ACTION_PLANES.flags.writeable = False
_PIECES = ("X", "O")
_ANSI = ("\x1b[1;31m", "\x1b[1;33m")     # red, yellow


class ConnectFour(KernelGame):
    rules = rules
    spec = GameSpec(
        name="connect4",
        num_actions=rules.COLUMNS,
        observation_shape=(3, rules.ROWS, rules.COLUMNS),
        state_size=rules.STATE_SIZE,
        max_game_length=rules.NUM_CELLS,
        num_symmetries=2,
        action_permutations=_PERMUTATIONS,
        board_shape=(rules.ROWS, rules.COLUMNS),
        alternating_turns=True,          # to_play is PLY % 2, and every move is a ply
        action_planes=_ACTION_PLANES,
    )

    # ---------------------------------------------------------------- batched array API

    def initial_states(self, n: int) -> np.ndarray:
        """[n, S] empty boards (all fields zero)."""
        return np.zeros((n, rules.STATE_SIZE), dtype=np.int64)

    # ---------------------------------------------------------------- symmetries

    def transform_states(self, states: np.ndarray, k: int) -> np.ndarray:
        """Symmetry k (0 identity, 1 mirror) applied to every state [B, S]."""
        states = self._batch(states)
        if k == 0:
            return states.copy()
        if k == 1:
            out = np.empty_like(states)
            rules.mirror_states(states, out)
            return out
        raise ValueError(f"connect4 has symmetries 0 and 1, not {k!r}")

    def transform_observations(self, obs: np.ndarray, k: np.ndarray) -> np.ndarray:
        """obs [N, C, 6, 7], k [N] -> obs with row i mirrored where k[i] == 1."""
        obs = np.asarray(obs)
        k = self._symmetry_indices(k, len(obs))
        out = obs.copy()
        flip = k == 1
        out[flip] = obs[flip][..., ::-1]
        return out

    # ---------------------------------------------------------------- notation and display

    def parse_action(self, state: np.ndarray, text: str) -> int:
        """"1".."7" (1-indexed column, surrounding blanks ignored) -> action 0..6. Raises ValueError
        for text that is not a column, IllegalActionError (a ValueError) for a full column or a
        finished game."""
        state = self._single(state)
        t = text.strip()
        if not t:
            raise ValueError("empty move: enter a column number from 1 to 7")
        if not (t.isascii() and t.isdigit()):
            raise ValueError(f"{text!r} is not a column: enter a number from 1 to 7")
        column = int(t)
        if not 1 <= column <= rules.COLUMNS:
            raise ValueError(f"there is no column {t}: enter a number from 1 to 7")
        if state[rules.STATUS] != rules.ONGOING:
            raise IllegalActionError(f"column {column}: the game is over ({self._outcome(state)})")
        if state[rules.ALL] & rules.TOP_BIT[column - 1]:
            raise IllegalActionError(f"column {column} is full")
        return column - 1

    def format_action(self, state: np.ndarray, action: int) -> str:
        """Action 0..6 -> "1".."7"."""
        if not 0 <= int(action) < rules.COLUMNS:
            raise ValueError(f"connect4 actions are 0..6, not {action!r}")
        return str(int(action) + 1)

    def render(self, state: np.ndarray, last_action: int | None = None, color: bool = False) -> str:
        """One state [S] -> a diagram: column numbers above and below, X (player 0, red) and
        O (player 1, yellow), the top stone of column `last_action` in brackets, a status line."""
        state = self._single(state)
        grid = self._grid(state)                 # [6, 7], row 0 = top, -1 empty, else player
        marked_row = -1
        if last_action is not None and 0 <= last_action < rules.COLUMNS:
            filled = np.flatnonzero(grid[:, last_action] >= 0)
            marked_row = filled[0] if len(filled) else -1
        numbers = "".join(f" {c + 1} " for c in range(rules.COLUMNS)).rstrip()
        lines = [numbers]
        for r in range(rules.ROWS):
            marked_col = last_action if r == marked_row else -1
            lines.append(render_row(grid[r], _PIECES, _ANSI, color=color,
                                    marked_col=marked_col).rstrip())
        lines.append(numbers)
        lines.append(self._outcome(state))
        return "\n".join(lines)

    @classmethod
    def from_moves(cls, moves: str) -> np.ndarray:
        """A move string of 1-indexed column digits, e.g. "4453" (first player column 4, second
        player column 4, ...) -> state [S]. Raises ValueError (IllegalActionError for a full
        column or a move after the game ended) naming the offending move."""
        return cls().play_texts(moves, where=lambda i, _: f"move {i + 1} of {moves!r}")

    def describe(self, state: np.ndarray) -> str:
        """One-line description of a state [S] for messages: ply, side to move and the board rows
        top to bottom ('X', 'O', '.'), e.g. "ply 3, O to move, board ......./.../..XO.X."."""
        state = self._single(state)
        grid = self._grid(state)
        rows = "/".join("".join("." if p < 0 else _PIECES[p] for p in row) for row in grid)
        return f"ply {state[rules.PLY]}, {self._outcome(state)}, board {rows}"

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _grid(state: np.ndarray) -> np.ndarray:
        """[6, 7] int8 with row 0 = top: -1 empty, 0 first player's stone, 1 second player's."""
        own, stones, ply = int(state[rules.OWN]), int(state[rules.ALL]), int(state[rules.PLY])
        mover = ply & 1
        grid = np.full((rules.ROWS, rules.COLUMNS), -1, dtype=np.int8)
        for c in range(rules.COLUMNS):
            for row in range(rules.ROWS):
                bit = 1 << (c * rules.COLUMN_STRIDE + row)
                if stones & bit:
                    grid[rules.ROWS - 1 - row, c] = mover if own & bit else 1 - mover
        return grid

    @staticmethod
    def _outcome(state: np.ndarray) -> str:
        status, ply = int(state[rules.STATUS]), int(state[rules.PLY])
        if status == rules.LOSS:
            return f"{_PIECES[(ply - 1) & 1]} won"
        if status == rules.DRAW:
            return "draw"
        return f"{_PIECES[ply & 1]} to move"

    def _illegal_reason(self, state: np.ndarray, action: int) -> str:
        if not 0 <= action < rules.COLUMNS:
            return "there are only columns 0..6"
        if state[rules.STATUS] != rules.ONGOING:
            return "the game is over"
        return f"column {action} (\"{action + 1}\" in 1-indexed notation) is full"
