"""Talking to an external GTP engine (GNU Go, KataGo, our own `azero gtp`) running as a
subprocess, and a referee that plays one game between two such engines (as gogui-twogtp does).

Every read has a deadline: an engine that dies, hangs or answers `?` raises `GtpEngineError`
naming the engine, the command and what came back (its exit status and the tail of its stderr),
never a hang. Commands carry ids, and a response with the wrong id is an error too.

Several engines can think at once: `send` writes a command and returns, `receive` collects the
answer later (GtpPlayer asks every game in flight for its move, then reads the answers).
"""
from __future__ import annotations

import os
import select
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

DEFAULT_TIMEOUT = 30.0           # seconds for an ordinary command
DEFAULT_STARTUP_TIMEOUT = 60.0   # the first answer (engines may load a network first)
DEFAULT_MOVE_TIMEOUT = 300.0     # genmove


class GtpEngineError(RuntimeError):
    """An external GTP engine failed: could not start, died, hung, or answered `?`."""


@dataclass
class GtpResponse:
    ok: bool          # "=" (True) or "?" (False)
    text: str         # the result or error text, without "=id " and the blank line


def find_gnugo() -> str | None:
    """The gnugo executable: on PATH, or Debian's /usr/games/gnugo (not on every PATH)."""
    found = shutil.which("gnugo")
    if found:
        return found
    for candidate in ("/usr/games/gnugo", "/usr/local/games/gnugo"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def gnugo_command(level: int | None = 1, executable: str | None = None) -> list[str]:
    """GNU Go as a GTP engine under our rules: area scoring, positional superko, no suicide.
    level None: GNU Go's own default (10)."""
    exe = executable or find_gnugo()
    if exe is None:
        raise GtpEngineError("gnugo not found: install GNU Go (Debian/Ubuntu: apt-get install "
                             "gnugo) or give its path with gtp:/path/to/gnugo --mode gtp ...")
    argv = [exe, "--mode", "gtp", "--chinese-rules", "--positional-superko", "--forbid-suicide"]
    return argv if level is None else argv + ["--level", str(int(level))]


class GtpClient:
    """One engine process. `command(...)` sends and waits; `send` / `receive` split the two."""

    def __init__(self, command: Sequence[str] | str, *, name: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
                 cwd: str | os.PathLike | None = None, env: dict | None = None):
        self.argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if not self.argv:
            raise GtpEngineError("empty GTP engine command line")
        self.name = name or Path(self.argv[0]).name
        self.timeout = timeout
        self._stderr = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=self._stderr,
                                          cwd=cwd, env=env, bufsize=0,
                                          # own session: a terminal's Ctrl-C goes to the
                                          # foreground group; the owner decides when to stop
                                          start_new_session=True)
        except OSError as e:
            self._stderr.close()
            raise GtpEngineError(f"cannot start GTP engine {shlex.join(self.argv)}: {e}") from None
        self._buffer = b""
        self._next_id = 1
        self._pending: list[tuple[int, str]] = []     # (id, command) sent, not yet answered
        self._closed = False
        try:
            self.command("protocol_version", timeout=startup_timeout)
        except GtpEngineError:
            self.close()
            raise

    # ------------------------------------------------------------------ commands

    def send(self, command: str) -> None:
        """Write one command (an id is added); answer it later with `receive`."""
        if self._closed:
            raise GtpEngineError(f"{self.name}: engine already closed")
        command = " ".join(command.split())
        cid = self._next_id
        self._next_id += 1
        try:
            self._proc.stdin.write(f"{cid} {command}\n".encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._error(command, "the engine is not running (broken pipe)") from None
        self._pending.append((cid, command))

    def receive(self, timeout: float | None = None, *, check: bool = True) -> GtpResponse:
        """The answer to the oldest command sent. check: raise on a `?` answer."""
        if not self._pending:
            raise GtpEngineError(f"{self.name}: receive() without a command sent")
        cid, command = self._pending.pop(0)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        raw = self._read_response(command, deadline)
        lines = raw.split("\n")
        head = lines[0]
        if not head or head[0] not in "=?":
            raise self._error(command, f"malformed response {raw!r}")
        status, _, rest = head[1:].partition(" ")
        if status and status != str(cid):
            raise self._error(command, f"response id {status!r}, expected {cid}")
        text = "\n".join([rest] + lines[1:]).strip()
        response = GtpResponse(head[0] == "=", text)
        if check and not response.ok:
            raise self._error(command, f"answered '? {text}'", with_stderr=False)
        return response

    @property
    def pending(self) -> int:
        """Commands sent whose answers were not received yet."""
        return len(self._pending)

    def command(self, command: str, timeout: float | None = None, *,
                check: bool = True) -> GtpResponse:
        """Send and wait. Refused (GtpEngineError) while answers to earlier `send`s are pending:
        the answer read would be theirs, not this command's."""
        if self._pending:
            raise GtpEngineError(
                f"{self.name}: command '{command}' refused: {len(self._pending)} earlier "
                f"answer(s) pending ({', '.join(c for _, c in self._pending)}); receive them first")
        self.send(command)
        return self.receive(timeout, check=check)

    def __call__(self, command: str, timeout: float | None = None) -> str:
        """Send, wait, return the result text (GtpEngineError on `?`)."""
        return self.command(command, timeout).text

    # ------------------------------------------------------------------ plumbing

    def _read_response(self, command: str, deadline: float) -> str:
        """Bytes up to the blank line that ends a response, as text with \\r and other control
        characters but \\n and \\t dropped, leading empty lines skipped."""
        fd = self._proc.stdout.fileno()
        while True:
            self._buffer = self._buffer.replace(b"\r", b"")
            self._buffer = self._buffer.lstrip(b"\n")
            end = self._buffer.find(b"\n\n")
            if end >= 0:
                raw, self._buffer = self._buffer[:end], self._buffer[end + 2:]
                text = raw.decode("utf-8", "replace")
                return "".join(ch for ch in text if ch >= " " or ch in "\n\t")
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise self._error(command, "no answer in time (timeout); the engine was killed")
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                try:
                    self._proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.kill()
                    raise self._error(command, "the engine closed its output without exiting; "
                                               "it was killed") from None
                raise self._error(command, f"the engine exited (status "
                                           f"{self._proc.returncode}) before answering")
            self._buffer += chunk

    def _stderr_tail(self, lines: int = 15) -> str:
        try:
            self._stderr.flush()
            self._stderr.seek(0)
            tail = self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-lines:]
        except (OSError, ValueError):
            return ""
        return "\n".join(tail)

    def _error(self, command: str, what: str, with_stderr: bool = True) -> GtpEngineError:
        message = f"GTP engine {self.name} ({shlex.join(self.argv)}): command '{command}': {what}"
        tail = self._stderr_tail() if with_stderr else ""
        if tail:
            message += "\n--- its stderr (last lines) ---\n" + tail
        return GtpEngineError(message)

    @property
    def alive(self) -> bool:
        return not self._closed and self._proc.poll() is None

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def close(self, timeout: float = 5.0) -> None:
        """`quit`, then wait; kill the engine if it does not leave in `timeout` seconds."""
        if self._closed:
            return
        self._closed = True
        if self._proc.poll() is None:
            try:
                self._proc.stdin.write(b"quit\n")
                self._proc.stdin.flush()
            except OSError:
                pass
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self._proc.stdin, self._proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            if not self._closed:
                self.kill()
                self.close(timeout=0.1)
        except Exception:
            pass


# ---------------------------------------------------------------------- referee

@dataclass
class RefereeResult:
    moves: list[int]                     # actions played (passes included)
    winner: int | None                   # 0 Black, 1 White, None draw
    reason: str                          # "two passes", "resignation", "move limit", "max moves"
    score: float | None                  # Tromp-Taylor score (Black - White - komi), if scored
    engine_scores: dict = field(default_factory=dict)   # final_score of each engine: {"B": .., "W": ..}
    game: str = ""                       # the registry name of the game played (its SGF hook)

    @property
    def result_string(self) -> str:
        """The SGF RE value, through the game's `sgf` registry hook."""
        from azero.games import hook
        format_result = hook(self.game, "sgf").format_result
        if self.reason == "resignation":
            return format_result(self.winner)
        return format_result(self.winner, self.score)


def referee_game(game, black: GtpClient, white: GtpClient, *, max_moves: int | None = None,
                 move_timeout: float = DEFAULT_MOVE_TIMEOUT, ask_final_score: bool = True,
                 genmove: tuple[str, str] = ("genmove", "genmove")) -> RefereeResult:
    """Play one game of `game` (go9) between two GTP engines from the empty board, with our
    rules as the referee: every move is checked (an illegal one raises GtpEngineError), the game
    ends at two passes, a resignation, our rules' move limit, or after `max_moves` plies (then it
    is scored as it stands). Both engines get `boardsize`, `clear_board` and `komi` first.
    genmove: the command asking Black's and White's engine for a move (e.g.
    "kgs-genmove_cleanup" for engines that would otherwise pass leaving dead stones, which
    Tromp-Taylor scoring counts as alive)."""
    import numpy as np
    engines = (black, white)
    komi = float(game.komi)
    for e in engines:
        e(f"boardsize {game.spec.board_shape[0]}")
        e("clear_board")
        e(f"komi {komi:g}")
    state = game.initial_states(1)
    moves: list[int] = []
    while not game.terminal(state)[0] and not game.truncated(state)[0]:   # two passes, the cap
        if max_moves is not None and len(moves) >= max_moves:
            reason = "max moves"
            break
        colour = int(game.to_play(state)[0])
        mover, other = engines[colour], engines[1 - colour]
        reply = mover(f"{genmove[colour]} {'bw'[colour]}", timeout=move_timeout).strip()
        if reply.lower() == "resign":
            return RefereeResult(moves, 1 - colour, "resignation", None,
                                 _final_scores(engines) if ask_final_score else {},
                                 game.spec.name)
        try:
            action = game.parse_action(state[0], reply)
        except ValueError as e:
            raise GtpEngineError(f"{mover.name} played {reply!r} as {'BW'[colour]} after "
                                 f"{len(moves)} moves: {e}") from None
        other(f"play {'bw'[colour]} {reply}")
        state = game.step(state, np.array([action], dtype=np.int64))
        moves.append(action)
    else:
        reason = "two passes" if len(moves) >= 2 and moves[-1] == moves[-2] == \
            game.spec.num_actions - 1 else "move limit"
    score = float(game.score(state)[0])
    winner = None if score == 0 else (0 if score > 0 else 1)
    return RefereeResult(moves, winner, reason, score,
                         _final_scores(engines) if ask_final_score else {}, game.spec.name)


def _final_scores(engines) -> dict:
    scores = {}
    for colour, e in zip("BW", engines):
        r = e.command("final_score", check=False)
        scores[colour] = r.text if r.ok else None
    return scores
