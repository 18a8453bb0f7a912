"""A GTP v2 engine for Go 9x9 (for GoGui, Sabaki, gogui-twogtp, KGS / OGS bridges).

`GtpEngine.handle(line)` answers one input line (the protocol, no I/O) and `serve` is the loop
over stdin/stdout that `azero gtp` runs; tests drive `handle` line by line.

Protocol details (GTP v2, https://www.lysator.liu.se/~gunnar/gtp/):
  * Input lines are cleaned as the spec says: control characters other than tab and newline
    are removed, everything from "#" on is a comment, tabs become spaces; empty lines get no
    answer. A leading integer is the command id and is echoed: "=12 D4\\n\\n", "?12 ...\\n\\n".
  * Errors use the spec's texts: "unknown command", "syntax error", "illegal move",
    "cannot undo", "unacceptable size", "cannot load file". The reason an illegal move is
    illegal (occupied, suicide, superko) is written to the log (stderr), not the answer.
    A command that fails unexpectedly answers "? internal error: ..." and the engine goes on.

Rules are ours (games/go9: Tromp-Taylor area scoring, positional superko, no suicide) and are
enforced: `play` of a superko repetition answers "illegal move".

Going beyond a game of strict alternation, as GTP allows:
  * `play` / `genmove` for the colour that is NOT to move: a pass of the other colour is put in
    first (it is taken back together with the move by `undo`).
  * Play after two passes: our rules end the game at two passes; a GTP controller may carry on
    (KGS cleanup, a misclick undone). The engine then continues from the position with the two
    passes taken out (same board, same side to move, same superko history).
  * Our rules also end a game at the move limit (game.spec.max_game_length plies, passes
    included), which a GTP game may pass. The engine then goes on from a fresh state with the
    same board and side to move, onto which the last REBASE_KEEP_PLIES moves are replayed: their
    positions stay in the superko history (every ko or triple-ko cycle is shorter), older ones
    are forgotten, and the count of plies starts again. Superko repeats of positions older than
    that are not refused (a whole-board repetition that long is all but unknown in real games).
  * `komi` takes any number; our rules score in half points, so a komi that is not a multiple of
    0.5 is rounded to the nearest one (and logged).

Moves: `genmove` runs the search from the current position (tree reuse across moves) and answers
a vertex, "pass", or "resign" when the root value (side to move's view) is below
`resign_threshold` once at least `resign_min_plies` plies have been played. `kgs-genmove_cleanup`
never resigns and does not pass while a safe move remains on a neutral point: with Tromp-Taylor
scoring every stone on the board counts, so dead opponent stones must be captured and dame
filled before passing (a neutral point is an empty point whose region touches both colours;
a move is safe if no reply of the opponent captures any of our stones).

Time (`time_settings`, `time_left`): the clock is respected by a per-move budget. Canadian byo
yomi: in byo yomi, the period's time left divided by the stones left; in main time, the main
time left divided by the moves we still expect to play (EXPECTED_GAME_PLIES minus the plies
played, halved, at least MIN_MOVES_LEFT), plus one byo-yomi stone's share if there is byo yomi.
Of that we use TIME_SAFETY and keep TIME_LAG seconds for the controller's overhead. The search
then runs at most `--sims` simulations, fewer if the budget runs out: a first small chunk
(PROBE_SIMULATIONS) measures the speed when it is not yet known; then the simulations that fit
CHUNK_FRACTION of the time left at the measured speed, and a last chunk for what is left,
re-measured (the cost of a simulation varies; this keeps the overshoot small). The chunks run on
the same tree, so visits add up; with Gumbel each chunk does its own sequential halving over the
kept tree. Without time settings (or with byo_yomi_time > 0 and
byo_yomi_stones == 0: "no time limit", as the spec says) every move gets `--sims`. Between
`time_left` reports the engine keeps its own clock.
"""
from __future__ import annotations

import re
import sys
import time
import traceback
from dataclasses import dataclass, replace
from typing import Callable, TextIO

import numpy as np

import azero
from azero.games import IllegalActionError

# time management
EXPECTED_GAME_PLIES = 100        # a 9x9 game lasts about this many plies
MIN_MOVES_LEFT = 10              # never plan for fewer of our moves than this in main time
TIME_SAFETY = 0.8                # share of the computed budget that we spend
TIME_LAG = 0.05                  # seconds kept for the controller and the pipes
PROBE_SIMULATIONS = 8            # first chunk when the search speed is not known yet
MAX_CHUNKS = 3                   # search runs per move under a clock
REBASE_KEEP_PLIES = 24           # moves replayed onto a position rebased at the move limit
CHUNK_FRACTION = 0.75            # a chunk before the last plans for this share of the time left

DEFAULT_RESIGN_THRESHOLD = -0.9
DEFAULT_RESIGN_MIN_PLIES = 20

_VERTEX = re.compile(r"^[A-HJ-Z](\d{1,2})$")


class GtpError(Exception):
    """A command failed: the message becomes the "? message" answer."""


@dataclass
class Choice:
    action: int
    value: float | None = None       # root value, side to move's view (None: not a search)
    search: object | None = None     # SearchOutput, if any
    simulations: int = 0
    resign: bool = False             # the player gives up (an external engine's "resign")


# --------------------------------------------------------------------------- move generators

class SearchMover:
    """Moves from the batched search over an evaluator (a checkpoint, or random rollouts), one
    tree kept across moves (`played` advances it), simulations capped by a time budget."""

    def __init__(self, game, evaluator, config, seed: int = 0):
        from azero.search import BatchedSearch
        self.game = game
        self.evaluator = evaluator
        self.config = config
        self.search = BatchedSearch(game, config, 1, seed=seed)
        self.seconds_per_simulation: float | None = None
        self._root: np.ndarray | None = None

    @property
    def max_simulations(self) -> int:
        return self.config.num_simulations

    def reset(self) -> None:
        self.search.reset()
        self._root = None

    def played(self, before: np.ndarray, action: int, after: np.ndarray) -> None:
        if self._root is not None and np.array_equal(self._root, before):
            self.search.advance(np.array([action], dtype=np.int64))
            self._root = after.copy()
        else:
            self.reset()

    def _run(self, state: np.ndarray, simulations: int):
        # BatchedSearch reads the number of simulations from its config at each run; the other
        # settings are fixed when it is built and stay as they are.
        self.search.config = replace(self.config, num_simulations=int(simulations))
        t0 = time.monotonic()
        out = self.search.run(state[None], self.evaluator, add_noise=False, temperature=0.0)
        if simulations > 0:
            rate = (time.monotonic() - t0) / simulations
            prev = self.seconds_per_simulation
            self.seconds_per_simulation = rate if prev is None else 0.5 * (prev + rate)
        self._root = state.copy()
        return out

    def generate(self, state: np.ndarray, budget: float | None) -> Choice:
        limit = self.max_simulations
        if budget is None:
            out, done = self._run(state, limit), limit
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
                out = self._run(state, n)
                done += n
                if done >= limit or time.monotonic() >= deadline:
                    break
        return Choice(int(out.actions[0]), float(out.root_value[0]), out, done)


class PlayerMover:
    """Moves from any Player (e.g. "random"), one game."""

    def __init__(self, player):
        self.player = player
        player.begin(1)

    def reset(self) -> None:
        self.player.reset()

    def played(self, before: np.ndarray, action: int, after: np.ndarray) -> None:
        self.player.observe(np.array([action], dtype=np.int64), np.array([True]))

    def generate(self, state: np.ndarray, budget: float | None) -> Choice:
        decision = self.player.act(state[None], np.array([True]))
        search = getattr(decision, "search", None)
        value = float(search.root_value[0]) if search is not None else None
        return Choice(int(decision.actions[0]), value, search, resign=decision.resigns())


def make_mover(spec: str, game, *, simulations: int | None = None, seed: int = 0,
               device: str = "cpu"):
    """The move generator a player spec names (azero.players.make_player): a search player
    becomes a SearchMover (time control, resignation), anything else a PlayerMover."""
    from azero.players import SearchPlayer, make_player
    player = make_player(spec, game, simulations=simulations, seed=seed, device=device)
    if isinstance(player, SearchPlayer):
        return SearchMover(game, player.evaluator, player.config, seed=seed)
    return PlayerMover(player)


# --------------------------------------------------------------------------- time

@dataclass
class TimeSettings:
    main_time: float
    byo_yomi_time: float
    byo_yomi_stones: int

    @property
    def unlimited(self) -> bool:
        return self.byo_yomi_time > 0 and self.byo_yomi_stones == 0


@dataclass
class Clock:
    left: float       # seconds: main time left (stones == 0) or left in this byo-yomi period
    stones: int       # 0 in main time, else stones still to play in this byo-yomi period


def move_budget(settings: TimeSettings | None, clock: Clock, plies_played: int) -> float | None:
    """Seconds to spend on the next move (None: no time limit). See the module docstring."""
    if settings is None or settings.unlimited:
        return None
    if clock.stones > 0:
        budget = clock.left / clock.stones
    else:
        moves_left = max(MIN_MOVES_LEFT, (EXPECTED_GAME_PLIES - plies_played + 1) // 2)
        budget = clock.left / moves_left
        if settings.byo_yomi_time > 0 and settings.byo_yomi_stones > 0:
            budget += settings.byo_yomi_time / settings.byo_yomi_stones
    return max(0.0, TIME_SAFETY * budget - TIME_LAG)


def _spend(settings: TimeSettings, clock: Clock, seconds: float) -> Clock:
    """Our own bookkeeping of a clock after a move that took `seconds`."""
    left, stones = clock.left - seconds, clock.stones
    if stones > 0:
        stones -= 1
        if stones == 0:                      # period survived: a fresh one
            return Clock(settings.byo_yomi_time, settings.byo_yomi_stones)
        return Clock(max(0.0, left), stones)
    if left <= 0 and settings.byo_yomi_stones > 0:
        return Clock(settings.byo_yomi_time, settings.byo_yomi_stones)
    return Clock(max(0.0, left), 0)


# --------------------------------------------------------------------------- the engine

class GtpEngine:
    """The protocol state machine: position (moves from a base position), komi, clocks."""

    COMMANDS = ("protocol_version", "name", "version", "known_command", "list_commands", "quit",
                "boardsize", "clear_board", "komi", "play", "genmove", "kgs-genmove_cleanup",
                "undo", "showboard", "final_score", "time_settings", "time_left", "loadsgf")

    def __init__(self, mover, game, *, name: str = "azero", version: str = azero.__version__,
                 resign_threshold: float | None = DEFAULT_RESIGN_THRESHOLD,
                 resign_min_plies: int = DEFAULT_RESIGN_MIN_PLIES,
                 game_factory: Callable[[float], object] | None = None,
                 log: TextIO | None = None):
        self.mover = mover
        self.game = game
        self.name = name
        self.version = version
        self.resign_threshold = resign_threshold
        self.resign_min_plies = resign_min_plies
        self._make_game = game_factory or (lambda komi: type(game)(komi=komi))
        self.log = log if log is not None else sys.stderr
        self.size = game.spec.board_shape[0]
        self.pass_action = game.spec.num_actions - 1
        self.quit_requested = False
        self.time_settings: TimeSettings | None = None
        self.clocks = [Clock(0.0, 0), Clock(0.0, 0)]
        self._setup: tuple[list[int], list[int], int] | None = None   # loadsgf AB/AW, to play
        self._moves: list[list[int]] = []   # GTP moves, each [inserted pass,] action
        self._state, self._effective = self._replay(self._moves)
        self._handlers = {name: getattr(self, "cmd_" + name.replace("-", "_"))
                          for name in self.COMMANDS}

    # ------------------------------------------------------------------ line handling

    @staticmethod
    def clean(line: str) -> str:
        """The spec's preprocessing of one line: control characters but tab and newline gone,
        comment cut, tabs to spaces, outer blanks stripped."""
        line = "".join(ch for ch in line if ch in "\t\n" or (ch >= " " and ch != "\x7f"))
        line = line.split("#", 1)[0]
        return line.replace("\t", " ").strip()

    def handle(self, line: str) -> str | None:
        """The full answer to one input line ("=id result\\n\\n" / "?id error\\n\\n"), or None
        for a line that gets no answer (empty or only a comment)."""
        text = self.clean(line)
        if not text:
            return None
        words = text.split()
        cid = ""
        if words[0].isascii() and words[0].isdigit():
            cid = words.pop(0)
        if not words:
            return f"?{cid} unknown command\n\n"
        command, args = words[0], words[1:]
        handler = self._handlers.get(command)
        if handler is None:
            return f"?{cid} unknown command\n\n"
        try:
            result = handler(args)
        except GtpError as e:
            return f"?{cid} {e}\n\n"
        except Exception as e:                        # never let one command kill the engine
            print(f"{self.name}: internal error in {text!r}:\n{traceback.format_exc()}",
                  file=self.log, flush=True)
            return f"?{cid} internal error: {' '.join(f'{type(e).__name__}: {e}'.split())}\n\n"
        # A blank line ends a response: none may appear inside a multi-line result.
        lines = ("" if result is None else str(result)).split("\n")
        result = lines[0] + "".join("\n" + line for line in lines[1:] if line.strip())
        return f"={cid} {result}\n\n"

    def _note(self, message: str) -> None:
        print(f"{self.name}: {message}", file=self.log, flush=True)

    # ------------------------------------------------------------------ position

    @property
    def state(self) -> np.ndarray:
        """The current position, state [S]."""
        return self._state

    @property
    def moves(self) -> list[int]:
        """The actions of the current game from the base position (inserted passes included)."""
        return [a for group in self._moves for a in group]

    def _base(self) -> np.ndarray:
        if self._setup is None:
            return self.game.initial_states(1)[0]
        black, white, to_play = self._setup
        return self._position(black, white, to_play)

    def _position(self, black, white, to_play: int) -> np.ndarray:
        """A fresh state [S] (empty history) with stones on the points `black` and `white`."""
        grid = [["."] * self.size for _ in range(self.size)]
        for points, stone in ((black, "X"), (white, "O")):
            for p in points:
                grid[p // self.size][p % self.size] = stone
        return self.game.from_diagram("\n".join("".join(row) for row in grid), to_play=to_play)

    def _rebased(self, effective: list[int]) -> np.ndarray:
        """The position after `effective`, which reaches the move limit, as a state that can go
        on: the board REBASE_KEEP_PLIES moves back as a fresh state, those moves replayed onto
        it (see the module docstring)."""
        keep = min(REBASE_KEEP_PLIES, len(effective))
        earlier = self._replay_actions(effective[:len(effective) - keep])
        grid = self.game.grid(earlier).reshape(-1)
        state = self._position(np.flatnonzero(grid == 0), np.flatnonzero(grid == 1),
                               self._to_play(earlier))
        for a in effective[len(effective) - keep:]:
            state = self.game.step(state[None], np.array([a], dtype=np.int64))[0]
        return state

    def _ended_by_passes(self, effective: list[int]) -> bool:
        return len(effective) >= 2 and effective[-1] == effective[-2] == self.pass_action

    def _resume(self, state: np.ndarray, effective: list[int]):
        """A position ready for a move: a game ended by two passes continues with them taken
        out; one ended by the move limit continues from a rebased state."""
        if not self.game.terminal(state[None])[0]:
            return state, effective
        if self._ended_by_passes(effective):
            effective = effective[:-2]
            return self._replay_actions(effective), effective
        return self._rebased(effective), effective

    def _extend(self, state: np.ndarray, effective: list[int], action: int):
        state, effective = self._resume(state, effective)
        after = self.game.step(state[None], np.array([action], dtype=np.int64))[0]
        return after, effective + [action]

    def _replay_actions(self, actions: list[int]) -> np.ndarray:
        """The state after `actions` (an effective list: no two-pass pair but at its end) from
        the base position, rebased at the move limit exactly as when they were played."""
        state, effective = self._base(), []
        for a in actions:
            state, effective = self._extend(state, effective, a)
        return state

    def _replay(self, groups: list[list[int]]):
        state, effective = self._base(), []
        for group in groups:
            for a in group:
                state, effective = self._extend(state, effective, a)
        return state, effective

    def _to_play(self, state: np.ndarray) -> int:
        return int(self.game.to_play(state[None])[0])

    def _commit(self, group: list[int]) -> None:
        """Play the actions of one GTP move (raises IllegalActionError, changing nothing)."""
        state, effective = self._state, self._effective
        steps = []
        for a in group:
            before_len = len(effective)
            new_state, effective = self._extend(state, effective, a)
            linear = len(effective) == before_len + 1
            steps.append((state if linear else None, a, new_state))
            state = new_state
        self._moves.append(list(group))
        self._state, self._effective = state, effective
        for before, a, after in steps:
            if before is None:
                self.mover.reset()
            else:
                self.mover.played(before, a, after)

    def _set_position(self, groups, setup=None, game=None) -> None:
        """Replace the whole position (clear_board, undo, komi, loadsgf); atomic."""
        old = (self._moves, self._setup, self.game)
        self._setup = setup
        if game is not None:
            self.game = game
        try:
            self._state, self._effective = self._replay(groups)
        except Exception:
            self._moves, self._setup, self.game = old
            raise
        self._moves = [list(g) for g in groups]
        self.mover.reset()

    # ------------------------------------------------------------------ argument parsing

    @staticmethod
    def _colour(word: str) -> int:
        w = word.lower()
        if w in ("b", "black"):
            return 0
        if w in ("w", "white"):
            return 1
        raise GtpError("syntax error")

    def _vertex(self, word: str) -> int:
        """A vertex or "pass" -> action. Not a vertex: syntax error; off the board: illegal."""
        w = word.upper()
        if w == "PASS":
            return self.pass_action
        m = _VERTEX.match(w)
        if not m:
            raise GtpError("syntax error")
        try:
            return self.game.parse_point(w)
        except ValueError:
            raise GtpError("illegal move") from None

    @staticmethod
    def _number(word: str, kind=float):
        try:
            value = kind(word)
        except ValueError:
            raise GtpError("syntax error") from None
        if kind is float and not np.isfinite(value):
            raise GtpError("syntax error")
        return value

    @staticmethod
    def _arity(args: list[str], low: int, high: int | None = None) -> None:
        if not low <= len(args) <= (low if high is None else high):
            raise GtpError("syntax error")

    # ------------------------------------------------------------------ administrative

    def cmd_protocol_version(self, args):
        return "2"

    def cmd_name(self, args):
        return self.name

    def cmd_version(self, args):
        return self.version

    def cmd_known_command(self, args):
        self._arity(args, 1)
        return "true" if args[0] in self._handlers else "false"

    def cmd_list_commands(self, args):
        return "\n".join(self.COMMANDS)

    def cmd_quit(self, args):
        self.quit_requested = True
        return ""

    # ------------------------------------------------------------------ setup

    def cmd_boardsize(self, args):
        self._arity(args, 1)
        size = self._number(args[0], int)
        if size != self.size:
            raise GtpError("unacceptable size")
        self._set_position([], None)
        return ""

    def cmd_clear_board(self, args):
        self._set_position([], None)
        self.clocks = [self._fresh_clock(), self._fresh_clock()]
        return ""

    def cmd_komi(self, args):
        self._arity(args, 1)
        komi = self._number(args[0], float)
        limit = self.size * self.size
        usable = min(limit, max(-limit, round(komi * 2) / 2))
        if usable != komi:
            self._note(f"komi {komi:g} is not a multiple of 0.5 within +-{limit}: "
                       f"scoring with {usable:g}")
        if usable != getattr(self.game, "komi", None):
            self._set_position(self._moves, self._setup, self._make_game(usable))
        return ""

    # ------------------------------------------------------------------ moves

    def cmd_play(self, args):
        self._arity(args, 2)
        colour, action = self._colour(args[0]), self._vertex(args[1])
        group = ([self.pass_action] if colour != self._to_play(self._state) else []) + [action]
        try:
            self._commit(group)
        except IllegalActionError as e:
            self._note(f"play {args[0]} {args[1]}: {e}")
            raise GtpError("illegal move") from None
        return ""

    def cmd_genmove(self, args):
        return self._genmove(args, cleanup=False)

    def cmd_kgs_genmove_cleanup(self, args):
        return self._genmove(args, cleanup=True)

    def _genmove(self, args, cleanup: bool) -> str:
        self._arity(args, 1)
        colour = self._colour(args[0])
        t0 = time.monotonic()
        prefix = [self.pass_action] if colour != self._to_play(self._state) else []
        try:
            state, effective = self._state, self._effective
            for a in prefix:
                state, effective = self._extend(state, effective, a)
            state, effective = self._resume(state, effective)
        except IllegalActionError as e:                  # defensive: nothing can be played
            self._note(f"genmove {args[0]}: {e}; answering pass")
            return "pass"
        # plies of the game (the state's own count restarts at a rebase: see the docstring)
        plies = max(len(effective), int(self.game.move_number(state[None])[0]))
        budget = move_budget(self.time_settings, self.clocks[colour], plies)
        if prefix or effective != self._effective:
            self.mover.reset()
        choice = self.mover.generate(state, budget)
        action = choice.action
        if choice.resign:
            self._note("resigning: the move generator gave up")
            self._spend(colour, time.monotonic() - t0)
            return "resign"
        if cleanup and action == self.pass_action:
            action = self._cleanup_move(state, choice)
        elif (not cleanup and self.resign_threshold is not None and choice.value is not None
              and plies >= self.resign_min_plies and choice.value < self.resign_threshold):
            self._note(f"resigning: root value {choice.value:.3f} < {self.resign_threshold}")
            self._spend(colour, time.monotonic() - t0)
            return "resign"
        self._commit(prefix + [action])
        self._spend(colour, time.monotonic() - t0)
        if choice.simulations:
            self._note(f"genmove {args[0]}: {self.game.format_action(state, action)} after "
                       f"{choice.simulations} simulations, value "
                       f"{'n/a' if choice.value is None else f'{choice.value:+.3f}'}"
                       + ("" if budget is None else f", budget {budget:.2f}s"))
        return self.game.format_action(state, action).upper() if action != self.pass_action \
            else "pass"

    def _cleanup_move(self, state: np.ndarray, choice: Choice) -> int:
        """kgs-genmove_cleanup instead of a pass: the preferred safe move on a neutral point, or
        pass if there is none (see the module docstring)."""
        game = self.game
        n_points = self.pass_action
        legal = game.legal_mask(state[None])[0, :n_points]
        neutral = (game.ownership(state[None])[0].reshape(-1) == 0) & \
            (game.grid(state).reshape(-1) < 0)
        candidates = np.flatnonzero(legal & neutral)
        if len(candidates) == 0:
            return self.pass_action
        us = self._to_play(state)
        afters = game.step(np.repeat(state[None], len(candidates), axis=0), candidates)
        safe = []
        for a, after in zip(candidates, afters):
            ours = int((game.grid(after) == us).sum())
            replies = np.flatnonzero(game.legal_mask(after[None])[0, :n_points])
            if len(replies):
                nexts = game.step(np.repeat(after[None], len(replies), axis=0), replies)
                if any(int((game.grid(s) == us).sum()) < ours for s in nexts):
                    continue
            safe.append(int(a))
        if not safe:
            return self.pass_action
        search = choice.search
        if search is None:
            return safe[0]
        visits = np.asarray(search.visit_counts[0], dtype=np.float64)
        prior = np.asarray(search.policy_target[0], dtype=np.float64)
        return max(safe, key=lambda a: (visits[a], prior[a], -a))

    def cmd_undo(self, args):
        if not self._moves:
            raise GtpError("cannot undo")
        self._set_position(self._moves[:-1], self._setup)
        return ""

    # ------------------------------------------------------------------ information

    def cmd_showboard(self, args):
        last = self._effective[-1] if self._effective else None
        if last == self.pass_action:
            last = None
        return "\n" + self.game.render(self._state, last_action=last)

    def cmd_final_score(self, args):
        score = float(self.game.score(self._state[None])[0])
        if score == 0:
            return "0"
        return f"{'B' if score > 0 else 'W'}+{abs(score):.1f}"

    # ------------------------------------------------------------------ time

    def _fresh_clock(self) -> Clock:
        ts = self.time_settings
        if ts is None:
            return Clock(0.0, 0)
        if ts.main_time <= 0 and ts.byo_yomi_stones > 0:
            return Clock(ts.byo_yomi_time, ts.byo_yomi_stones)
        return Clock(ts.main_time, 0)

    def _spend(self, colour: int, seconds: float) -> None:
        if self.time_settings is not None and not self.time_settings.unlimited:
            self.clocks[colour] = _spend(self.time_settings, self.clocks[colour], seconds)

    def cmd_time_settings(self, args):
        self._arity(args, 3)
        main, byo = self._number(args[0]), self._number(args[1])
        stones = self._number(args[2], int)
        if main < 0 or byo < 0 or stones < 0:
            raise GtpError("syntax error")
        self.time_settings = TimeSettings(main, byo, stones)
        self.clocks = [self._fresh_clock(), self._fresh_clock()]
        return ""

    def cmd_time_left(self, args):
        self._arity(args, 3)
        colour, left = self._colour(args[0]), self._number(args[1])
        stones = self._number(args[2], int)
        if stones < 0:
            raise GtpError("syntax error")
        if self.time_settings is None:       # a clock without settings: treat it as absolute
            self.time_settings = TimeSettings(left, 0.0, 0)
        self.clocks[colour] = Clock(max(0.0, left), stones)
        return ""

    # ------------------------------------------------------------------ files

    def cmd_loadsgf(self, args):
        self._arity(args, 1, 2)
        move_number = self._number(args[1], int) if len(args) == 2 else None
        from azero.records_sgf import SgfError, parse_sgf
        try:
            with open(args[0], "rb") as f:
                games = parse_sgf(f.read())
        except (OSError, SgfError) as e:
            self._note(f"loadsgf {args[0]}: {e}")
            raise GtpError("cannot load file") from None
        g = games[0]
        moves = g.moves if move_number is None else g.moves[:max(0, move_number - 1)]
        game = self.game
        if g.komi is not None:
            komi = min(81.0, max(-81.0, round(float(g.komi) * 2) / 2))
            if komi != getattr(game, "komi", None):
                game = self._make_game(komi)
        setup = (g.setup_black, g.setup_white, g.first_colour) if g.has_setup else None
        groups, to_move = [], g.first_colour
        for colour, action in moves:
            groups.append(([self.pass_action] if colour != to_move else []) + [action])
            to_move = 1 - colour
        try:
            self._set_position(groups, setup, game)
        except (IllegalActionError, ValueError) as e:
            self._note(f"loadsgf {args[0]}: {e}")
            raise GtpError("cannot load file") from None
        return ""


def serve(engine: GtpEngine, stdin: TextIO, stdout: TextIO) -> int:
    """Answer commands from `stdin` on `stdout` until `quit` or the end of input."""
    while not engine.quit_requested:
        line = stdin.readline()
        if not line:
            break
        answer = engine.handle(line)
        if answer is not None:
            stdout.write(answer)
            stdout.flush()
    return 0
