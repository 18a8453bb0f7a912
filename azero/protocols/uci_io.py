"""The UCI engine's input and output: lines in from a byte stream, lines out from any thread.

Lines are read as GTP reads them (gtp_protocol.read_lines): bytes, a line ends at LF, control
characters are dropped, "#" starts a comment, and at most 64 KiB of a line is kept (a longer one
is refused with an `info string`, read with bounded memory); then decoded from UTF-8, with U+FFFD
for bytes that are not, and split at white space by the engine.

`serve` reads in its own thread and runs the commands in another (see its docstring), so that
`stop` and `quit` act at once (UciEngine.interrupt) even while a command waits for a search.
"""
from __future__ import annotations

import queue
import threading
from typing import BinaryIO

from .gtp_protocol import read_lines


def shown(text: str, limit: int = 80) -> str:
    """Input as it may be shown in an info line: one line, printable, at most `limit` chars."""
    text = "".join(c if c.isprintable() else "?" for c in text[:limit + 1])
    return text if len(text) <= limit else text[:limit] + "..."


class LineWriter:
    """Lines to a byte stream, whole and flushed, from any thread. A stream the reader has
    closed is noted (`closed`) and the lines after it are dropped."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.closed = False
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self.stream.write((line + "\n").encode("utf-8", "replace"))
                self.stream.flush()
            except (OSError, ValueError):
                self.closed = True


def serve(engine, stdin: BinaryIO) -> int:
    """Act on the lines of the byte stream `stdin` until `quit`, the end of input, or the
    output closed (engine.output_closed). This thread reads the lines and acts on `stop` and
    `quit` at once (UciEngine.interrupt), so that neither waits behind a command that waits for
    a search; a command thread runs the commands in order. At the end of input a search with
    limits finishes (and sends its bestmove) and one without (go infinite) is stopped. Once
    quit is read nothing more is read, so no thread is left inside `stdin`."""
    lines: queue.Queue = queue.Queue()
    commands = threading.Thread(target=_run_commands, args=(engine, lines),
                                name="uci-commands")
    commands.start()
    try:
        for index, (line, too_long) in enumerate(read_lines(stdin)):
            command = None if too_long else engine.interrupt(line, index)
            lines.put((index, line, too_long))
            if command == "quit" or engine.output_closed():
                break
    except BaseException:                  # Ctrl-C, a broken stdin: end as quit does
        engine.interrupt("quit", 1 << 62)
        raise
    finally:
        lines.put(None)
        commands.join()
    return 0


def _run_commands(engine, lines: queue.Queue) -> None:
    """The command thread of `serve`: each line in turn, until quit or the end (None)."""
    while not engine.quitting and not engine.output_closed():
        item = lines.get()
        if item is None:
            break
        index, line, too_long = item
        if too_long:
            start = shown(line.decode("utf-8", "replace"))
            engine.info(f"line too long (over 64 KiB), ignored: {start}")
        else:
            engine.handle(line, index)
    engine.wait_thinking()
