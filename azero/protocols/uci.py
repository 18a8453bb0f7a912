"""A UCI engine (Cute Chess, Arena, En Croissant, cutechess-cli, fastchess, lichess-bot) for the
games of the registry that speak UCI (games.games_speaking("uci"): chess).

`UciEngine.handle(line)` acts on one input line and `serve` is the loop over stdin that `azero uci`
runs. The search runs in a thread of its own (uci_search.py), so the engine reads its input while
it thinks: `isready` is answered at once, `stop` ends the search, which then sends its bestmove.
A command that changes what the search works on (`position`, `go`, `ucinewgame`, `setoption`)
waits for a running search to end by its limits (one without limits, `go infinite` or `go
ponder`, is stopped), as Stockfish waits; `quit` stops it. So every `go` gets exactly one
bestmove, before the answer to anything that came after it, and `go nodes 800` piped in before
another command still searches its 800 simulations. A GUI that wants the move now sends `stop`.

Commands: uci (id, options, uciok), isready, ucinewgame, position startpos | fen FEN [moves ...],
go (uci_clock.py: nodes, movetime, wtime/btime/winc/binc/movestogo, depth, infinite, ponder), stop,
ponderhit, setoption, debug, quit. Options (setoption name N value V; names in any case):
  * Simulations: the simulations of a `go` without nodes or a time limit (default: the
    checkpoint's play.num_simulations, else its search.num_simulations, or --sims);
  * Threads: torch's threads for the network (default: what `azero uci --threads` set, 1);
  * Move Overhead: milliseconds the clock keeps back for what happens outside the search;
  * Ponder: declared so that a GUI may send `go ponder`; the engine ponders when told so,
    whatever its value.

Moves are long algebraic, as UCI has them (e2e4, e7e8q, castling as the king's move e1g1);
`bestmove 0000` in a position without a legal move (checkmate, stalemate). A position over by
our rules but with legal moves (threefold repetition, the fifty-move rule, dead material: a GUI
may play on) is searched from its FEN by the rules without automatic draws (its history
dropped; a move that draws at once counts as a draw, a mate as a mate), and its moves are
followed (uci_position.played_on); an `info string` says so.

Bad input never stops the engine: UCI has no error answer, so each problem is an `info string`
line and the command is ignored, or for `go` the words not understood. A `position` command that
fails (bad FEN, a word that is not a move, an illegal move) changes nothing: the previous
position stays (the start position before any; uci_position.py). How lines are read, and the
threads that read them and run the commands: uci_io.py. Per the UCI spec, words before the first
known command are skipped ("joho debug on").

The engine's modules: uci_io.py (the input and output loop), uci_position.py (`position`),
uci_clock.py (`go`'s limits and the time a move takes), uci_search.py (the search in chunks and
what it reports).
"""
from __future__ import annotations

import os
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Callable, TextIO

import numpy as np

import azero

from .uci_clock import (DEFAULT_MOVE_OVERHEAD_MS, SearchPlan, parse_go, parse_integer,
                        plan_search)
from .uci_io import LineWriter, serve, shown
from .uci_position import (Position, PositionError, parse_position, played_on,
                           start_position)
from .uci_search import Progress, Thinking, centipawns, make_searcher

INFO_SECONDS = 0.5               # an info line at most this often while searching
NULL_MOVE = "0000"


@dataclass(frozen=True)
class SpinOption:
    name: str
    default: int
    low: int
    high: int

    def line(self) -> str:
        return f"option name {self.name} type spin default {self.default} " \
               f"min {self.low} max {self.high}"

    def parse(self, value: str) -> tuple[int, str | None]:
        """(the value to use, a note or None); ValueError for a value that is not a number. A
        number outside min..max is clamped, with a note."""
        try:
            number = parse_integer(value)
        except ValueError:
            raise ValueError(f"{shown(value)} is not a number") from None
        usable = min(self.high, max(self.low, number))
        note = None if usable == number else \
            f"{number} is outside {self.low}..{self.high}; using {usable}"
        return usable, note


@dataclass(frozen=True)
class CheckOption:
    name: str
    default: bool

    def line(self) -> str:
        return f"option name {self.name} type check default {str(self.default).lower()}"

    def parse(self, value: str) -> tuple[bool, str | None]:
        if value.lower() not in ("true", "false"):
            raise ValueError(f"{shown(value)} is neither true nor false")
        return value.lower() == "true", None


class UciEngine:
    """The UCI commands over a game, a player (azero.players) and an output of lines."""

    COMMANDS = ("uci", "isready", "ucinewgame", "position", "go", "stop", "ponderhit",
                "setoption", "debug", "register", "quit")

    def __init__(self, game, player, *, send: Callable[[str], None], name: str = "azero",
                 author: str = "the azero authors", seed: int = 0,
                 simulations: int | None = None, log: TextIO | None = None,
                 output_closed: Callable[[], bool] = lambda: False):
        self.game = game
        self.name = name
        self.author = author
        self.send = send
        self.log = log if log is not None else sys.stderr
        self.searcher = make_searcher(player, seed=seed)
        self.options = {o.name.lower(): o for o in self._make_options(simulations)}
        self.values = {key: o.default for key, o in self.options.items()}
        self.position = self._start_position()
        self.output_closed = output_closed
        self.quitting = False           # quit was handled: no more commands
        self._thinking: Thinking | None = None
        self._thread: threading.Thread | None = None
        self._limits = None           # the `go` limits of a search started with ponder
        self._index = 0               # the place in the input of the line being handled
        self._stop_index = -1         # the place of the last stop or quit read (interrupt)
        self._stop_lock = threading.Lock()

    def _make_options(self, simulations: int | None) -> list[SpinOption | CheckOption]:
        import torch
        sims = simulations if simulations is not None else self.searcher.default_simulations
        cores = os.cpu_count() or 1
        return [SpinOption("Simulations", max(1, sims), 1, 1_000_000_000),
                SpinOption("Threads", max(1, min(torch.get_num_threads(), cores)), 1, cores),
                SpinOption("Move Overhead", DEFAULT_MOVE_OVERHEAD_MS, 0, 60_000),
                CheckOption("Ponder", False)]

    def _start_position(self) -> Position:
        return start_position(self.game)

    # ------------------------------------------------------------------ input

    def handle(self, line: bytes | str, index: int = 0) -> None:
        """Act on one input line (its LF may end it); never raises. `index`: the line's place
        in the input (see `interrupt`)."""
        self._index = index
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        words = line.split()
        start = next((i for i, w in enumerate(words) if w in self.COMMANDS), None)
        if start is None:
            if words:
                self.info(f"unknown command: {shown(line)}")
            return
        words = words[start:]
        try:
            getattr(self, "cmd_" + words[0])(words[1:])
        except Exception as e:                       # never let one command stop the engine
            print(f"{self.name}: internal error in {shown(line)}:\n{traceback.format_exc()}",
                  file=self.log, flush=True)
            self.info(f"internal error in {words[0]}: {type(e).__name__}: {shown(str(e))}")

    def interrupt(self, line: bytes | str, index: int) -> str | None:
        """What `stop` and `quit` do at once, as soon as they are read (serve's reader thread),
        even while the command thread waits for a search: every search of a `go` read before
        them stops (the running one now, one not started yet as it starts), so the commands
        before them still run, in order, without waiting. `index`: the line's place in the
        input, as `handle` gets it. Returns the command acted on ("stop", "quit") or None."""
        if isinstance(line, bytes):
            line = line.decode("utf-8", "replace")
        command = next((w for w in line.split() if w in self.COMMANDS), None)
        if command not in ("stop", "quit"):
            return None
        with self._stop_lock:
            self._stop_index = index
            if self._thinking is not None:
                self._thinking.stop()
        return command

    def info(self, text: str) -> None:
        self.send("info string " + " ".join(text.split()))

    # ------------------------------------------------------------------ setup

    def cmd_uci(self, words):
        self.send(f"id name {self.name} {azero.__version__}")
        self.send(f"id author {self.author}")
        for option in self.options.values():
            self.send(option.line())
        self.send("uciok")

    def cmd_isready(self, words):
        self.send("readyok")

    def cmd_debug(self, words):
        pass                                          # nothing more to say in debug mode

    def cmd_register(self, words):
        pass                                          # no registration needed

    def cmd_ucinewgame(self, words):
        self.wait_thinking()
        self.position = self._start_position()
        self.searcher.reset()

    def cmd_setoption(self, words):
        self.wait_thinking()
        lowered = [w.lower() for w in words]
        if not lowered or lowered[0] != "name":
            self.info("setoption: write setoption name NAME value VALUE")
            return
        at = lowered.index("value") if "value" in lowered else len(words)
        name, value = " ".join(words[1:at]), " ".join(words[at + 1:])
        option = self.options.get(name.lower())
        if option is None:
            known = ", ".join(o.name for o in self.options.values())
            self.info(f"no option {shown(name)}; the options: {known}")
            return
        try:
            usable, note = option.parse(value)
        except ValueError as e:
            self.info(f"setoption {option.name}: {e}")
            return
        if note is not None:
            self.info(f"setoption {option.name}: {note}")
        self.values[option.name.lower()] = usable
        if option.name == "Threads":
            import torch
            torch.set_num_threads(usable)

    def cmd_position(self, words):
        self.wait_thinking()
        try:
            position, extends = parse_position(self.game, words, self.position)
        except PositionError as e:
            self.info(f"position refused, the previous one stays: {e}")
            return
        if extends:
            for action in position.actions[len(self.position.actions):]:
                self.searcher.played(action)
        else:
            self.searcher.reset()
        self.position = position

    # ------------------------------------------------------------------ search

    def cmd_go(self, words):
        self.wait_thinking()
        limits, problems = parse_go(words)
        for problem in problems:
            self.info(f"go: {problem}")
        if limits.searchmoves:
            self.info("go: searchmoves is not supported; searching every move")
        if limits.mate is not None:
            self.info("go: mate is not supported; searching by the other limits")
        if limits.ponder:
            self._limits = limits
            plan = SearchPlan(until_stop=True)          # the plan of `limits` at ponderhit
        else:
            plan = self._plan(limits, self.position.state)
        thinking = Thinking(plan)
        state = self.position.state
        thread = threading.Thread(target=self._think, args=(state, thinking), daemon=True,
                                  name="uci-search")
        with self._stop_lock:
            if self._stop_index > self._index:        # a stop was read after this go
                thinking.stop()
            self._thinking, self._thread = thinking, thread
        thread.start()

    def _plan(self, limits, state):
        to_play = int(self.game.to_play(state[None])[0])
        return plan_search(limits, to_play, simulations=self.values["simulations"],
                           overhead_ms=self.values["move overhead"])

    def cmd_ponderhit(self, words):
        if self._thinking is None or self._limits is None:
            return
        limits, self._limits = self._limits, None
        limits.ponder = False
        self._thinking.replan(self._plan(limits, self.position.state))

    def cmd_stop(self, words):
        self.stop_thinking()

    def cmd_quit(self, words):
        self.quitting = True
        self.stop_thinking()

    def stop_thinking(self) -> None:
        """End the running search, if any; it has sent its bestmove when this returns."""
        thinking, thread = self._thinking, self._thread
        if thread is None:
            return
        thinking.stop()
        thread.join()
        self._thinking = self._thread = self._limits = None

    def wait_thinking(self) -> None:
        """Let a running search end by its plan (one that waits for stop is stopped, and any
        after quit)."""
        if self._thinking is not None and not self._thinking.plan.until_stop \
                and not self.quitting:
            self._thread.join()
        self.stop_thinking()

    def _think(self, state: np.ndarray, thinking: Thinking) -> None:
        """The search thread of one `go`: sends info lines and exactly one bestmove."""
        move, ponder = NULL_MOVE, None
        try:
            move, ponder = self._decide(state, thinking)
        except Exception as e:
            print(f"{self.name}: search failed:\n{traceback.format_exc()}", file=self.log,
                  flush=True)
            self.info(f"search failed: {type(e).__name__}: {shown(str(e))}")
            move = self._fallback_move(state)
        finally:
            while thinking.plan.until_stop and not thinking.stopped.is_set():
                thinking.rest()                # go infinite: the bestmove waits for stop
            self.send(f"bestmove {move}" + (f" ponder {ponder}" if ponder else ""))

    def _decide(self, state: np.ndarray, thinking: Thinking) -> tuple[str, str | None]:
        """(bestmove, ponder move or None) for the position state [S]."""
        game = self.game
        if game.terminal(state[None])[0]:
            if not any(True for _ in game.board_of(state).legal_moves):
                mated = game.result(state[None])[0] < 0
                self.send("info depth 0 score " + ("mate 0" if mated else "cp 0"))
                return NULL_MOVE, None
            over = f"the game is over by our rules ({game.status(state)})"
            rules, fresh = played_on(game, state)
            if rules is game:
                self.info(f"{over}; playing the first legal move")
                return self._fallback_move(state), None
            self.info(f"{over}; searching the position without its history as the game "
                      f"goes on")
            self.searcher.reset()
            state = fresh
        def report(progress: Progress) -> None:
            self._report(state, progress)
            if self.output_closed():            # nobody reads: no use searching on
                thinking.stop()

        progress = self.searcher.think(state, thinking, report, every=INFO_SECONDS)
        moves = self._report(state, progress)
        return moves[0], moves[1] if len(moves) > 1 else None

    def _fallback_move(self, state: np.ndarray) -> str:
        moves = sorted(m.uci() for m in self.game.board_of(state).legal_moves)
        return moves[0] if moves else NULL_MOVE

    def _report(self, state: np.ndarray, progress: Progress) -> list[str]:
        """Send the info line of `progress`; returns its pv as UCI moves (legal, from state)."""
        game, pv = self.game, []
        for action in progress.line:
            pv.append(game.move_of_action(state, action).uci())
            state = game.step(state[None], np.array([action], dtype=np.int64))[0]
            if game.terminal(state[None])[0]:
                break
        ms = max(1, int(progress.seconds * 1000))
        fields = [f"depth {len(pv)}", f"nodes {progress.simulations}",
                  f"nps {progress.simulations * 1000 // ms}", f"time {ms}"]
        if progress.value is not None:
            mate = len(pv) == 1 and game.terminal(state[None])[0] and \
                game.result(state[None])[0] < 0
            fields.append("score mate 1" if mate else f"score cp {centipawns(progress.value)}")
        self.send("info " + " ".join(fields) + " pv " + " ".join(pv))
        return pv


__all__ = ["LineWriter", "Position", "PositionError", "UciEngine", "serve"]
