"""The UCI engine's thinking: one game's search tree searched in chunks of simulations, between
which the engine's `stop` (and `ponderhit`) is seen, with what a UCI engine reports.

`TreeSearcher` drives a BatchedSearch of one row over a search player's network evaluator and
settings (azero.players.SearchPlayer: a checkpoint, or plain MCTS with rollouts). The chunks run
on the same tree, so their visits add up; the tree follows the moves of the game (`played`) when
the settings reuse it. A chunk is the simulations that fit CHUNK_SECONDS at the measured speed
(one while the speed is not known yet), cut to what the plan still allows: at most CHUNK_FRACTION
of the time it has left, its simulations, and the room left in the tree (MAX_TREE_BYTES of node
states). Under a time limit, and in a search that only `stop` or `ponderhit` ends (go infinite,
go ponder), a chunk is also at most twice the simulations done so far (1, 2, 6, 18, ...): a speed
measured in other conditions (another position, a busy machine) can make a chunk overshoot the
time by no more than about twice what the search had taken, and a stop soon after the start (a
GUI's ponder miss) is seen at once. With Gumbel each chunk runs its own sequential halving over
the kept tree, as a search player under a time budget does. A plan with neither a time limit
nor `until_stop` (go nodes, go depth, a bare go) runs chunks of FIXED_CHUNK_SIMULATIONS instead,
whatever the speed: the same position and limit then give the same search and move on any
machine under any load (a match at fixed nodes is reproducible), and `stop` is seen within one
chunk. The move is the last chunk's own
choice where the whole search visited it at least half as much as its most visited root child,
else a most visited one (`_chosen`).

`PlayerSearcher` answers with any other player (`random`): no tree, no stop inside a move.

What a UCI engine reports (`Progress`):
  * score: the search's Q of the chosen move (the root value before any visit), side to move's
    view, in centipawns by lc0's mapping cp = 111.714640912 * tan(1.5620688421 * q) (q = 0.25:
    46 cp, 0.5: 111, 0.75: 265, 0.9: 671, 0.95: 1283, 1: 12800);
  * pv: the chosen move, then from each node on the most visited child (the lowest action on
    ties) while it has visits: a line of legal moves the tree searched;
  * depth: the pv's length; nodes: the simulations of this search (not the reused tree's).
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .uci_clock import SearchPlan

CHUNK_SECONDS = 0.25             # a chunk's planned length: how late `stop` may be seen
CHUNK_FRACTION = 0.75            # of the time a plan has left, a chunk plans for this share
MAX_TREE_BYTES = 1 << 30         # node states kept in one tree at most (then the search rests)
MAX_PV = 64                      # plies of the principal variation reported at most
FIXED_CHUNK_SIMULATIONS = 128    # a chunk of a plan without a clock (module docstring)
WELL_SEARCHED = 0.5               # the last chunk's choice stands with this share of the top visits


def centipawns(q: float) -> int:
    """A value in [-1, 1] (side to move's view) as centipawns (lc0's mapping, module docstring)."""
    q = min(1.0, max(-1.0, float(q)))
    return int(round(111.714640912 * math.tan(1.5620688421 * q)))


@dataclass
class Progress:
    """Where a search stands."""
    action: int                  # the move it would play now
    simulations: int             # run by this search
    seconds: float               # since the search began
    value: float | None = None   # Q of `action`, side to move's view (None: no search)
    line: tuple[int, ...] = ()   # the principal variation, `action` first (actions)

    @property
    def depth(self) -> int:
        return max(1, len(self.line))


class Thinking:
    """What the engine's command thread and the search thread share during one `go`: the plan
    (replaced at `ponderhit`) and its start, and the stop flag. `wake` is set at stop and at
    ponderhit, so a search resting on a full tree or an exhausted plan looks again."""

    def __init__(self, plan: SearchPlan):
        self.plan = plan
        self.started = time.monotonic()       # when `plan` began to count
        self.stopped = threading.Event()
        self.wake = threading.Event()

    def stop(self) -> None:
        self.stopped.set()
        self.wake.set()

    def replan(self, plan: SearchPlan) -> None:
        """ponderhit: `plan` counts from now."""
        self.plan, self.started = plan, time.monotonic()
        self.wake.set()

    def rest(self) -> None:
        """Wait (the search has nothing to do) until stop or ponderhit."""
        self.wake.wait()
        self.wake.clear()


Report = Callable[[Progress], None]


class TreeSearcher:
    """A search player's evaluator and settings over one tree (see the module docstring)."""

    def __init__(self, game, evaluator, config, seed: int = 0):
        from azero.search import BatchedSearch
        self.game = game
        self.evaluator = evaluator
        self.config = config
        self.search = BatchedSearch(game, config, 1, seed=seed)
        self.seconds_per_simulation: float | None = None      # measured, kept across moves
        node_bytes = game.spec.state_size * np.dtype(game.spec.state_dtype).itemsize
        self.max_nodes = max(2, MAX_TREE_BYTES // node_bytes)

    @property
    def default_simulations(self) -> int:
        return self.config.num_simulations

    def reset(self) -> None:
        self.search.reset()

    def played(self, action: int) -> None:
        """The game went on by `action` from the position of the tree's root."""
        self.search.advance(np.array([action], dtype=np.int64), np.array([True]))

    def _run(self, state: np.ndarray, simulations: int):
        # BatchedSearch reads its simulations from its config at each run (the rest is fixed
        # when it is built).
        self.search.config = replace(self.config, num_simulations=int(simulations))
        t0 = time.monotonic()
        out = self.search.run(state[None], self.evaluator, add_noise=False, temperature=0.0)
        if simulations > 0:
            rate = (time.monotonic() - t0) / simulations
            prev = self.seconds_per_simulation
            self.seconds_per_simulation = rate if prev is None else 0.5 * (prev + rate)
        return out

    def _chunk(self, plan: SearchPlan, done: int, elapsed: float) -> int:
        """Simulations of the next chunk (0: the plan allows no more)."""
        rate = self.seconds_per_simulation
        if plan.seconds is None and not plan.until_stop:
            n = FIXED_CHUNK_SIMULATIONS         # no clock: chunks that timing does not change
        else:
            n = 1 if rate is None else max(1, int(CHUNK_SECONDS / rate))
        if plan.simulations is not None:
            n = min(n, plan.simulations - done)
        if plan.seconds is not None:
            left = plan.seconds - elapsed
            n = min(n, (1 if left > 0 else 0) if rate is None
                    else int(CHUNK_FRACTION * left / rate))
        if plan.seconds is not None or plan.until_stop:
            n = min(n, max(1, 2 * done))
        n = min(n, self.max_nodes - int(self.search.core.num_nodes()[0]))
        return max(0, n)

    def principal_line(self, first: int) -> tuple[int, ...]:
        """`first`, then the most visited child of each node while it has visits (actions)."""
        core, line, node = self.search.core, [int(first)], 0
        while len(line) < MAX_PV:
            edges = core.children(0, node)
            at = np.flatnonzero(edges["actions"] == line[-1])
            node = int(edges["child"][at[0]]) if len(at) else -1
            if node < 0:
                break
            below = core.children(0, node)
            if len(below["visits"]) == 0 or below["visits"].max() == 0:
                break
            line.append(int(below["actions"][int(np.argmax(below["visits"]))]))
        return tuple(line)

    def _progress(self, out, done: int, t0: float) -> Progress:
        action = _chosen(out)
        q = float(out.root_q[0, action])
        value = q if math.isfinite(q) else float(out.root_value[0])
        return Progress(action, done, time.monotonic() - t0, value, self.principal_line(action))

    def think(self, state: np.ndarray, thinking: Thinking, report: Report,
              every: float) -> Progress:
        """Search the live position state [S] until the plan is met or `stop` (one chunk at
        least, so there is a move); `report` gets the progress every `every` seconds. A plan
        `until_stop` rests when it has nothing left to search and returns only at stop."""
        t0 = last = time.monotonic()
        done, progress = 0, None
        while progress is None or not thinking.stopped.is_set():
            plan = thinking.plan
            n = self._chunk(plan, done, time.monotonic() - thinking.started)
            if progress is None and thinking.stopped.is_set():
                n = min(n, 1)                    # stopped before it began: a move at once
            if progress is not None and (n == 0 or (plan.depth is not None
                                                    and progress.depth >= plan.depth)):
                if not plan.until_stop:
                    break
                thinking.rest()
                continue
            progress = self._progress(self._run(state, n), done + n, t0)
            done += n
            if time.monotonic() - last >= every and not thinking.stopped.is_set():
                report(progress)
                last = time.monotonic()
        progress.seconds = time.monotonic() - t0
        return progress


def _chosen(out) -> int:
    """The move of a search of one row made of chunks: the last chunk's own choice (Gumbel's
    pick among its most visited; PUCT's argmax) where the whole search (visits over all chunks
    and the kept tree) visited it at least WELL_SEARCHED times as much as its most visited root
    child, else a most visited child, the one with the best Q. A late, small chunk thus cannot
    pick a move the search hardly looked at, and a move one visit behind the most visited (an
    earlier chunk's extra visit) does not lose to it whatever their Qs (a mate in one did)."""
    visits = out.visit_counts[0]
    action = int(out.actions[0])
    if visits.max() == 0 or visits[action] >= WELL_SEARCHED * visits.max():
        return action
    best = np.flatnonzero(visits == visits.max())
    q = np.nan_to_num(out.root_q[0, best], nan=-np.inf)
    return int(best[int(np.argmax(q))])


class PlayerSearcher:
    """Any other player (azero.players): its move at once; a plan `until_stop` waits for stop."""

    default_simulations = 1

    def __init__(self, player):
        self.player = player
        player.begin(1)

    def reset(self) -> None:
        self.player.reset()

    def played(self, action: int) -> None:
        self.player.observe(np.array([action], dtype=np.int64), np.array([True]))

    def think(self, state: np.ndarray, thinking: Thinking, report: Report,
              every: float) -> Progress:
        t0 = time.monotonic()
        action = int(self.player.act(state[None], np.array([True])).actions[0])
        while thinking.plan.until_stop and not thinking.stopped.is_set():
            thinking.rest()
        return Progress(action, 0, time.monotonic() - t0, None, (action,))


def make_searcher(player, seed: int = 0):
    """The searcher of a player of azero.players.make_player."""
    from azero.players import SearchPlayer
    from azero.players.muzero_player import MuZeroPlayer
    # A search over the rules runs here in chunks; a MuZero player searches its learned model,
    # which only the player itself drives.
    if isinstance(player, SearchPlayer) and not isinstance(player, MuZeroPlayer):
        return TreeSearcher(player.game, player.evaluator, player.config, seed=seed)
    return PlayerSearcher(player)
