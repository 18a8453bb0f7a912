"""GTP v2 on the wire: reading command lines, parsing them, formatting the answers, and the
dispatch of each command to its handler (https://www.lysator.liu.se/~gunnar/gtp/, the spec draft 2,
section 2 for the syntax and 3.1 for preprocessing).

Input is bytes. A line ends at LF only (a CR is not a line end: it is a control character and is
dropped, so "play b d4\\r\\n" is one command), and each line is preprocessed as the spec says:
  1. control characters (bytes 0-31 and 127) other than HT and LF are removed;
  2. everything from "#" on is a comment and is removed;
  3. HT becomes a space;
  4. a line that is then empty (or only spaces) is ignored: it gets no answer.
Every other line gets exactly one answer. Words are separated by spaces. A leading word of ASCII
digits is the command id, echoed in the answer: "=12 D4\\n\\n", "?12 illegal move\\n\\n".
Words are decoded from UTF-8 with surrogateescape: a byte that is not UTF-8 never crashes the engine;
it makes a command name unknown and a colour, vertex or number a syntax error, and a file name
(loadsgf) still names the file with those bytes. A line longer than MAX_LINE_BYTES after
preprocessing is answered "? line too long" and read with bounded memory.

Errors use the spec's texts ("unknown command", "syntax error", ...). A command that fails
unexpectedly answers "? internal error: ..." (the traceback goes to the log) and the engine goes
on. A blank line ends an answer, so none appears inside one.
"""
from __future__ import annotations

import re
import sys
import traceback
from typing import BinaryIO, Iterator, TextIO

import numpy as np

MAX_LINE_BYTES = 1 << 16         # a longer command line (after preprocessing) is refused
READ_CHUNK = 1 << 16             # bytes read at a time while looking for the end of a line

# Removed by preprocessing: the control characters but HT (9) and LF (10); CR (13) among them.
_REMOVED = bytes(b for b in range(32) if b not in (9, 10)) + b"\x7f"
_VERTEX = re.compile(r"^[A-HJ-Z](\d{1,2})$")


class GtpError(Exception):
    """A command failed: the message becomes the "? message" answer."""


def preprocess(line: bytes) -> bytes:
    """One input line (bytes, without its LF) as GTP v2 section 3.1 cleans it: control characters
    but HT and LF removed, the comment from "#" on cut, HT to space, outer spaces stripped."""
    return line.translate(None, _REMOVED).split(b"#", 1)[0].replace(b"\t", b" ").strip(b" ")


def read_lines(stream: BinaryIO, max_bytes: int = MAX_LINE_BYTES
               ) -> Iterator[tuple[bytes, bool]]:
    """(line, too_long) for each line of `stream` that is not empty after preprocessing, lines
    split at LF only (the last one may lack it). `line` is preprocessed; when `too_long` (the
    preprocessed line has more than `max_bytes` bytes) it holds only the first `max_bytes`, and
    the rest of the line was read and dropped: memory stays bounded whatever the input."""
    while True:
        kept = bytearray()     # the preprocessed line so far, leading spaces stripped
        too_long = in_comment = False
        chunk = b""
        while not chunk.endswith(b"\n"):
            chunk = stream.readline(READ_CHUNK)
            if not chunk:
                if not kept and not too_long:
                    return
                break
            if in_comment:
                continue
            head, hash_sign, _ = chunk.rstrip(b"\n").translate(None, _REMOVED).partition(b"#")
            in_comment = bool(hash_sign)
            kept += head.replace(b"\t", b" ")
            if kept[:1] == b" ":
                kept = bytearray(kept.lstrip(b" "))
            if len(kept) > max_bytes:
                # a byte past max_bytes that is not a space makes the stripped line too long
                too_long = too_long or bool(kept[max_bytes:].strip(b" "))
                del kept[max_bytes:]
        line = bytes(kept).rstrip(b" ")
        if line or too_long:
            yield line, too_long


def reply(cid: str, ok: bool, text: str) -> str:
    """The answer to one command: "=id text\\n\\n" or "?id text\\n\\n", with the blank lines
    of a multi-line text removed (a blank line ends an answer)."""
    lines = text.split("\n")
    text = lines[0] + "".join("\n" + line for line in lines[1:] if line.strip())
    return f"{'=' if ok else '?'}{cid} {text}\n\n"


# --------------------------------------------------------------------------- argument parsing

def arity(args: list[str], low: int, high: int | None = None) -> None:
    if not low <= len(args) <= (low if high is None else high):
        raise GtpError("syntax error")


def colour(word: str) -> int:
    """"b" / "black" -> 0, "w" / "white" -> 1 (any case)."""
    w = word.lower()
    if w in ("b", "black"):
        return 0
    if w in ("w", "white"):
        return 1
    raise GtpError("syntax error")


def number(word: str, kind=float):
    """A finite float (or an int with kind=int); anything else is a syntax error."""
    try:
        value = kind(word)
    except ValueError:
        raise GtpError("syntax error") from None
    if kind is float and not np.isfinite(value):
        raise GtpError("syntax error")
    return value


def vertex(word: str, game) -> int:
    """A vertex or "pass" -> the game's action. Not a vertex: syntax error; a vertex off the
    board: illegal move (as the spec says)."""
    w = word.upper()
    if w == "PASS":
        return game.spec.num_actions - 1
    if not _VERTEX.match(w):
        raise GtpError("syntax error")
    try:
        return game.parse_point(w)
    except ValueError:
        raise GtpError("illegal move") from None


# --------------------------------------------------------------------------- dispatch

class GtpDispatcher:
    """Answers command lines with the methods `cmd_<command>` (dashes become underscores) of the
    commands in COMMANDS; a subclass adds its own. A handler gets the argument words and returns
    the answer text, or raises GtpError for a "?" answer. The administrative commands of the
    spec are here."""

    COMMANDS: tuple[str, ...] = ("protocol_version", "name", "version", "known_command",
                                 "list_commands", "quit")

    def __init__(self, *, name: str, version: str, log: TextIO | None = None):
        self.name = name
        self.version = version
        self.log = log if log is not None else sys.stderr
        self.quit_requested = False
        self._handlers = {command: getattr(self, "cmd_" + command.replace("-", "_"))
                          for command in self.COMMANDS}

    def handle(self, line: bytes | str, too_long: bool = False) -> str | None:
        """The full answer to one input line, or None for a line that gets no answer (empty or
        only a comment after preprocessing); its LF may end it. A str is taken as its UTF-8
        bytes. `too_long`: the line was cut by read_lines (it is refused whatever it holds now)."""
        if isinstance(line, str):
            try:
                line = line.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:                # a lone surrogate that no byte made
                line = line.encode("utf-8", "backslashreplace")
        text = preprocess(line.removesuffix(b"\n"))
        if not text and not too_long:
            return None
        words = [w.decode("utf-8", "surrogateescape") for w in text.split(b" ") if w]
        cid = words.pop(0) if words and words[0].isascii() and words[0].isdigit() else ""
        if too_long or len(text) > MAX_LINE_BYTES:
            return reply(cid, False, "line too long")
        handler = self._handlers.get(words[0]) if words else None
        if handler is None:
            return reply(cid, False, "unknown command")
        try:
            result = handler(words[1:])
        except GtpError as e:
            return reply(cid, False, str(e))
        except Exception as e:                        # never let one command kill the engine
            shown = text.decode("utf-8", "backslashreplace")
            self.note(f"internal error in {shown!r}:\n{traceback.format_exc()}")
            return reply(cid, False,
                         "internal error: " + " ".join(f"{type(e).__name__}: {e}".split()))
        return reply(cid, True, "" if result is None else str(result))

    def note(self, message: str) -> None:
        """A line for the log (stderr): what the engine thinks, why a move was refused."""
        print(f"{self.name}: {message}", file=self.log, flush=True)

    def cmd_protocol_version(self, args):
        return "2"

    def cmd_name(self, args):
        return self.name

    def cmd_version(self, args):
        return self.version

    def cmd_known_command(self, args):
        arity(args, 1)
        return "true" if args[0] in self._handlers else "false"

    def cmd_list_commands(self, args):
        return "\n".join(self.COMMANDS)

    def cmd_quit(self, args):
        self.quit_requested = True
        return ""


def serve(engine: GtpDispatcher, stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer the command lines of the byte stream `stdin` on the byte stream `stdout` until
    `quit` or the end of input."""
    for line, too_long in read_lines(stdin):
        answer = engine.handle(line, too_long)
        if answer is not None:
            stdout.write(answer.encode("utf-8", "backslashreplace"))
            stdout.flush()
        if engine.quit_requested:
            break
    return 0
