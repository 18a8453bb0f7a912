"""Go 9x9 as a `Game` (see games/protocol.py): the batched array API over the numba kernels in
rules.py (games/kernel_game.py), plus what humans see: GTP-style coordinates, text diagrams, error
messages.

Conventions
  * Rules: Tromp-Taylor area scoring, positional superko, suicide illegal, two passes end the game.
    Komi 7 by default, set per Game: `Go9(komi=7.5)`; it is stored in every state (KOMI2 = 2 x
    komi), so a state carries its own komi. With an integer komi a game can be drawn (result 0).
  * The move cap, `Go9(max_game_length=180)` plies (passes included), truncates a game: a live
    state with that many plies is `truncated`, not terminal, and has no result (`adjudicate`
    scores the board as it stands, for matches). The rules go on past the cap while the superko
    history has room: each state holds the positions of max_game_length stone moves, after that
    only pass is legal (two passes then end the game). A caller that wants long games with the
    whole history (a GTP engine) makes a Go9 with a larger max_game_length: its states are wider
    (rules.state_size_for), the kernels are the same.
  * action = row * 9 + col for a stone, row 0 = the TOP row as drawn (GTP row 9), col 0 = column
    "A"; action 81 = pass. Notation as in GTP: columns A-J without I, rows 1 (bottom) to 9 (top),
    e.g. "C7" = action 2 * 9 + 2 = 20; "pass". A = 82: legal_mask is [B, 82], and pass is legal
    in every position until the game is over.
  * players: 0 = Black ("X"), moves first; 1 = White ("O").
  * state row: int64 [spec.state_size] (rules.STATE_SIZE = 153 words at the default cap); see
    rules.py for the layout. move_number = plies played, passes included.
  * result: +1 / -1 if the side to move has won / lost the finished game, 0 for a draw (only with
    an integer komi) or a game not over.
  * observation: float32 [23, 9, 9] from the side to move's view (planes: rules.OBS_*): own and
    opponent stones now and 1..7 plies ago (16), Black to move, komi for the side to move / 10,
    legal moves (superko applied), own and opponent stones in atari, previous ply was a pass, ones.
  * symmetries: the 8 of the square (rules.symmetry_point); pass maps to itself.

Beyond the protocol: `step_with_info` (step + legal mask + terminal + result of the new states in
one pass), `adjudicate` (the side to move's score of a cut-off game), `ownership` (area ownership, the target of an ownership head), `score` (Tromp-Taylor
area score), `grid`, and builders `from_diagram` / `from_moves` for tests and tools.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..kernel_game import KernelGame, render_row
from ..protocol import GameSpec, IllegalActionError
from . import rules

COLUMN_LETTERS = "ABCDEFGHJ"
_STONES = ("X", "O")
_NAMES = ("Black", "White")
_ANSI = ("\x1b[1;34m", "\x1b[1;33m")    # blue for Black, yellow for White (readable on dark/light)

_PERMUTATIONS = np.concatenate(
    [rules.POINT_PERM, np.full((rules.NUM_SYMMETRIES, 1), rules.PASS, dtype=np.int64)], axis=1)
_PERMUTATIONS.flags.writeable = False
# [82, 2, 9, 9]: plane 0 the point a stone is played on, plane 1 all ones for a pass
_ACTION_PLANES = np.zeros((rules.NUM_ACTIONS, 2, rules.SIZE, rules.SIZE), np.float32)
_ACTION_PLANES[:rules.NUM_POINTS, 0] = np.eye(rules.NUM_POINTS, dtype=np.float32).reshape(
    rules.NUM_POINTS, rules.SIZE, rules.SIZE)
_ACTION_PLANES[rules.PASS, 1] = 1.0
_ACTION_PLANES.flags.writeable = False


class Go9(KernelGame):
    rules = rules
    spec = GameSpec(
        name="go9",
        num_actions=rules.NUM_ACTIONS,
        observation_shape=(rules.NUM_PLANES, rules.SIZE, rules.SIZE),
        state_size=rules.STATE_SIZE,
        max_game_length=rules.MAX_GAME_LENGTH,
        num_symmetries=rules.NUM_SYMMETRIES,
        action_permutations=_PERMUTATIONS,
        board_shape=(rules.SIZE, rules.SIZE),
        alternating_turns=True,          # to_play is PLY % 2, and every move (pass too) is a ply
        action_planes=_ACTION_PLANES,
    )

    def __init__(self, komi: float = rules.DEFAULT_KOMI,
                 max_game_length: int = rules.MAX_GAME_LENGTH):
        komi2 = 2 * float(komi)
        if not math.isfinite(komi2) or komi2 != int(komi2) or abs(komi) > rules.NUM_POINTS:
            raise ValueError(f"komi must be a finite multiple of 0.5 within +-81, got {komi!r}")
        if isinstance(max_game_length, bool) or not isinstance(max_game_length, (int, np.integer)) \
                or max_game_length < 1:
            raise ValueError(f"max_game_length must be a positive integer, got {max_game_length!r}")
        self.komi = float(komi)
        if max_game_length != rules.MAX_GAME_LENGTH:
            self.spec = dataclasses.replace(
                Go9.spec, max_game_length=int(max_game_length),
                state_size=rules.state_size_for(int(max_game_length)))
        self._initial = np.zeros(self.spec.state_size, dtype=np.int64)
        self._initial[rules.KOMI2] = int(komi2)

    # ---------------------------------------------------------------- batched array API

    def initial_states(self, n: int) -> np.ndarray:
        """[n, S] empty boards, Black to move, with this Game's komi."""
        return np.tile(self._initial, (n, 1))

    def ownership(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> int8 [B, 9, 9]: Tromp-Taylor area of the current board from the side to
        move's view (+1 own stone or empty point reaching only own stones, -1 the opponent's,
        0 neutral). On a finished game this is the ownership target; for the target of an earlier
        position of the same game, negate it where that position's side to move differs."""
        states = self._batch(states)
        out = np.empty((len(states), rules.SIZE, rules.SIZE), dtype=np.int8)
        rules.ownership(states, out)
        return out

    def adjudicate(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> float32 [B]: +1 / 0 / -1 as the Tromp-Taylor area score of the board as it
        stands favours the side to move (dead stones count as alive). For matches that must score
        a game cut off by the cap; equals `result` on a finished game. Never a training label."""
        states = self._batch(states)
        black_ahead = np.sign(self.score(states)).astype(np.float32)
        return np.where(self.to_play(states) == 0, black_ahead, -black_ahead)

    def score(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> float64 [B]: Tromp-Taylor area of Black minus White minus komi on the current
        board (for a finished game: its final score; positive means Black wins)."""
        states = self._batch(states)
        out = np.empty(len(states), dtype=np.float64)
        rules.area_score(states, out)
        return out

    # ---------------------------------------------------------------- symmetries

    def transform_states(self, states: np.ndarray, k: int) -> np.ndarray:
        """Symmetry k (0..7, see rules.symmetry_point) applied to every state [B, S]."""
        states = self._batch(states)
        k = int(k)
        if not 0 <= k < rules.NUM_SYMMETRIES:
            raise ValueError(f"go9 has symmetries 0..7, not {k!r}")
        if k == 0:
            return states.copy()
        out = np.empty_like(states)
        rules.transform_states(states, k, out)
        return out

    def transform_observations(self, obs: np.ndarray, k: np.ndarray) -> np.ndarray:
        """obs [N, C, 9, 9], k [N] -> obs with symmetry k[i] applied to row i."""
        obs = np.asarray(obs)
        k = self._symmetry_indices(k, len(obs))
        out = np.empty_like(obs)
        for sym in np.unique(k):
            rows = k == sym
            x = obs[rows]
            if sym & 4:
                x = np.swapaxes(x, -1, -2)
            if sym & 1:
                x = x[..., ::-1, :]
            if sym & 2:
                x = x[..., :, ::-1]
            out[rows] = x
        return out

    # ---------------------------------------------------------------- notation and display

    @staticmethod
    def point_name(point: int) -> str:
        """Point 0..80 -> GTP vertex, e.g. 0 -> "A9", 80 -> "J1"."""
        r, c = divmod(int(point), rules.SIZE)
        return f"{COLUMN_LETTERS[c]}{rules.SIZE - r}"

    @staticmethod
    def parse_point(text: str) -> int:
        """GTP vertex ("C7", "c7"; no "I" column) -> point 0..80, or PASS for "pass". Raises
        ValueError for anything else."""
        t = text.strip().upper()
        if not t:
            raise ValueError("empty move: enter a point such as C7, or pass")
        if t == "PASS":
            return rules.PASS
        col = COLUMN_LETTERS.find(t[0])
        if col < 0 or len(t) < 2 or not (t[1:].isascii() and t[1:].isdigit()):
            hint = " (there is no column I in Go)" if t[0] == "I" else ""
            raise ValueError(f"{text.strip()!r} is not a point: write a column A-J and a row "
                             f"1-9, e.g. C7, or pass{hint}")
        row = int(t[1:])
        if not 1 <= row <= rules.SIZE:
            raise ValueError(f"there is no row {row}: rows are 1 to 9")
        return (rules.SIZE - row) * rules.SIZE + col

    def parse_action(self, state: np.ndarray, text: str) -> int:
        """A GTP vertex or "pass" (any case, blanks ignored) -> action. Raises ValueError for
        text that is not a move, IllegalActionError (a ValueError) for an illegal one."""
        state = self._single(state)
        action = self.parse_point(text)
        if state[rules.STATUS] != rules.ONGOING:
            raise IllegalActionError(f"{text.strip()}: the game is over ({self._outcome(state)})")
        if action != rules.PASS and not self.legal_mask(state[None])[0, action]:
            raise IllegalActionError(f"{self.point_name(action)} is illegal: "
                                     f"{self._why_illegal(state, action)}")
        return action

    def format_action(self, state: np.ndarray, action: int) -> str:
        """Action -> GTP vertex ("C7") or "pass"."""
        action = int(action)
        if not 0 <= action < rules.NUM_ACTIONS:
            raise ValueError(f"go9 actions are 0..81, not {action!r}")
        return "pass" if action == rules.PASS else self.point_name(action)

    def grid(self, state: np.ndarray) -> np.ndarray:
        """One state [S] -> int8 [9, 9], row 0 = top: -1 empty, 0 Black stone, 1 White stone."""
        state = self._single(state)
        out = np.full(rules.NUM_POINTS, -1, dtype=np.int8)
        for colour, base in ((0, rules.BLACK), (1, rules.WHITE)):
            bits = (int(state[base]) & (2**64 - 1)) | (int(state[base + 1]) << 64)
            out[[p for p in range(rules.NUM_POINTS) if bits >> p & 1]] = colour
        return out.reshape(rules.SIZE, rules.SIZE)

    def render(self, state: np.ndarray, last_action: int | None = None, color: bool = False) -> str:
        """One state [S] -> a diagram: GTP coordinates around the board, X Black, O White, the
        stone of `last_action` in brackets, a status line."""
        state = self._single(state)
        grid = self.grid(state)
        letters = "   " + " ".join(f" {c}" for c in COLUMN_LETTERS)
        lines = [letters]
        for r in range(rules.SIZE):
            on_row = last_action is not None and last_action // rules.SIZE == r
            marked_col = last_action % rules.SIZE if on_row else -1
            row = render_row(grid[r], _STONES, _ANSI, color=color, marked_col=marked_col)
            lines.append(f"{rules.SIZE - r:2d} {row} {rules.SIZE - r}")
        lines.append(letters)
        lines.append(self._outcome(state))
        return "\n".join(lines)

    def describe(self, state: np.ndarray) -> str:
        """One-line description of a state [S] for messages."""
        state = self._single(state)
        rows = "/".join("".join("." if p < 0 else _STONES[p] for p in row)
                        for row in self.grid(state))
        return f"ply {state[rules.PLY]}, {self._outcome(state)}, board {rows}"

    # ---------------------------------------------------------------- building positions

    def from_moves(self, moves) -> np.ndarray:
        """Moves as GTP vertices, a list or one blank-separated string ("E5 D4 pass C3"), played
        from the empty board -> state [S]. Raises ValueError naming the offending move."""
        return self.play_texts(moves.split() if isinstance(moves, str) else moves)

    def from_diagram(self, diagram: str, to_play: int | str = 0, ply: int | None = None
                     ) -> np.ndarray:
        """A position drawn as rows of "X" (Black), "O" (White) and "." (empty), blanks between
        points optional, e.g.
            . X O .
            X O . O
        -> state [S]. A diagram smaller than 9 x 9 fills the top-left corner (the rest is empty).
        `to_play`: 0 / "X" / "B" for Black, 1 / "O" / "W" for White. `ply` (default: 0 or 1 to
        match `to_play`) must have the parity of the side to move. The history starts here: the
        drawn position counts as already seen for superko, earlier boards are empty."""
        colour = {"0": 0, "X": 0, "B": 0, "1": 1, "O": 1, "W": 1}.get(str(to_play).upper())
        if colour is None:
            raise ValueError(f"to_play must be 0/X/B or 1/O/W, got {to_play!r}")
        if ply is None:
            ply = colour
        if ply % 2 != colour or ply < 0:
            raise ValueError(f"ply {ply} does not fit {_NAMES[colour]} to move")
        rows = [line.replace(" ", "") for line in diagram.strip("\n").splitlines()]
        rows = [r for r in rows if r]
        if not rows or len(rows) > rules.SIZE or any(len(r) != len(rows[0]) for r in rows) \
                or len(rows[0]) > rules.SIZE:
            raise ValueError(f"a diagram has 1 to 9 rows of equal length (at most 9), got {rows}")
        state = self._initial.copy()
        for r, row in enumerate(rows):
            for c, ch in enumerate(row):
                if ch not in "XO.":
                    raise ValueError(f"unexpected {ch!r} in diagram row {r + 1}: use X, O, .")
                if ch != ".":
                    p = r * rules.SIZE + c
                    base = rules.BLACK if ch == "X" else rules.WHITE
                    word = base + (p >= 64)
                    state[word] |= rules.BIT_LO[p] | rules.BIT_HI[p]
        state[rules.PLY] = ply
        derived = np.empty((1, 3), dtype=np.int64)
        rules.recompute_derived(state[None], derived)
        state[rules.ATARI], state[rules.ATARI + 1], state[rules.HASH] = derived[0]
        if rules.has_string_without_liberty(state[rules.BLACK], state[rules.BLACK + 1],
                                            state[rules.WHITE], state[rules.WHITE + 1]):
            raise ValueError("the diagram has a string without liberties")
        return state

    # ---------------------------------------------------------------- helpers

    def _outcome(self, state: np.ndarray) -> str:
        ply = int(state[rules.PLY])
        komi = state[rules.KOMI2] / 2
        if state[rules.STATUS] == rules.ONGOING:
            cut = (f" (cut off: move cap {self.spec.max_game_length} reached)"
                   if self.truncated(state[None])[0] else "")
            return f"{_NAMES[ply & 1]} ({_STONES[ply & 1]}) to move, komi {komi:g}{cut}"
        score = state[rules.SCORE] / 2
        if score == 0:
            return "game over (two passes): draw"
        winner = 0 if score > 0 else 1
        return (f"game over (two passes): {_NAMES[winner]} wins by {abs(score):g} "
                f"({'BW'[winner]}+{abs(score):g}, komi {komi:g})")

    def _why_illegal(self, state: np.ndarray, action: int) -> str:
        if state[rules.STATUS] != rules.ONGOING:
            return "the game is over"
        if action == rules.PASS:
            return "?"
        if self.grid(state).reshape(-1)[action] >= 0:
            return "the point is occupied"
        capacity = rules.history_capacity(len(state))
        if state[rules.NUM_HASHES] >= capacity:
            return (f"the superko history is full ({capacity} stone moves; only pass is legal, "
                    f"a Go9 with a larger max_game_length holds more)")
        probe = state.copy()[None]
        out = np.empty_like(probe)
        # Without the history the move is legal iff it is not suicide.
        probe[0, rules.NUM_HASHES] = 0
        probe[0, rules.LAST_CAPTURE] = 0
        if rules.step(probe, np.array([action], dtype=np.int64), out) >= 0:
            return "suicide"
        return "it would repeat an earlier position (positional superko)"

    def _illegal_reason(self, state: np.ndarray, action: int) -> str:
        if not 0 <= action < rules.NUM_ACTIONS:
            return "actions are 0..80 (points) and 81 (pass)"
        return f"{self.format_action(state, action)}: {self._why_illegal(state, action)}"
