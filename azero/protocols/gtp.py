"""A GTP v2 engine for Go (GoGui, Sabaki, gogui-twogtp, KGS / OGS bridges): the commands.

`GtpEngine.handle(line)` answers one input line (no I/O) and `gtp_protocol.serve` is the loop over
stdin/stdout that `azero gtp` runs; tests drive `handle` line by line. The engine is built of
small parts, one job each:
  * gtp_protocol.py: the wire format (bytes in, preprocessing as the spec says, ids, answers,
    errors) and the dispatch of commands to the `cmd_*` methods here;
  * gtp_position.py: the position (setup and handicap stones, GTP moves, play past two passes and
    past the rules' move cap, positional superko over the whole game);
  * gtp_clock.py: time_settings / time_left and the seconds a move may take;
  * the move generator (`PlayerMover` over any player of azero.players; a search player moves
    within the clock's budget, see players/search_player.py).

Rules are the game's (Go 9x9: Tromp-Taylor area scoring, positional superko, no suicide) and are
enforced: `play` of an illegal move answers "illegal move", and the reason (occupied, suicide,
superko) goes to the log (stderr). `komi` takes any number; our rules score in half points, so a
komi that is not a multiple of 0.5 is rounded to the nearest one (and logged).

Handicap: `fixed_handicap` places the spec's layout, `place_free_handicap` the same layout (at
most its 9 stones: the spec lets an engine place fewer than asked), `set_free_handicap` the
controller's points; all on an empty board, and White moves next.

Moves: `genmove` runs the move generator from the current position (a search keeps its tree across
moves) and answers a vertex, "pass", or "resign" when the root value (side to move's view) is
below `resign_threshold` once at least `resign_min_plies` plies have been played, or when the
generator gives up. A move the generator picks that superko over the whole game forbids (possible
only past the rules' move cap, whose state no longer holds the oldest boards) is replaced by its
preferred allowed move. `kgs-genmove_cleanup` never resigns and does not pass while a safe move
remains on a neutral point: with Tromp-Taylor scoring every stone on the board counts, so dead
opponent stones must be captured and dame filled before passing (a neutral point is an empty point
whose region touches both colours; a move is safe if no reply of the opponent captures any of our
stones).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, TextIO

import numpy as np

import azero
from azero.games import IllegalActionError

from .gtp_clock import GameClock, TimeSettings
from .gtp_position import GtpPosition, Setup, fixed_handicap_vertices, max_fixed_handicap
from .gtp_protocol import GtpDispatcher, GtpError, arity, colour, number, vertex

DEFAULT_RESIGN_THRESHOLD = -0.9
DEFAULT_RESIGN_MIN_PLIES = 20


@dataclass
class Choice:
    action: int
    value: float | None = None       # root value, side to move's view (None: not a search)
    search: object | None = None     # SearchOutput, if any
    simulations: int = 0
    resign: bool = False             # the player gives up (an external engine's "resign")


class PlayerMover:
    """Moves from any Player (azero.players), one game: a search player under the clock's budget,
    with its tree kept across moves; any other as it is ("random", an external GTP engine)."""

    def __init__(self, player):
        self.player = player
        player.begin(1)

    def reset(self) -> None:
        self.player.reset()

    def played(self, before: np.ndarray, action: int, after: np.ndarray) -> None:
        self.player.observe(np.array([action], dtype=np.int64), np.array([True]))

    def generate(self, state: np.ndarray, budget: float | None) -> Choice:
        from azero.players import SearchPlayer
        active = np.array([True])
        if isinstance(self.player, SearchPlayer):
            decision = self.player.act(state[None], active, budget=budget)
            simulations = self.player.simulations
        else:
            decision, simulations = self.player.act(state[None], active), 0
        search = decision.search
        value = float(search.root_value[0]) if search is not None else None
        return Choice(int(decision.actions[0]), value, search, simulations,
                      resign=decision.resigns())


def make_mover(spec: str, game, *, simulations: int | None = None, seed: int = 0,
               device: str = "cpu", as_engine: bool = False) -> PlayerMover:
    """The move generator a player spec names (azero.players.make_player)."""
    from azero.players import make_player
    return PlayerMover(make_player(spec, game, simulations=simulations, seed=seed, device=device,
                                   as_engine=as_engine))


def preferred(candidates, search) -> int:
    """The candidate action the search liked best (visits, then prior, then the lowest action);
    the first candidate without a search."""
    if search is None:
        return int(candidates[0])
    visits = np.asarray(search.visit_counts[0], dtype=np.float64)
    prior = np.asarray(search.policy_target[0], dtype=np.float64)
    return int(max(candidates, key=lambda a: (visits[a], prior[a], -a)))


class GtpEngine(GtpDispatcher):
    """The Go commands over a position (gtp_position), a clock (gtp_clock) and a mover."""

    COMMANDS = GtpDispatcher.COMMANDS + (
        "boardsize", "clear_board", "komi", "fixed_handicap", "place_free_handicap",
        "set_free_handicap", "play", "genmove", "kgs-genmove_cleanup", "undo", "showboard",
        "final_score", "time_settings", "time_left", "loadsgf")

    def __init__(self, mover, game, *, name: str = "azero", version: str = azero.__version__,
                 resign_threshold: float | None = DEFAULT_RESIGN_THRESHOLD,
                 resign_min_plies: int = DEFAULT_RESIGN_MIN_PLIES,
                 game_factory: Callable[[float], object] | None = None,
                 log: TextIO | None = None):
        super().__init__(name=name, version=version, log=log)
        self.mover = mover
        self.resign_threshold = resign_threshold
        self.resign_min_plies = resign_min_plies
        self._make_game = game_factory or (lambda komi: type(game)(komi=komi))
        self.size = game.spec.board_shape[0]
        self.pass_action = game.spec.num_actions - 1
        self.clock = GameClock()
        self.position = GtpPosition(game)

    @property
    def game(self):
        return self.position.game

    @property
    def state(self) -> np.ndarray:
        """The current position, state [S]."""
        return self.position.state

    @property
    def moves(self) -> list[int]:
        """The actions of the current game from the base position (inserted passes included)."""
        return self.position.actions

    def _set_position(self, position: GtpPosition) -> None:
        """A new position (built whole beforehand: a failure leaves the old one); trees drop."""
        self.position = position
        self.mover.reset()

    def _commit(self, group: list[int], known: int = 0) -> None:
        """Play one GTP move (IllegalActionError changes nothing) and tell the mover of its
        steps, all but the first `known`: those it already stands after (genmove searched from
        the position after the other colour's inserted pass)."""
        for i, (before, a, after) in enumerate(self.position.play(group)):
            if before is None:
                self.mover.reset()
            elif i >= known:
                self.mover.played(before, a, after)

    def _colour_prefix(self, who: int) -> list[int]:
        """A pass of the other colour first if `who` is not to move."""
        return [self.pass_action] if who != self.position.to_play() else []

    # ------------------------------------------------------------------ setup

    def cmd_boardsize(self, args):
        arity(args, 1)
        if number(args[0], int) != self.size:
            raise GtpError("unacceptable size")
        self._set_position(GtpPosition(self.game))
        return ""

    def cmd_clear_board(self, args):
        self._set_position(GtpPosition(self.game))
        self.clock.restart()
        return ""

    def cmd_komi(self, args):
        arity(args, 1)
        komi = number(args[0], float)
        limit = self.size * self.size
        usable = min(limit, max(-limit, round(komi * 2) / 2))
        if usable != komi:
            self.note(f"komi {komi:g} is not a multiple of 0.5 within +-{limit}: "
                      f"scoring with {usable:g}")
        if usable != getattr(self.game, "komi", None):
            p = self.position
            self._set_position(GtpPosition(self._make_game(usable), p.setup, p.moves))
        return ""

    def cmd_fixed_handicap(self, args):
        arity(args, 1)
        try:
            vertices = fixed_handicap_vertices(self.size, number(args[0], int))
        except ValueError:
            raise GtpError("invalid number of stones") from None
        self._place_handicap([vertex(v, self.game) for v in vertices])
        return " ".join(vertices)

    def cmd_place_free_handicap(self, args):
        """Our placement is the fixed one; past its most stones we place that many (the spec
        lets an engine place fewer than asked)."""
        arity(args, 1)
        stones = number(args[0], int)
        if not 2 <= stones < self.size * self.size:
            raise GtpError("invalid number of stones")
        return self.cmd_fixed_handicap([str(min(stones, max_fixed_handicap(self.size)))])

    def cmd_set_free_handicap(self, args):
        try:
            points = [vertex(w, self.game) for w in args]
        except GtpError:
            raise GtpError("bad vertex list") from None
        if not 2 <= len(points) < self.size * self.size or self.pass_action in points \
                or len(set(points)) != len(points):
            raise GtpError("bad vertex list")
        self._place_handicap(points)
        return ""

    def _place_handicap(self, points: list[int]) -> None:
        """Black stones on `points` of an empty board, White to move (no move played yet)."""
        if self.position.moves or (self.game.grid(self.state) >= 0).any():
            raise GtpError("board not empty")
        self._set_position(GtpPosition(self.game, Setup(tuple(points), (), 1)))

    def cmd_loadsgf(self, args):
        arity(args, 1, 2)
        move_number = number(args[1], int) if len(args) == 2 else None
        from azero.games import hook
        sgf = hook(self.game.spec.name, "sgf")      # the game's SGF reader (GTP games have one)
        SgfError, parse_sgf = sgf.SgfError, sgf.parse_sgf
        try:
            with open(args[0], "rb") as f:
                g = parse_sgf(f.read())[0]
        except (OSError, SgfError) as e:
            self.note(f"loadsgf {args[0]!r}: {e}")
            raise GtpError("cannot load file") from None
        moves = g.moves if move_number is None else g.moves[:max(0, move_number - 1)]
        game = self.game
        if g.komi is not None:
            limit = self.size * self.size
            komi = min(limit, max(-limit, round(float(g.komi) * 2) / 2))
            if komi != getattr(game, "komi", None):
                game = self._make_game(komi)
        setup = Setup(tuple(g.setup_black), tuple(g.setup_white), g.first_colour) \
            if g.has_setup else None
        groups, to_move = [], g.first_colour
        for who, action in moves:
            groups.append(([self.pass_action] if who != to_move else []) + [action])
            to_move = 1 - who
        try:
            self._set_position(GtpPosition(game, setup, groups))
        except (IllegalActionError, ValueError) as e:
            self.note(f"loadsgf {args[0]!r}: {e}")
            raise GtpError("cannot load file") from None
        return ""

    # ------------------------------------------------------------------ moves

    def cmd_play(self, args):
        arity(args, 2)
        who, action = colour(args[0]), vertex(args[1], self.game)
        try:
            self._commit(self._colour_prefix(who) + [action])
        except IllegalActionError as e:
            self.note(f"play {args[0]} {args[1]}: {e}")
            raise GtpError("illegal move") from None
        return ""

    def cmd_genmove(self, args):
        return self._genmove(args, cleanup=False)

    def cmd_kgs_genmove_cleanup(self, args):
        return self._genmove(args, cleanup=True)

    def _genmove(self, args, cleanup: bool) -> str:
        arity(args, 1)
        who = colour(args[0])
        t0 = time.monotonic()
        position = self.position
        prefix = self._colour_prefix(who)
        line = position.line.copy()
        try:
            for a in prefix:           # the mover is reset below whenever there is a prefix
                position.resume(line)
                position.advance(line, a)
            jumped = position.resume(line)
        except IllegalActionError as e:                  # defensive: nothing can be played
            self.note(f"genmove {args[0]}: {e}; answering pass")
            return "pass"
        state, plies = line.state, position.plies(line)
        budget = self.clock.budget(who, plies)
        if prefix or jumped:
            self.mover.reset()
        choice = self.mover.generate(state, budget)
        action = choice.action
        if choice.resign:
            self.note("resigning: the move generator gave up")
            self.clock.spend(who, time.monotonic() - t0)
            return "resign"
        if position.repeats(line, action):
            action = preferred(position.legal_actions(line), choice.search)
            self.note(f"genmove {args[0]}: {self.game.format_action(state, choice.action)} "
                      f"repeats an earlier position; playing "
                      f"{self.game.format_action(state, action)}")
        if cleanup and action == self.pass_action:
            action = self._cleanup_move(line, choice)
        elif (not cleanup and self.resign_threshold is not None and choice.value is not None
              and plies >= self.resign_min_plies and choice.value < self.resign_threshold):
            self.note(f"resigning: root value {choice.value:.3f} < {self.resign_threshold}")
            self.clock.spend(who, time.monotonic() - t0)
            return "resign"
        self._commit(prefix + [action], known=len(prefix))
        self.clock.spend(who, time.monotonic() - t0)
        if choice.simulations:
            self.note(f"genmove {args[0]}: {self.game.format_action(state, action)} after "
                      f"{choice.simulations} simulations, value "
                      f"{'n/a' if choice.value is None else f'{choice.value:+.3f}'}"
                      + ("" if budget is None else f", budget {budget:.2f}s"))
        return self.game.format_action(state, action).upper() if action != self.pass_action \
            else "pass"

    def _cleanup_move(self, line, choice: Choice) -> int:
        """kgs-genmove_cleanup instead of a pass: the preferred safe move on a neutral point, or
        pass if there is none (see the module docstring)."""
        game, state = self.game, line.state
        n_points = self.pass_action
        neutral = (game.ownership(state[None])[0].reshape(-1) == 0) & \
            (game.grid(state).reshape(-1) < 0)
        legal = self.position.legal_actions(line)[:-1]           # the pass is last
        candidates = legal[neutral[legal]]
        if len(candidates) == 0:
            return self.pass_action
        us = self.position.to_play(state)
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
        return preferred(safe, choice.search) if safe else self.pass_action

    def cmd_undo(self, args):
        p = self.position
        if not p.moves:
            raise GtpError("cannot undo")
        self._set_position(GtpPosition(p.game, p.setup, p.moves[:-1]))
        return ""

    # ------------------------------------------------------------------ information

    def cmd_showboard(self, args):
        actions = self.position.line.actions
        last = actions[-1] if actions and actions[-1] != self.pass_action else None
        return "\n" + self.game.render(self.state, last_action=last)

    def cmd_final_score(self, args):
        score = float(self.game.score(self.state[None])[0])
        if score == 0:
            return "0"
        return f"{'B' if score > 0 else 'W'}+{abs(score):.1f}"

    # ------------------------------------------------------------------ time

    def cmd_time_settings(self, args):
        arity(args, 3)
        settings = TimeSettings(number(args[0]), number(args[1]), number(args[2], int))
        try:
            self.clock.set(settings)
        except ValueError:
            raise GtpError("syntax error") from None
        return ""

    def cmd_time_left(self, args):
        arity(args, 3)
        who, left, stones = colour(args[0]), number(args[1]), number(args[2], int)
        try:
            self.clock.left(who, left, stones)
        except ValueError:
            raise GtpError("syntax error") from None
        return ""
