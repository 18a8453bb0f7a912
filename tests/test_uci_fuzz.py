"""Malformed UCI input over raw pipes, as a fuzz sends it: the engine never crashes, never
wedges, and answers each line as the protocol says: a `go` gets exactly one bestmove, `isready`
one readyok, `uci` its id block, and anything it cannot follow at most `info string` lines (UCI has
no error answer); never an internal error.

Lines hold control characters, bytes that are not UTF-8, Unicode spaces, comments, huge and
non-finite numbers, bad FENs, illegal and non-UCI moves, and some are very long. Each fuzz line
is followed by `stop` (a `go` of the fuzz may have no limit) and an unknown command naming the
line, whose `info string` pins every answer to its line. The expected answers come from the
line reading written out here (`spec_words`), not from the engine's code."""
import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("chess")

from test_uci import make_tiny_checkpoint  # noqa: E402

COMMANDS = [b"uci", b"isready", b"ucinewgame", b"position", b"position", b"position", b"go",
            b"go", b"go", b"setoption", b"debug", b"ponderhit", b"register", b"stop", b"joho",
            b"GO", b"posi\x00tion", b"go\x85", b"xyzzy"]
ARGS = [b"startpos", b"fen", b"moves", b"moves", b"e2e4", b"e7e5", b"g1f3", b"e1g1", b"e7e8q",
        b"0000", b"Nf3", b"a7a8N", b"rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR", b"w", b"b",
        b"KQkq", b"-", b"0", b"1", b"8/8/8/8/8/8/8/8", b"7k/5Q2/6K1/8/8/8/8/8", b"nodes",
        b"movetime", b"wtime", b"btime", b"winc", b"binc", b"movestogo", b"depth", b"infinite",
        b"ponder", b"searchmoves", b"mate", b"name", b"value", b"Simulations", b"Threads",
        b"Move", b"Overhead", b"Hash", b"5", b"-1", b"0", b"30", b"99999999999999999999999",
        b"9" * 5000, b"1e400", b"nan", b"-inf", b"2.5", b"\xc3\xa9", b"\xf0\x9f\x98\x80",
        b"on", b"off"]
# control bytes but LF, invalid UTF-8, Unicode spaces (NEL, LINE SEPARATOR), comments, blanks
NOISE = ([bytes([c]) for c in range(32) if c != 10] + [b"\x7f", b"\r", b"\x00", b"\xff",
         b"\xfe", b"\xc3", b"\xed\xa0\x80", b"\xe2\x80\xa8", b"\xc2\x85", b"#", b"\t", b" ",
         b"  "])
LEGALISH = [b"e2e4", b"e7e5", b"g1f3", b"b8c6", b"f1c4", b"g8f6", b"e1g1", b"f8c5", b"d2d3",
            b"e8g8", b"c2c3", b"d7d6"]
KNOWN = {"uci", "isready", "ucinewgame", "position", "go", "stop", "ponderhit", "setoption",
         "debug", "register", "quit"}
MAX_LINE = 1 << 16
_BESTMOVE = re.compile(r"bestmove (0000|[a-h][1-8][a-h][1-8][qrbn]?)( ponder [a-h][1-8][a-h][1-8][qrbn]?)?")
_INFO = re.compile(r"info depth 0 score (cp 0|mate 0)|"           # no legal move
                   r"info depth [1-9]\d* nodes \d+ nps \d+ time \d+"
                   r"( score (cp -?\d+|mate 1))? pv( [a-h][1-8][a-h][1-8][qrbn]?)+")


def spec_words(line: bytes) -> tuple[list[str], bool]:
    """(words, too long) of one input line as the engine's docstring says it reads them:
    control bytes but HT dropped, a comment from "#" cut, at most 64 KiB, UTF-8 (U+FFFD for
    other bytes), split at white space."""
    kept = bytes(b for b in line if b == 9 or 32 <= b != 127).split(b"#")[0]
    kept = kept.replace(b"\t", b" ").strip(b" ")
    return kept.decode("utf-8", "replace").split(), len(kept) > MAX_LINE


def first_command(line: bytes) -> str | None:
    """The command a line runs: its first known word (UCI skips the words before)."""
    words, too_long = spec_words(line)
    return None if too_long else next((w for w in words if w in KNOWN), None)


def fuzz_lines(n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    pick = lambda seq: seq[int(rng.integers(len(seq)))]     # noqa: E731
    lines = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.05:
            line = b"".join(pick(NOISE) for _ in range(int(rng.integers(0, 6))))
        elif kind < 0.15:            # a position that may hold: legal-looking moves from the start
            moves = [pick(LEGALISH) for _ in range(int(rng.integers(0, 8)))]
            line = b"position startpos moves " + b" ".join(moves)
        else:
            words = [pick(COMMANDS)] + [pick(ARGS) for _ in range(int(rng.integers(0, 6)))]
            line = b"".join(w + pick([b" ", b"\t", b"  ", b" \t "]) for w in words)
        for _ in range(int(rng.integers(0, 3))):                       # noise anywhere
            at = int(rng.integers(0, len(line) + 1))
            line = line[:at] + pick(NOISE) + line[at:]
        lines.append(line.replace(b"\n", b""))
    # very long lines: a go, a comment, blanks before a command, noise before a command
    lines += [b"go nodes 1 " + b"x" * 200_000, b"# " + b"y" * 200_000, b" " * 150_000 + b"isready",
              b"\x00" * 150_000 + b"go nodes 1", b"position startpos moves " + b"e2e4 " * 13_000]
    return lines


def stream(lines: list[bytes]) -> bytes:
    """Each fuzz line, then `stop` and the line's sentinel, and quit at the end."""
    return b"".join(line + b"\nstop\nsentinel-%d\n" % i for i, line in enumerate(lines)) + \
        b"quit\n"


def check_answers(lines: list[bytes], out: bytes) -> None:
    answers = out.decode("utf-8").split("\n")
    assert answers[-1] == "", out[-200:]
    answers, pos, wrong = answers[:-1], 0, []
    for i, line in enumerate(lines):
        between = []
        while pos < len(answers) and \
                answers[pos] != f"info string unknown command: sentinel-{i}":
            between.append(answers[pos])
            pos += 1
        assert pos < len(answers), f"no sentinel after line {i} {line[:80]!r}"
        pos += 1
        command = first_command(line)
        bestmoves = [a for a in between if a.startswith("bestmove")]
        readyoks = [a for a in between if a == "readyok"]
        uciok = [a for a in between if a == "uciok"]
        bad = [a for a in between if "internal error" in a or "search failed" in a
               or not (a.startswith(("info ", "bestmove ", "id ", "option ")) or
                       a in ("readyok", "uciok"))
               or (a.startswith("bestmove") and not _BESTMOVE.fullmatch(a))
               or (a.startswith("info ") and not a.startswith("info string")
                   and not _INFO.fullmatch(a))]
        if bad or len(bestmoves) != (command == "go") or len(readyoks) != (command == "isready") \
                or len(uciok) != (command == "uci"):
            wrong.append((i, line[:80], between[:6]))
    assert pos == len(answers), answers[pos:pos + 5]
    assert not wrong, f"{len(wrong)} lines answered wrongly, e.g. {wrong[:3]}"


def test_the_spec_reading_itself():
    assert first_command(b"joho debug on") == "debug"
    assert first_command(b"po\x00sition startpos") == "position"
    assert first_command(b"# go") is None
    assert first_command(b"go\xc2\x85") == "go"                 # NEL is white space
    assert first_command(b"GO") is None


def test_fuzzed_input_over_pipes(tmp_path):
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.pt")
    lines = fuzz_lines(300, seed=1)
    assert sum(first_command(line) == "go" for line in lines) > 40
    done = subprocess.run([sys.executable, "-m", "azero.cli", "uci", "--ckpt", str(ckpt)],
                          input=stream(lines), capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert b"Traceback" not in done.stderr, done.stderr[-2000:]
    check_answers(lines, done.stdout)


def test_piped_commands_without_quit(tmp_path):
    """`printf 'position ...\\ngo nodes 30\\n' | azero uci`: at the end of input the search
    still runs its 30 simulations and answers; the info lines are integers as UCI has them."""
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.pt")
    done = subprocess.run([sys.executable, "-m", "azero.cli", "uci", "--ckpt", str(ckpt)],
                          input=b"position startpos moves e2e4\ngo nodes 30\n",
                          capture_output=True, timeout=60)
    out = done.stdout.decode().splitlines()
    assert done.returncode == 0 and out[-1].startswith("bestmove ")
    assert _INFO.fullmatch(out[-2]) and " nodes 30 " in out[-2], out
