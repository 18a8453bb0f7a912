"""The UCI `go` command: its limits, and the search plan they make (how many simulations, how many
seconds, what depth, whether to wait for `stop`).

Time a move may take (`move_seconds`), all in seconds:
  * `movetime T`: T less the move overhead, but never less than half of T;
  * a clock (`wtime`/`btime` for the side to move, `winc`/`binc`, `movestogo`): of the time left
    less the move overhead (`usable`), usable / moves-to-go (MOVES_TO_GO when the GUI does not
    say) plus INCREMENT_SHARE of the increment, and never more than MAX_SHARE of usable. With
    100 ms left and the default 50 ms overhead that is 1.7 ms: the engine answers from the
    root's evaluation and a few simulations at most, and does not flag;
  * both given: the smaller.
The move overhead (the `Move Overhead` option, default DEFAULT_MOVE_OVERHEAD_MS) is the time lost
outside the search: the pipes, the GUI, the network of an online server.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

MOVES_TO_GO = 30                 # moves we plan for when the GUI gives no movestogo
INCREMENT_SHARE = 0.75           # share of the increment spent on the move it comes with
MAX_SHARE = 0.5                  # never more than this share of the usable time on one move
DEFAULT_MOVE_OVERHEAD_MS = 50
MAX_NUMBER = 1 << 53             # larger numbers in `go` are taken as this (no overflow anywhere)

_INTEGER_FIELDS = ("wtime", "btime", "winc", "binc", "movestogo", "depth", "nodes", "mate",
                   "movetime")
_FLAGS = ("infinite", "ponder")


@dataclass
class GoLimits:
    """The words of one `go` command (None: not given). Times in milliseconds."""
    wtime: int | None = None
    btime: int | None = None
    winc: int | None = None
    binc: int | None = None
    movestogo: int | None = None
    depth: int | None = None
    nodes: int | None = None
    mate: int | None = None
    movetime: int | None = None
    infinite: bool = False
    ponder: bool = False
    searchmoves: list[str] = field(default_factory=list)

    def clock(self, to_play: int) -> tuple[int | None, int]:
        """(time left, increment) in ms of the side to move (0 = White)."""
        left, inc = (self.wtime, self.winc) if to_play == 0 else (self.btime, self.binc)
        return left, inc or 0


def parse_integer(word: str) -> int:
    """A UCI number: an integer (a decimal such as "1000.0" is rounded), clamped to
    +-MAX_NUMBER. ValueError for anything else (nan, inf, words, a 5000-digit number too:
    Python refuses to read it and we say so)."""
    try:
        value = int(word)
    except ValueError:
        number = float(word)          # ValueError for words
        if not math.isfinite(number):
            raise ValueError(f"{word!r} is not a finite number") from None
        value = round(number)
    return max(-MAX_NUMBER, min(MAX_NUMBER, value))


def parse_go(words: list[str]) -> tuple[GoLimits, list[str]]:
    """The words after `go` -> (limits, problems). A word that is not understood, or a field
    without a usable number, is left out and named in `problems`; the rest still counts."""
    limits, problems = GoLimits(), []
    i = 0
    while i < len(words):
        word = words[i].lower()
        i += 1
        if word in _FLAGS:
            setattr(limits, word, True)
        elif word == "searchmoves":
            while i < len(words) and words[i].lower() not in _INTEGER_FIELDS + _FLAGS:
                limits.searchmoves.append(words[i])
                i += 1
        elif word in _INTEGER_FIELDS:
            if i >= len(words):
                problems.append(f"{word} without a number")
                continue
            try:
                setattr(limits, word, parse_integer(words[i]))
            except ValueError:
                problems.append(f"{word} {words[i][:40]!r} is not a number")
            i += 1
        else:
            problems.append(f"unknown word {words[i - 1][:40]!r}")
    return limits, problems


def move_seconds(limits: GoLimits, to_play: int, overhead_ms: int) -> float | None:
    """Seconds the search may take for this move (None: no time limit). See the module
    docstring; never negative."""
    overhead = max(0, overhead_ms) / 1000.0
    budgets = []
    if limits.movetime is not None:
        t = max(0, limits.movetime) / 1000.0
        budgets.append(max(t - overhead, 0.5 * t))
    left, inc = limits.clock(to_play)
    if left is not None:
        usable = max(0.0, left / 1000.0 - overhead)
        moves = limits.movestogo if limits.movestogo is not None and limits.movestogo > 0 \
            else MOVES_TO_GO
        share = usable / moves + INCREMENT_SHARE * max(0, inc) / 1000.0
        budgets.append(min(share, MAX_SHARE * usable))
    return min(budgets) if budgets else None


@dataclass(frozen=True)
class SearchPlan:
    """When one search stops: the first of its limits reached (None: no such limit), or `stop`
    only (`until_stop`: go infinite, go ponder before ponderhit). The bestmove of a plan with
    `until_stop` waits for `stop` even when nothing is left to search."""
    simulations: int | None = None
    seconds: float | None = None
    depth: int | None = None
    until_stop: bool = False


def plan_search(limits: GoLimits, to_play: int, *, simulations: int, overhead_ms: int
                ) -> SearchPlan:
    """The plan of a `go` (after ponderhit for `go ponder`): `nodes` caps the simulations, the
    clock and movetime the seconds, `depth` the principal variation's length. A search with
    neither `nodes` nor a time limit (a bare `go`, `go depth D`) runs at most `simulations`
    (the Simulations option); `go infinite` runs until `stop`."""
    if limits.infinite:
        return SearchPlan(until_stop=True)
    seconds = move_seconds(limits, to_play, overhead_ms)
    cap = None
    if limits.nodes is not None:
        cap = max(0, limits.nodes)
    elif seconds is None:
        cap = max(0, simulations)
    depth = max(1, limits.depth) if limits.depth is not None else None
    return SearchPlan(simulations=cap, seconds=seconds, depth=depth)
