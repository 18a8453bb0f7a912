"""An external UCI engine (Stockfish, or any engine by its command line) as a Player for the arena.

Specs (azero.players.make_player):
    stockfish                       Stockfish at its full strength, 10,000 nodes a move
    stockfish:skill=0,nodes=100     ... at skill level 0 (0..20); limits nodes=N, depth=N and
                                    movetime=MS (milliseconds) in any mix (the engine stops at the
                                    first one reached); hash=MB (default 16)
    uci:COMMAND LINE                any UCI engine, 100 ms a move, e.g. "uci:stockfish" or
                                    "uci:azero uci --ckpt best.pt"
    uci[nodes=800]:COMMAND LINE     ... with its own limits (nodes=, depth=, movetime=)

Stockfish is Debian's package (apt-get install stockfish: /usr/games/stockfish, found on PATH or
there), run with Threads=1 and a small hash so that it plays by its node count alone, and a match
beside it keeps the machine's other core.

The UCI side is python-chess's client (`chess.engine.SimpleEngine`): this module reaches it through
the game's registry hook `uci_client` (games/__init__.py), so it names no game; a game without the
hook has no UCI engines (ValueError).

One engine process per player, started on first use and asked for each row's move in turn (rows
never wait on each other's engine, so nothing can deadlock). Every row is its own game for the
engine: moving from one row to another sends `ucinewgame` (python-chess's `game=` key), so no
search sees another game's hash, and with a node or depth limit the same position and history get
the same move (Stockfish's skill levels below 20 pick among their best moves with a random
generator seeded from the clock, so they are not repeatable).

Positions: each row keeps the engine's board (the game's `board_of`, a python-chess Board) and
pushes every move it is told of (`observe`), so the engine is sent `position fen ... moves ...`
with the game's history and sees its repetitions. A row whose position it was not told (the
arena's random opening moves, which players are not told; a new game) is set up from the state:
`game.board_of(state)`, a board without the moves that led to it.

Errors: an engine that cannot start, dies, hangs past its timeout, or answers an illegal move or no
move raises UciEngineError naming its command line.
"""
from __future__ import annotations

import asyncio
import re
import shlex
import shutil
from dataclasses import dataclass

import numpy as np

from .base import Decision

DEFAULT_STOCKFISH_NODES = 10_000
DEFAULT_STOCKFISH_HASH_MB = 16
DEFAULT_MOVETIME_MS = 100              # uci:COMMAND without limits
DEFAULT_STARTUP_TIMEOUT = 60.0         # seconds to uciok and to each setoption / quit
DEFAULT_MOVE_TIMEOUT = 60.0            # seconds to bestmove, beyond the move's own movetime
STOCKFISH_DIRS = ("/usr/games", "/usr/local/games")   # Debian's, not on every PATH
# What python-chess's client raises on a timeout: asyncio's TimeoutError, which is the builtin
# one only from Python 3.11 (3.10, also supported, has its own class).
_TIMEOUTS = (TimeoutError, asyncio.TimeoutError)

# key -> (smallest, largest) value of a spec's integer options
_LIMITS = {"nodes": (1, 10**12), "depth": (1, 1000), "movetime": (1, 10**9)}
_STOCKFISH_OPTIONS = {**_LIMITS, "skill": (0, 20), "hash": (1, 65536)}


class UciEngineError(RuntimeError):
    """An external UCI engine failed: could not start, died, hung, or answered a bad move."""


def find_stockfish() -> str | None:
    """The stockfish executable: on PATH, or in Debian's /usr/games."""
    return shutil.which("stockfish") or shutil.which("stockfish", path=":".join(STOCKFISH_DIRS))


@dataclass(frozen=True)
class UciEngineSpec:
    """What a stockfish / uci: player spec names."""
    label: str                                  # the player's name, e.g. "stockfish-skill0-nodes100"
    argv: tuple[str, ...] | None = None         # uci:COMMAND LINE; None: Stockfish, found at start
    options: tuple[tuple[str, int], ...] = ()   # UCI options set once the engine is up
    nodes: int | None = None                    # limits of every move (None: not limited by it)
    depth: int | None = None
    movetime_ms: int | None = None

    def command(self) -> list[str]:
        """The engine's command line, its executable found. ValueError if it is not there."""
        if self.argv is None:
            executable = find_stockfish()
            if executable is None:
                raise ValueError("Stockfish is not installed: apt-get install stockfish (Debian "
                                 "puts it in /usr/games), or name an engine with "
                                 "'uci:COMMAND LINE'")
            return [executable]
        if shutil.which(self.argv[0]) is None:
            raise ValueError(f"{self.label}: no executable {self.argv[0]!r} (not on PATH)")
        return list(self.argv)

    @property
    def command_line(self) -> str:
        return shlex.join(self.argv) if self.argv is not None else "stockfish"

    def limit(self, client):
        """The search limit of every move, as the UCI client's `Limit`."""
        return client.Limit(nodes=self.nodes, depth=self.depth,
                            time=None if self.movetime_ms is None else self.movetime_ms / 1000)


def _integer_options(text: str, body: str, allowed: dict[str, tuple[int, int]],
                     example: str) -> dict[str, int]:
    """"key=N,key=N" -> {key: N}, each key in `allowed` at most once, N within its range."""
    values: dict[str, int] = {}
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or key not in allowed:
            raise ValueError(f"{text!r}: unknown option {item!r}; write {example} (options: "
                             f"{', '.join(allowed)})")
        if key in values:
            raise ValueError(f"{text!r}: {key} is given twice")
        low, high = allowed[key]
        if not re.fullmatch(r"[0-9]{1,13}", value) or not low <= int(value) <= high:
            raise ValueError(f"{text!r}: {key} is a whole number from {low} to {high}, "
                             f"not {value!r}")
        values[key] = int(value)
    return values


def parse_uci_spec(text: str) -> UciEngineSpec | None:
    """A stockfish / uci: spec -> UciEngineSpec; None if `text` is not one. ValueError if
    malformed."""
    if text == "stockfish" or text.startswith("stockfish:"):
        values = _integer_options(text, text[len("stockfish:"):], _STOCKFISH_OPTIONS,
                                  "stockfish:skill=0,nodes=100")
        limits = {k: values[k] for k in _LIMITS if k in values} or {"nodes": DEFAULT_STOCKFISH_NODES}
        skill = values.get("skill", 20)
        label = "stockfish" + "".join(f"-{k}{v}" for k, v in
                                      (("skill", values.get("skill")), *limits.items())
                                      if v is not None)
        options = (("Threads", 1), ("Hash", values.get("hash", DEFAULT_STOCKFISH_HASH_MB)),
                   ("Skill Level", skill))
        return UciEngineSpec(label=label, options=options, nodes=limits.get("nodes"),
                             depth=limits.get("depth"), movetime_ms=limits.get("movetime"))
    if text.startswith("uci:") or text.startswith("uci["):
        limits = {"movetime": DEFAULT_MOVETIME_MS}
        rest = text[len("uci:"):]
        if text.startswith("uci["):
            body, sep, rest = text[len("uci["):].partition("]:")
            if not sep:
                raise ValueError(f"{text!r}: write uci[nodes=N]:COMMAND LINE (limits nodes=, "
                                 f"depth=, movetime= in ms)")
            limits = _integer_options(text, body, _LIMITS, "uci[nodes=800]:COMMAND LINE")
            if not limits:
                raise ValueError(f"{text!r}: uci[...] needs at least one limit (nodes=, depth=, "
                                 f"movetime=), or write uci:COMMAND LINE for 100 ms a move")
        try:
            argv = shlex.split(rest)
        except ValueError as e:
            raise ValueError(f"{text!r}: bad command line: {e}") from None
        if not argv:
            raise ValueError(f"{text!r}: uci: needs the engine's command line, e.g. "
                             f"'uci:stockfish' or 'uci:azero uci --ckpt best.pt'")
        shown = "" if text.startswith("uci:") else \
            "[" + ",".join(f"{k}={v}" for k, v in limits.items()) + "]"
        return UciEngineSpec(label=f"uci{shown}:{shlex.join(argv)}", argv=tuple(argv),
                             nodes=limits.get("nodes"), depth=limits.get("depth"),
                             movetime_ms=limits.get("movetime"))
    return None


def uci_client_of(game):
    """The game's UCI client library (its registry hook `uci_client`). ValueError for a game
    without one, naming the games that have one."""
    from azero.games import entry, hook, names
    client = hook(game.spec.name, "uci_client")
    if client is None:
        speakers = [name for name in names() if entry(name).uci_client]
        raise ValueError(f"UCI engines play {', '.join(speakers) or 'no registered game'}, "
                         f"not {game.spec.name}")
    return client


class UciPlayer:
    """An external UCI engine (see the module docstring)."""

    def __init__(self, game, spec: UciEngineSpec, *, name: str | None = None,
                 move_timeout: float = DEFAULT_MOVE_TIMEOUT,
                 startup_timeout: float = DEFAULT_STARTUP_TIMEOUT):
        self._client = uci_client_of(game)
        self.game = game
        self.spec = spec
        self.name = name or spec.label
        self.move_timeout = move_timeout
        self.startup_timeout = startup_timeout
        self._command = spec.command()
        self._limit = spec.limit(self._client)
        self._engine = None
        # Per row: the engine's board (a python-chess Board whose move stack holds the moves the
        # player was told of), the state it stands for, and the game's key for `ucinewgame`.
        self._boards: list = []
        self._known: list[np.ndarray | None] = []
        self._keys: list[object] = []

    # ------------------------------------------------------------------ Player

    def begin(self, batch_size: int) -> None:
        self._boards = [None] * batch_size
        self._known = [None] * batch_size
        self._keys = [object() for _ in range(batch_size)]

    def reset(self, rows: np.ndarray | None = None) -> None:
        rows = range(len(self._boards)) if rows is None else np.asarray(rows).reshape(-1)
        for row in rows:
            self._boards[int(row)] = None
            self._known[int(row)] = None
            self._keys[int(row)] = object()

    def act(self, states: np.ndarray, active: np.ndarray) -> Decision:
        if len(self._boards) != len(states):
            self.begin(len(states))
        actions = np.zeros(len(states), dtype=np.int64)
        for row in np.flatnonzero(active):
            row = int(row)
            board = self._board(row, states[row])
            move = self._play(board, self._keys[row])
            try:
                actions[row] = self.game.action_of_move(states[row], move)
            except ValueError as e:
                raise UciEngineError(f"UCI engine {self.spec.command_line!r} answered {move} in "
                                     f"{board.fen()}, which our rules do not allow: {e}") from None
        return Decision(actions)

    def observe(self, actions: np.ndarray, active: np.ndarray) -> None:
        for row in np.flatnonzero(active):
            row, action = int(row), int(actions[row])
            board, known = self._boards[row], self._known[row]
            if board is None:
                continue                   # not set up yet: `act` sets the row up from its state
            board.push(self.game.move_of_action(known, action))
            self._known[row] = self.game.step(known[None], np.array([action]))[0]

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            try:
                engine.quit()
            except Exception:
                pass                       # dead or hung already: close() below ends it
            finally:
                engine.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ------------------------------------------------------------------ helpers

    def _board(self, row: int, state: np.ndarray):
        """The row's board, set up afresh from `state` when the player was not told how the
        game reached it."""
        known = self._known[row]
        if known is None or not np.array_equal(known, state):
            self._boards[row] = self.game.board_of(state)
            self._known[row] = state.copy()
        return self._boards[row]

    def _start(self):
        if self._engine is not None:
            return self._engine
        where = f"UCI engine {self.spec.command_line!r}"
        try:
            engine = self._client.SimpleEngine.popen_uci(self._command,
                                                         timeout=self.startup_timeout)
        except OSError as e:
            raise UciEngineError(f"{where} could not start: {e}") from None
        except _TIMEOUTS:
            raise UciEngineError(f"{where} did not answer 'uci' with 'uciok' within "
                                 f"{self.startup_timeout:g} s") from None
        except self._client.EngineError as e:
            raise UciEngineError(f"{where} failed at start: {e}") from None
        try:
            engine.configure(dict(self.spec.options))
        except (self._client.EngineError, *_TIMEOUTS) as e:
            engine.close()
            raise UciEngineError(f"{where}: setting its options {dict(self.spec.options)} "
                                 f"failed: {e or 'timeout'}") from None
        self._engine = engine
        return engine

    def _play(self, board, key):
        """The engine's move in `board` (python-chess's `play`, with a timeout even when the
        limit is nodes or depth: SimpleEngine waits forever then)."""
        engine = self._start()
        timeout = self.move_timeout + (self._limit.time or 0.0)
        where = f"UCI engine {self.spec.command_line!r}"
        if engine.returncode.done():              # it died since its last move
            self._drop_engine()
            raise UciEngineError(f"{where} exited (code {engine.returncode.result()}) before "
                                 f"its move in {board.fen()}")
        try:
            coroutine = asyncio.wait_for(engine.protocol.play(board, self._limit, game=key),
                                         timeout)
            result = asyncio.run_coroutine_threadsafe(coroutine, engine.protocol.loop).result()
        except _TIMEOUTS:
            self._drop_engine()
            raise UciEngineError(f"{where} gave no move within {timeout:g} s in "
                                 f"{board.fen()}") from None
        except self._client.EngineError as e:       # EngineTerminatedError included
            self._drop_engine()
            raise UciEngineError(f"{where} failed in {board.fen()}: "
                                 f"{e or type(e).__name__}") from None
        if result.move is None:
            raise UciEngineError(f"{where} answered no move in {board.fen()}, where our rules "
                                 f"have legal moves")
        return result.move

    def _drop_engine(self) -> None:
        """Kill the engine (after an error: its state is unknown); the next move restarts it."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()
        self.reset()
