"""Game rules speed: batched random playouts through the Game API on one core, beside OpenSpiel.

What is measured, in moves (plies) per second:
  * ours: B games in lockstep, one core, each ply one call of the function through which the
    search steps its leaves (`azero.search.step_leaves`: the fused `step_with_info` where the game
    has it, else step + legal_mask + terminal + result, and the backup signs: the spec's
    `alternating_turns` promise, else `to_play` of parent and child), so
    this figure cannot drift from what the search runs: pick a uniformly random legal action per
    row (a small numba sampler) -> step_leaves -> finished rows restart from the initial position.
    The search calls it with L = games in lockstep x leaves per step (128 in the shipped configs);
    --batch sets B. Baseline (ours), where the game has a fused step: step_leaves(fused=False),
    the same with the separate protocol calls step, legal_mask, terminal, result it replaces.
  * peer: OpenSpiel's own C++ random playouts of the same game (`RandomRolloutEvaluator`, driven
    through `MCTSBot.mcts_search` with one simulation, so that each Python call runs 1000 complete
    random games in C++: clone the start state, then LegalActions / uniform pick / ApplyAction until
    terminal). OpenSpiel does not report how many moves those games took, so moves = games x the
    peer's own mean random game length, measured beforehand with uniformly random games through
    the Python bindings (its rules may end games differently from ours: OpenSpiel's go stops at
    162 plies). The peer's name says so. Without those bindings the peer is a Python
    loop over `state.apply_action`, and its name says "Python bindings".
Numba compile (or cache load) time is excluded: every path is warmed up before its clock starts.
All our kernels are compiled with parallel=False: one thread.
"""
from __future__ import annotations

import argparse
import time
from typing import Iterator

import numpy as np
from numba import njit

from azero import games, search
from azero.bench.report import Measurement


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--game", default=games.default_name(), choices=games.names(),
                        help="game to measure (the peer: the registry's OpenSpiel name for it)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3,
                        help="rounds of (ours, peer), interleaved; the best of each is reported "
                             "(on a shared machine a slow round says something about the "
                             "neighbours, not the code)")
    parser.add_argument("--batch", type=int, default=4096, help="games played in lockstep")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the playouts")


@njit(cache=True)
def _xorshift(x):
    """One xorshift64* step of the state x (uint64) -> (new state, 32 random bits as uint64)."""
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    return x, (x * np.uint64(0x2545F4914F6CDD1D)) >> np.uint64(32)


@njit(cache=True)
def sample_uniform_legal(mask, rng_state, out):
    """mask [B, A] bool -> out [B] int64: a uniformly random legal action per row (-1 if none).
    Random numbers: xorshift64* on rng_state [1] uint64 (advanced in place). Rejection sampling
    (a few tries, action = 32 random bits x A >> 32), then, for rows with few legal actions, an
    exact pick among the row's legal actions, listed without branches (a branchy count-and-scan
    fallback made the sampler ~50% slower on late-game Go batches, where 28% of rows reach it)."""
    batch, num_actions = mask.shape
    legal = np.empty(num_actions, dtype=np.int64)     # the row's legal actions, first `count`
    x = rng_state[0]
    for i in range(batch):
        chosen = -1
        for _ in range(4):
            x, r = _xorshift(x)
            a = np.int64((r * np.uint64(num_actions)) >> np.uint64(32))
            if mask[i, a]:
                chosen = a
                break
        if chosen < 0:
            count = 0
            for a in range(num_actions):
                legal[count] = a                        # kept only if legal (count advances)
                count += mask[i, a]
            if count > 0:
                x, r = _xorshift(x)
                chosen = legal[np.int64((r * np.uint64(count)) >> np.uint64(32))]
        out[i] = chosen
    rng_state[0] = x


class _Playouts:
    """Random playouts of `batch` games in lockstep, each ply one call of the search's own leaf
    step (`azero.search.step_leaves`, what BatchedSearch calls per expansion); fused=False makes
    it use the separate protocol calls even where the game has step_with_info (the baseline)."""

    def __init__(self, game, batch: int, fused: bool, seed: int):
        self.game, self.fused = game, fused
        # xorshift state: any nonzero 64-bit value.
        self.rng_state = np.array([(seed * 0x9E3779B97F4A7C15 + 1) % 2**64 or 1], dtype=np.uint64)
        self.fresh = game.initial_states(1)[0]
        self.fresh_mask = game.legal_mask(game.initial_states(1))[0]
        self.states = game.initial_states(batch)
        self.mask = game.legal_mask(self.states)
        self.actions = np.empty(batch, dtype=np.int32)   # int32, as the search's select gives
        self.moves = 0
        self.games = 0

    def run(self, iterations: int) -> None:
        game, fused = self.game, self.fused
        for _ in range(iterations):
            sample_uniform_legal(self.mask, self.rng_state, self.actions)
            self.states, self.mask, done, _, _ = search.step_leaves(game, self.states, self.actions,
                                                                    fused)
            self.moves += len(self.actions)
            if done.any():
                self.games += int(done.sum())
                self.states[done] = self.fresh
                self.mask[done] = self.fresh_mask

    def mean_game_length(self) -> float:
        """Plies per finished game: moves played, less those of the games still in progress."""
        in_progress = int(self.game.move_number(self.states).sum())
        return (self.moves - in_progress) / max(self.games, 1)


def _timed(run, seconds: float) -> float:
    """Calls run(n) until `seconds` have passed; returns the elapsed time."""
    start = time.perf_counter()
    n = 1
    while True:
        run(n)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed
        n = min(2 * n, 64)


def measure_ours(game, batch: int, seconds: float, seed: int, fused: bool) -> tuple[float, float]:
    """(moves/s, mean random game length in plies) of batched playouts (see _Playouts)."""
    _Playouts(game, batch, fused, seed).run(3)        # warm-up: compile or load every kernel
    playouts = _Playouts(game, batch, fused, seed)
    elapsed = _timed(playouts.run, seconds)
    return playouts.moves / elapsed, playouts.mean_game_length()


def openspiel_mean_game_length(spiel_game, seed: int, games: int = 300, seconds: float = 2.0
                               ) -> float:
    """Mean length in plies of uniformly random games of an OpenSpiel game (Python bindings), over
    `games` games or as many as `seconds` allow (at least 20)."""
    rng = np.random.default_rng(seed)
    start = spiel_game.new_initial_state()
    lengths = []
    deadline = time.perf_counter() + seconds
    while len(lengths) < games and (len(lengths) < 20 or time.perf_counter() < deadline):
        state = start.clone()
        plies = 0
        while not state.is_terminal():
            legal = state.legal_actions()
            state.apply_action(legal[rng.integers(len(legal))])
            plies += 1
        lengths.append(plies)
    return float(np.mean(lengths))


def measure_openspiel(name: str, seconds: float, seed: int) -> tuple[str, float] | None:
    """(peer name, moves/s) of OpenSpiel random playouts of `name`, or None without pyspiel."""
    try:
        import pyspiel
    except ImportError:
        return None
    spiel_game = pyspiel.load_game(name)
    start_state = spiel_game.new_initial_state()
    if hasattr(pyspiel, "RandomRolloutEvaluator") and hasattr(pyspiel, "MCTSBot"):
        mean_length = openspiel_mean_game_length(spiel_game, seed)
        rollouts = 1000
        evaluator = pyspiel.RandomRolloutEvaluator(rollouts, seed)
        # One simulation: the root is evaluated by `rollouts` random games from the start state.
        bot = pyspiel.MCTSBot(spiel_game, evaluator, 1.4, 1, 100, False, seed, False)
        bot.mcts_search(start_state)                   # warm-up
        done = 0

        def run(n):
            nonlocal done
            for _ in range(n):
                bot.mcts_search(start_state)
                done += rollouts

        elapsed = _timed(run, seconds)
        peer = (f"open_spiel {name} (C++ RandomRolloutEvaluator; moves = games x "
                f"{mean_length:.2f}, its mean random game length)")
        return peer, done * mean_length / elapsed
    rng = np.random.default_rng(seed)
    moves = 0

    def run(n):
        nonlocal moves
        for _ in range(n):
            state = start_state.clone()
            while not state.is_terminal():
                legal = state.legal_actions()
                state.apply_action(legal[rng.integers(len(legal))])
                moves += 1

    elapsed = _timed(run, seconds)
    return f"open_spiel {name} (Python bindings, apply_action loop)", moves / elapsed


def measure(args: argparse.Namespace) -> Iterator[Measurement]:
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    game = games.make(args.game)
    # The search's path (fused where the game can); the separate calls are its baseline only
    # where they differ from it.
    variants = [True] + ([False] if hasattr(game, "step_with_info") else [])
    best = {fused: 0.0 for fused in variants}
    spiel_name, peer = games.entry(args.game).openspiel, None
    for _ in range(args.repeats):        # interleaved, so that both sides see the same machine
        for fused in variants:
            rate, _ = measure_ours(game, args.batch, args.seconds, args.seed, fused)
            best[fused] = max(best[fused], rate)
        if spiel_name is not None:
            measured = measure_openspiel(spiel_name, args.seconds, args.seed)
            if measured is not None and (peer is None or measured[1] > peer[1]):
                peer = measured
    separate = "step, terminal, legal_mask, result"
    how = "step_with_info" if False in best else separate
    signs = "alternating_turns" if game.spec.alternating_turns else "to_play"
    yield Measurement(
        name=f"{args.game} random playouts through the search's leaf step (step_leaves: {how}; "
             f"signs: {signs}), B={args.batch}, 1 core",
        value=best[True], unit="moves/s",
        peer=peer[0] if peer else None, peer_value=peer[1] if peer else None,
        baseline=f"the same with the separate calls {separate}" if False in best else None,
        baseline_value=best.get(False))
