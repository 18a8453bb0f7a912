"""Malformed GTP input, as an outside fuzz sends it: every line that is not empty after GTP v2's
preprocessing gets exactly one answer (with its id), every other line none, and nothing is an
internal error. Lines hold control characters (CR, NUL, ESC, ...) anywhere, bytes that are not
UTF-8, comments, tabs, ids, and some are very long.

The expected answers come from the spec's preprocessing written out here (`spec_clean`), not from
the engine's code. Each fuzz line is followed by a sentinel command with a known answer, so that
an extra or a missing answer is pinned to its line."""
import io
import subprocess
import sys

import numpy as np

SENTINEL_ID = 100_000
COMMANDS = [b"name", b"protocol_version", b"version", b"known_command", b"list_commands",
            b"play", b"genmove", b"undo", b"showboard", b"final_score", b"komi", b"boardsize",
            b"clear_board", b"time_settings", b"time_left", b"kgs-genmove_cleanup", b"loadsgf",
            b"fixed_handicap", b"set_free_handicap", b"fly", b"PLAY", b"pro\rtocol_version"]
ARGS = [b"b", b"w", b"black", b"D4", b"e5", b"pass", b"9", b"19", b"6.5", b"nan", b"-1", b"0",
        b"A10", b"Z9", b"\xc3\xa9", b"/nonexistent/game.sgf", b"1e400", b"genmove"]
# control bytes but LF, invalid UTF-8, valid multi-byte, comment marks, blanks
NOISE = ([bytes([c]) for c in range(32) if c != 10] + [b"\x7f", b"\r", b"\r", b"\r\r", b"\x00",
         b"\xff", b"\xfe", b"\xc3", b"\xed\xa0\x80", b"\xe2\x80\xa8", b"\xc2\x85", b"#", b"\t",
         b" ", b"  "])


def spec_clean(line: bytes) -> bytes:
    """GTP v2 section 3.1, step by step: drop control characters but HT and LF, cut the comment,
    HT to space; what is left but spaces is the command."""
    kept = bytes(b for b in line if b == 9 or 32 <= b != 127)
    return kept.split(b"#")[0].replace(b"\t", b" ").strip(b" ")


def fuzz_lines(n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    pick = lambda seq: seq[int(rng.integers(len(seq)))]     # noqa: E731
    lines = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.05:
            line = b"".join(pick(NOISE) for _ in range(int(rng.integers(0, 6))))
        else:
            words = ([str(int(rng.integers(0, 1000))).encode()] if rng.random() < 0.5 else [])
            words += [pick(COMMANDS)] + [pick(ARGS) for _ in range(int(rng.integers(0, 4)))]
            line = b"".join(w + pick([b" ", b"\t", b"  ", b" \t "]) for w in words)
            for _ in range(int(rng.integers(0, 5))):                    # noise anywhere
                at = int(rng.integers(0, len(line) + 1))
                line = line[:at] + pick(NOISE) + line[at:]
        lines.append(line.replace(b"\n", b""))
    # very long lines: a command, a comment, blanks before a command, noise before a command
    lines += [b"7 name " + b"x" * 200_000, b"# " + b"y" * 200_000, b" " * 150_000 + b"8 name",
              b"\x00" * 150_000 + b"9 name", b"10 known_command " + b"\r" * 150_000 + b"play"]
    return lines


def stream(lines: list[bytes]) -> bytes:
    """The fuzz lines, each followed by a sentinel `protocol_version` with its own id."""
    return b"".join(line + b"\n" + b"%d protocol_version\n" % (SENTINEL_ID + i)
                    for i, line in enumerate(lines))


def check_answers(lines: list[bytes], out: bytes) -> None:
    """Exactly one answer per line that is not empty after preprocessing, none for the others,
    with the line's id; no internal error."""
    answers = out.split(b"\n\n")
    assert answers[-1] == b"", out[-200:]
    answers = answers[:-1]
    pos, wrong, bad = 0, [], []
    for i, line in enumerate(lines):
        between = []
        while pos < len(answers) and answers[pos] != b"=%d 2" % (SENTINEL_ID + i):
            between.append(answers[pos])
            pos += 1
        assert pos < len(answers), f"no sentinel after line {i} {line[:80]!r}"
        pos += 1
        command = spec_clean(line)
        if len(between) != (1 if command else 0):
            wrong.append((i, line[:80], between))
        elif command:
            first = command.split()[0]
            cid = first if first.isdigit() else b""
            if between[0][:1] not in b"=?" or between[0][1:].split(b" ")[0] != cid \
                    or b"internal error" in between[0]:
                bad.append((line[:80], between[0][:80]))
    assert not wrong, f"{len(wrong)} lines answered wrongly, e.g. {wrong[:3]}"
    assert not bad, f"{len(bad)} answers with a wrong id or an internal error, e.g. {bad[:3]}"
    assert pos == len(answers)


def test_fuzz_through_the_azero_gtp_command():
    """The real `azero gtp` process over pipes, 3000 malformed lines."""
    lines = fuzz_lines(3000, seed=1)
    assert sum(b"\r" in line and bool(spec_clean(line)) for line in lines) > 100
    done = subprocess.run([sys.executable, "-m", "azero.cli", "gtp", "--ckpt", "random"],
                          input=stream(lines) + b"quit\n", capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.endswith(b"= \n\n")                  # the quit
    check_answers(lines, done.stdout[:-len(b"= \n\n")])
    assert b"Traceback" not in done.stderr


def test_fuzz_through_the_stream_loop():
    from azero.games import make
    from azero.protocols.gtp import GtpEngine, make_mover
    from azero.protocols.gtp_protocol import serve
    game = make("go9")
    lines = fuzz_lines(3000, seed=2)
    engine = GtpEngine(make_mover("random", game), game, log=io.StringIO())
    out = io.BytesIO()
    assert serve(engine, io.BytesIO(stream(lines)), out) == 0
    check_answers(lines, out.getvalue())
    assert "Traceback" not in engine.log.getvalue()


def test_line_handling_details():
    """What the spec's preprocessing implies, one case at a time."""
    from azero.games import make
    from azero.protocols.gtp import GtpEngine, make_mover
    from azero.protocols.gtp_protocol import MAX_LINE_BYTES, read_lines, serve
    game = make("go9")
    e = GtpEngine(make_mover("random", game), game, log=io.StringIO())

    def answers(data: bytes) -> bytes:
        out = io.BytesIO()
        serve(e, io.BytesIO(data), out)
        return out.getvalue()

    assert answers(b"1 pro\rtocol_version\r\n2 name\r\n") == b"=1 2\n\n=2 azero\n\n"
    assert answers(b"\r\n\r\r\n#x\r\n \t\n") == b""                 # nothing but blanks
    assert answers(b"3 na\xffme\n4 name") == b"?3 unknown command\n\n=4 azero\n\n"
    assert answers(b"5 play \xff d4\n") == b"?5 syntax error\n\n"  # not UTF-8: not a colour
    assert answers(b"6 play b d4 \x00# \xff\n") == b"=6 \n\n"      # bad bytes in a comment
    assert e.moves == [game.parse_point("D4")]
    long = b"11 name " + b"x" * MAX_LINE_BYTES
    assert answers(long + b"\n12 name\n") == b"?11 line too long\n\n=12 azero\n\n"
    assert answers(b"13 name" + b" " * (3 * MAX_LINE_BYTES) + b"\n") == b"=13 azero\n\n"
    assert e.handle(long) == "?11 line too long\n\n"
    assert e.handle("14 \ud800 name") == "?14 unknown command\n\n"   # a str no bytes made
    # memory stays bounded: a line of 10 MB comes back as its first max_bytes bytes
    (line, too_long), = read_lines(io.BytesIO(b"x" * 10_000_000), max_bytes=1000)
    assert too_long and line == b"x" * 1000
    assert list(read_lines(io.BytesIO(b"a\rb\x00c\nd"))) == [(b"abc", False), (b"d", False)]
