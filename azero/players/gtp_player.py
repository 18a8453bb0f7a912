"""An external GTP engine (GNU Go, or any engine by its command line) as a Player for the arena.

Specs (azero.players.make_player):
    gnugo                      GNU Go at level 10 (its default)
    gnugo:level=N              GNU Go at level N (0..10; 1 is fast and weak)
    gnugo:level=N,cleanup=0    ... asking `genmove` instead of `kgs-genmove_cleanup`
    gtp:COMMAND LINE           any GTP engine, e.g. "gtp:gnugo --mode gtp --level 3" or
                               "gtp:azero gtp --ckpt best.pt"

GNU Go runs as `gnugo --mode gtp --chinese-rules --positional-superko --forbid-suicide
--level N`: area scoring, positional superko, no suicide, as our rules. Our rules score
Tromp-Taylor: every stone left on the board counts as alive, so GNU Go is asked for its moves with
`kgs-genmove_cleanup` (it does not pass while dead stones of ours could still be captured; with
plain `genmove` it passes leaving them, and the score would credit them to us).

One engine process per game in flight (row), started on first use and kept for the next games
of that row (`clear_board`). `act` sends `genmove` to every row that is to move, then collects
the answers, so the engines think in parallel. Moves of the other player reach the engine as
`play` through `observe`. The arena does not tell players its random opening moves; a row whose
position the engine has not seen is set up by `clear_board` and replaying a move sequence
that reaches the same board (the stones of each colour in turn, passes where a colour has no
stone left to place). That works while no stone was captured before the engine joined (true for
openings of a few plies); otherwise `act` raises GtpEngineError saying so.

Answers: a vertex (checked with our rules: an illegal one is an error naming the engine), "pass",
or "resign", which ends that game as a loss for the engine (`Decision.resigned`); the count is
in `resignations`. An engine that crashes, hangs past the timeout or answers `?` raises
GtpEngineError (from azero.protocols.gtp_client) with its command line and stderr.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

import numpy as np

from azero.protocols.gtp_client import (DEFAULT_MOVE_TIMEOUT, DEFAULT_STARTUP_TIMEOUT,
                                        DEFAULT_TIMEOUT, GtpClient, GtpEngineError,
                                        gnugo_command)

from .base import Decision


@dataclass(frozen=True)
class GtpEngineSpec:
    """What a gnugo / gtp: player spec names."""
    label: str                              # the player's name, e.g. "gnugo-level1"
    argv: tuple[str, ...] | None = None     # gtp:COMMAND LINE
    gnugo_level: int | None = None          # gnugo:level=N (the executable is found at start)
    genmove: str = "genmove"                # or "kgs-genmove_cleanup"

    def command(self) -> list[str]:
        if self.gnugo_level is not None:
            return gnugo_command(self.gnugo_level)
        return list(self.argv)


def parse_gtp_spec(text: str) -> GtpEngineSpec | None:
    """A gnugo / gtp: spec -> GtpEngineSpec; None if `text` is not one. ValueError if malformed."""
    if text == "gnugo" or text.startswith("gnugo:"):
        options = {"level": "10", "cleanup": "1"}
        body = text[len("gnugo:"):] if text.startswith("gnugo:") else ""
        for item in filter(None, (s.strip() for s in body.split(","))):
            key, sep, value = item.partition("=")
            if not sep or key not in options:
                raise ValueError(f"{text!r}: write gnugo:level=N (N 0..10), optionally "
                                 f",cleanup=0; unknown option {item!r}")
            options[key] = value
        if not options["level"].isdigit() or not 0 <= int(options["level"]) <= 10:
            raise ValueError(f"{text!r}: GNU Go levels are 0..10")
        if options["cleanup"] not in ("0", "1"):
            raise ValueError(f"{text!r}: cleanup is 0 or 1")
        level = int(options["level"])
        return GtpEngineSpec(label=f"gnugo-level{level}", gnugo_level=level,
                             genmove="kgs-genmove_cleanup" if options["cleanup"] == "1"
                             else "genmove")
    if text.startswith("gtp:"):
        try:
            argv = shlex.split(text[len("gtp:"):])
        except ValueError as e:
            raise ValueError(f"{text!r}: bad command line: {e}") from None
        if not argv:
            raise ValueError("gtp: needs the engine's command line, e.g. "
                             "'gtp:gnugo --mode gtp --level 1'")
        return GtpEngineSpec(label=f"gtp:{shlex.join(argv)}", argv=tuple(argv))
    return None


class GtpPlayer:
    """External GTP engines, one per row (see the module docstring)."""

    def __init__(self, game, spec: GtpEngineSpec, *, name: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, move_timeout: float = DEFAULT_MOVE_TIMEOUT,
                 startup_timeout: float = DEFAULT_STARTUP_TIMEOUT):
        from azero.games import games_speaking
        speakers = games_speaking("gtp")
        if game.spec.name not in speakers:
            raise ValueError(f"GTP engines play {', '.join(speakers) or 'no registered game'}, "
                             f"not {game.spec.name}")
        self.game = game
        self.spec = spec
        self.name = name or spec.label
        self.timeout = timeout
        self.move_timeout = move_timeout
        self.startup_timeout = startup_timeout
        self.pass_action = game.spec.num_actions - 1
        self.resignations = 0
        self._engines: list[GtpClient | None] = []
        self._known: list[np.ndarray | None] = []    # the position each engine has, or None
        self._generated: list[int | None] = []       # a move the engine played itself, unobserved

    # ------------------------------------------------------------------ Player

    def begin(self, batch_size: int) -> None:
        if len(self._engines) > batch_size:
            for engine in self._engines[batch_size:]:
                if engine is not None:
                    engine.close()
            del self._engines[batch_size:]
        self._engines += [None] * (batch_size - len(self._engines))
        self._known = [None] * batch_size
        self._generated = [None] * batch_size

    def reset(self, rows: np.ndarray | None = None) -> None:
        rows = range(len(self._engines)) if rows is None else np.asarray(rows).reshape(-1)
        for row in rows:
            self._known[int(row)] = None
            self._generated[int(row)] = None

    def act(self, states: np.ndarray, active: np.ndarray) -> Decision:
        if not self._engines:
            self.begin(len(states))
        try:
            return self._act(states, active)
        except BaseException:
            # Answers other engines still owe would be read by their next commands as the
            # answers to those: drop (kill) those engines; `_engine` restarts them on demand.
            self._drop_engines_with_pending_answers()
            raise

    def _drop_engines_with_pending_answers(self) -> None:
        for row, engine in enumerate(self._engines):
            if engine is not None and engine.pending:
                engine.kill()
                engine.close(timeout=0.1)
                self._engines[row] = None
                self._known[row] = None
                self._generated[row] = None

    def _act(self, states: np.ndarray, active: np.ndarray) -> Decision:
        actions = np.full(len(states), self.pass_action, dtype=np.int64)
        resigned = np.zeros(len(states), dtype=bool)
        asked = []
        for row in np.flatnonzero(active):
            row = int(row)
            self._sync(row, states[row])
            colour = int(self.game.to_play(states[row][None])[0])
            self._engines[row].send(f"{self.spec.genmove} {'bw'[colour]}")
            asked.append((row, colour))
        for row, colour in asked:          # the engines think in parallel meanwhile
            engine = self._engines[row]
            reply = engine.receive(self.move_timeout).text.strip()
            if reply.lower() == "resign":
                resigned[row] = True
                self._known[row] = None        # the game is over; the next one starts afresh
                self.resignations += 1
                continue
            try:
                action = self.game.parse_action(states[row], reply)
            except ValueError as e:
                raise GtpEngineError(f"GTP engine {engine.name} answered {reply!r} to "
                                     f"{self.spec.genmove} {'bw'[colour]}, which our rules do not "
                                     f"allow: {e}") from None
            actions[row] = action
            self._generated[row] = action
        return Decision(actions, resigned=resigned)

    def observe(self, actions: np.ndarray, active: np.ndarray) -> None:
        for row in np.flatnonzero(active):
            row, action = int(row), int(actions[row])
            known, generated = self._known[row], self._generated[row]
            self._generated[row] = None
            if known is None:
                continue                   # not set up yet: `act` will sync the row
            if generated is None or generated != action:
                colour = int(self.game.to_play(known[None])[0])
                self._engines[row](f"play {'bw'[colour]} {self._vertex(known, action)}",
                                   timeout=self.timeout)
            self._known[row] = self.game.step(known[None], np.array([action]))[0]

    def close(self) -> None:
        for engine in self._engines:
            if engine is not None:
                engine.close()
        self._engines = []

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ helpers

    def _vertex(self, state: np.ndarray, action: int) -> str:
        return self.game.format_action(state, action)

    def _engine(self, row: int) -> GtpClient:
        engine = self._engines[row]
        if engine is None or not engine.alive:
            engine = GtpClient(self.spec.command(), name=self.name, timeout=self.timeout,
                               startup_timeout=self.startup_timeout)
            engine(f"boardsize {self.game.spec.board_shape[0]}")
            self._engines[row] = engine
            self._known[row] = None
        return engine

    def _sync(self, row: int, state: np.ndarray) -> None:
        """Make the row's engine hold `state`'s position."""
        engine = self._engine(row)
        known = self._known[row]
        if known is not None and np.array_equal(known, state):
            return
        moves = reconstruct_moves(self.game, state)
        engine("clear_board")
        engine(f"komi {self.game.komi:g}")
        replay = self.game.initial_states(1)
        for action in moves:
            colour = int(self.game.to_play(replay)[0])
            engine(f"play {'bw'[colour]} {self._vertex(replay[0], action)}")
            replay = self.game.step(replay, np.array([action]))
        self._known[row] = state.copy()


def reconstruct_moves(game, state: np.ndarray) -> list[int]:
    """A move sequence from the empty board that reaches `state`'s board with its side to move
    and ply count, assuming no stone was ever captured: each colour places its stones in turn
    (row-major order), passing when it has none left. Raises GtpEngineError if the stones and
    the ply count do not fit that (a capture happened) or the sequence does not reach the board.
    """
    grid = game.grid(state).reshape(-1)
    plies = int(game.move_number(state[None])[0])
    stones = [list(np.flatnonzero(grid == 0)), list(np.flatnonzero(grid == 1))]
    pass_action = game.spec.num_actions - 1
    moves = []
    for ply in range(plies):
        own = stones[ply % 2]
        moves.append(int(own.pop(0)) if own else pass_action)
    replay = game.initial_states(1)
    try:
        if stones[0] or stones[1]:
            raise ValueError("more stones than moves")
        for action in moves:
            replay = game.step(replay, np.array([action]))
    except ValueError as e:
        raise GtpEngineError(
            f"cannot set up a GTP engine in the position at ply {plies} without its moves "
            f"({e}): the arena told the player no moves before this one") from None
    if not np.array_equal(game.grid(replay[0]), game.grid(state)) or game.terminal(replay)[0]:
        raise GtpEngineError(f"cannot set up a GTP engine in the position at ply {plies}: "
                             f"stones were captured before the engine joined the game")
    return moves
