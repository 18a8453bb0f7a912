"""The position of a GTP game: its base (the empty board, or stones set up by `loadsgf` or a
handicap command), the GTP moves played from it, and the rules state they lead to, beyond what our
rules alone would allow.

A GTP game is not one of strict alternation, and it may outlast our rules:
  * `play` / `genmove` for the colour that is NOT to move: a pass of the other colour is put in
    first; a GTP move is the group [inserted pass,] action, taken back whole by `undo`.
  * Play after two passes: our rules end the game at two passes; a GTP controller may carry on
    (KGS cleanup, a misclick undone). The game then continues from the position with the two
    passes taken out (same board, same side to move, same superko history).
  * The move cap: the rules' state holds the superko history of at most
    game.spec.max_game_length plies (Go 9x9: 180). When a game reaches it, the next move is played
    on a rebased state: a fresh state with the same board and side to move, onto which the last
    REBASE_KEEP_PLIES moves are replayed (so that the observation's earlier boards and short ko
    cycles stay in the state, and the search sees them), the count of plies starting again.
  * Positional superko over the whole game: every board of the game is kept here (`Line.boards`),
    and a stone move that recreates any of them is illegal, however long ago it was, past any
    number of rebases. The check is exact (whole boards, not hashes).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from azero.games import IllegalActionError

REBASE_KEEP_PLIES = 24           # moves replayed onto a position rebased at the move cap


@dataclass
class Line:
    """One line of play from a base position, with every state along it."""
    states: list[np.ndarray]     # states[i]: the rules state [S] after i actions (0: the base)
    actions: list[int]           # the actions played (no two-pass pair but at the end)
    boards: set[bytes]           # every board of the line (game.grid bytes), the current included

    @property
    def state(self) -> np.ndarray:
        return self.states[-1]

    def copy(self) -> "Line":
        return Line(list(self.states), list(self.actions), set(self.boards))


@dataclass(frozen=True)
class Setup:
    """Stones on the board before the first move (SGF AB / AW), and who moves first."""
    black: tuple[int, ...]
    white: tuple[int, ...]
    to_play: int


def max_fixed_handicap(size: int) -> int:
    """The most stones of a fixed handicap (GTP v2 section 4.1.1): 9 on odd boards from 9 x 9,
    4 on the other boards from 7 x 7 (0: none)."""
    return 0 if size < 7 or size > 25 else 9 if size % 2 == 1 and size >= 9 else 4


def fixed_handicap_vertices(size: int, stones: int) -> list[str]:
    """The vertices of GTP v2's fixed handicap placement (section 4.1.1) of `stones` on a board
    `size` x `size`: the corner points (the 3-3 points below 13 x 13, else the 4-4 points) in the
    order lower left, upper right, upper left, lower right; from 6 stones the middle of the left
    and right sides, from 8 the middle of the lower and upper sides; the centre with 5, 7 and 9.
    ValueError for more than max_fixed_handicap(size) or fewer than 2 stones."""
    most = max_fixed_handicap(size)
    if not 2 <= stones <= most:
        raise ValueError(f"fixed handicap on {size}x{size} is 2 to {most} stones, not {stones}")
    lo = 2 if size < 13 else 3
    hi, mid = size - 1 - lo, size // 2

    def name(col, row):                       # 0-based column and row from the lower left
        return "ABCDEFGHJKLMNOPQRSTUVWXYZ"[col] + str(row + 1)

    out = [name(lo, lo), name(hi, hi), name(lo, hi), name(hi, lo)][:stones]
    if stones >= 6:
        out += [name(lo, mid), name(hi, mid)]
    if stones >= 8:
        out += [name(mid, lo), name(mid, hi)]
    if stones >= 5 and stones % 2 == 1:
        out.append(name(mid, mid))
    return out


def stones_state(game, black, white, to_play: int) -> np.ndarray:
    """A fresh state [S] (empty history) with stones on the points `black` and `white`."""
    size = game.spec.board_shape[0]
    grid = [["."] * size for _ in range(size)]
    for points, stone in ((black, "X"), (white, "O")):
        for p in points:
            grid[int(p) // size][int(p) % size] = stone
    return game.from_diagram("\n".join("".join(row) for row in grid), to_play=to_play)


class GtpPosition:
    """A game as a GTP controller set it up: base + GTP moves -> rules state. Built whole (a
    failure raises and leaves nothing half done); `play` adds one GTP move."""

    def __init__(self, game, setup: Setup | None = None, moves=()):
        self.game = game
        self.setup = setup
        self.pass_action = game.spec.num_actions - 1
        base = self._base()
        self.line = Line([base], [], {self._board(base)})
        self.moves: list[list[int]] = []      # GTP moves, each [inserted pass,] action
        for group in moves:
            self._play(self.line, group)
            self.moves.append(list(group))

    # ------------------------------------------------------------------ reading

    @property
    def state(self) -> np.ndarray:
        """The current rules state [S] (terminal after two passes, truncated at the cap)."""
        return self.line.state

    @property
    def actions(self) -> list[int]:
        """Every action of the game from the base, inserted passes included."""
        return [a for group in self.moves for a in group]

    def to_play(self, state: np.ndarray | None = None) -> int:
        state = self.line.state if state is None else state
        return int(self.game.to_play(state[None])[0])

    def plies(self, line: Line | None = None) -> int:
        """Plies of the game along `line` (the state's own count restarts at a rebase)."""
        line = self.line if line is None else line
        return max(len(line.actions), int(self.game.move_number(line.state[None])[0]))

    # ------------------------------------------------------------------ playing

    def play(self, group: list[int]) -> list[tuple[np.ndarray | None, int, np.ndarray]]:
        """Play the actions of one GTP move. Returns its steps (before, action, after), `before`
        None where the line jumped (passes taken out, a rebase) and a kept search tree is stale.
        Raises IllegalActionError, changing nothing."""
        line = self.line.copy()
        steps = self._play(line, group)
        self.moves.append(list(group))
        self.line = line
        return steps

    def _play(self, line: Line, group) -> list[tuple[np.ndarray | None, int, np.ndarray]]:
        steps = []
        for a in group:
            before = line.state
            jumped = self.resume(line)
            self.advance(line, int(a))
            steps.append((None if jumped else before, int(a), line.state))
        return steps

    def resume(self, line: Line) -> bool:
        """Make `line` ready for a move: a game ended by two passes goes on with them taken out,
        one at the move cap goes on from a rebased state. True if the line changed."""
        game = self.game
        state = line.state
        if game.terminal(state[None])[0] and len(line.actions) >= 2 \
                and line.actions[-1] == line.actions[-2] == self.pass_action:
            del line.states[-2:], line.actions[-2:]
            return True
        if game.move_number(state[None])[0] >= game.spec.max_game_length:
            self._rebase(line)
            return True
        return False

    def advance(self, line: Line, action: int) -> None:
        """Play `action` on the ready `line` (see `resume`); IllegalActionError if the rules or
        positional superko over the whole line refuse it (the line is then unchanged)."""
        after = self.game.step(line.state[None], np.array([action], dtype=np.int64))[0]
        board = self._board(after)
        if action != self.pass_action and board in line.boards:
            raise IllegalActionError(
                f"{self.game.format_action(line.state, action)} is illegal: it repeats an earlier "
                f"position of the game (positional superko)")
        line.states.append(after)
        line.actions.append(int(action))
        line.boards.add(board)

    def repeats(self, line: Line, action: int) -> bool:
        """True if the stone move `action`, legal by the rules in line.state, recreates an
        earlier board of the line."""
        if action == self.pass_action:
            return False
        after = self.game.step(line.state[None], np.array([action], dtype=np.int64))[0]
        return self._board(after) in line.boards

    def legal_actions(self, line: Line) -> np.ndarray:
        """int [K]: the legal actions in line.state (ready, see `resume`) under superko over the
        whole line; the pass is always among them."""
        mask = self.game.legal_mask(line.state[None])[0]
        legal = np.flatnonzero(mask[:self.pass_action])
        allowed = [int(a) for a in legal if not self.repeats(line, int(a))]
        return np.array(allowed + [self.pass_action], dtype=np.int64)

    # ------------------------------------------------------------------ pieces

    def _base(self) -> np.ndarray:
        if self.setup is None:
            return self.game.initial_states(1)[0]
        return stones_state(self.game, self.setup.black, self.setup.white, self.setup.to_play)

    def _board(self, state: np.ndarray) -> bytes:
        return self.game.grid(state).tobytes()

    def _rebase(self, line: Line) -> None:
        """line.state, at the move cap, becomes a state that can go on: the board
        REBASE_KEEP_PLIES moves back as a fresh state with those moves replayed onto it. The
        boards of the line stay (the superko history of the whole game)."""
        keep = min(REBASE_KEEP_PLIES, len(line.actions))
        earlier = line.states[len(line.states) - 1 - keep]
        grid = self.game.grid(earlier).reshape(-1)
        state = stones_state(self.game, np.flatnonzero(grid == 0), np.flatnonzero(grid == 1),
                             self.to_play(earlier))
        for a in line.actions[len(line.actions) - keep:]:
            state = self.game.step(state[None], np.array([a], dtype=np.int64))[0]
        line.states[-1] = state
