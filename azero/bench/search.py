"""search simulations/s (PUCT, Gumbel) with a trivial evaluator, beside mctx on CPU

What is measured: `BatchedSearch.run` end to end (root evaluation, noise, every simulation step
with its Python glue, outputs), simulations per second = batch * simulations / wall time.
Rules and network cost ~nothing, as in mctx's benchmarks with a trivial recurrent_fn:
  * the game is synthetic (`TrivialGame`): every action legal, never terminal, a state is one
    int64 move counter, step adds one;
  * the evaluator returns uniform logits and zero values (preallocated, so no allocation).
So the figure is the cost of the search itself: tree walks, expansions, backups, Python glue.

The peer is mctx (JAX, jitted on CPU, compile time excluded): `gumbel_muzero_policy` for the
Gumbel rows and `muzero_policy` for the PUCT rows, with a recurrent_fn returning the same
trivial outputs (reward 0, discount -1, zero logits and values, embedding unchanged). The PUCT
rows of both use Q normalised by parent and siblings (mctx's default), so both build the same trees.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Iterable, Iterator

import numpy as np

from azero.bench.report import Measurement
from azero.games.protocol import GameSpec
from azero.search import BatchedSearch, SearchConfig


class TrivialGame:
    """Synthetic rules that cost ~nothing: all actions legal, never terminal, state = ply, the
    two players alternate (as mctx's discount -1 has it)."""

    def __init__(self, num_actions: int, max_batch: int = 4096):
        self.spec = GameSpec(name=f"trivial{num_actions}", num_actions=num_actions,
                             observation_shape=(1,), state_size=1, max_game_length=10**9)
        self._legal = np.ones((max_batch, num_actions), bool)
        self._false = np.zeros(max_batch, bool)
        self._zero = np.zeros(max_batch, np.float32)

    def initial_states(self, n):
        return np.zeros((n, 1), np.int64)

    def step(self, states, actions):
        return states + 1

    def legal_mask(self, states):
        return self._legal[:len(states)]

    def terminal(self, states):
        return self._false[:len(states)]

    def truncated(self, states):
        return self._false[:len(states)]

    def move_number(self, states):
        return states[:, 0]

    def to_play(self, states):
        return states[:, 0] & 1

    def result(self, states):
        return self._zero[:len(states)]


class TrivialEvaluator:
    """Uniform logits, zero values, from preallocated buffers."""

    def __init__(self, num_actions: int, max_batch: int = 4096):
        self._logits = np.zeros((max_batch, num_actions), np.float32)
        self._values = np.zeros(max_batch, np.float32)

    def __call__(self, states):
        n = len(states)
        return self._logits[:n], self._values[:n]


def _config(algorithm: str, sims: int) -> SearchConfig:
    return SearchConfig(algorithm=algorithm, num_simulations=sims, value_bounds=None)


def time_ours(algorithm: str, num_actions: int, batch: int, sims: int, min_seconds: float) -> float:
    """Simulations per second of BatchedSearch.run (best of repeated timings)."""
    game = TrivialGame(num_actions, batch)
    evaluator = TrivialEvaluator(num_actions, batch)
    search = BatchedSearch(game, _config(algorithm, sims), batch, seed=0)
    states = game.initial_states(batch)

    def once():
        search.reset()  # a fresh tree each time, like mctx
        search.run(states, evaluator, add_noise=True)

    once()  # warm-up: capacities grown, code paths paged in
    return _rate(once, batch * sims, min_seconds)


def _rate(fn, sims_per_call: int, min_seconds: float) -> float:
    best, spent, calls = float("inf"), 0.0, 0
    while spent < min_seconds or calls < 3:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, calls = min(best, dt), spent + dt, calls + 1
    return sims_per_call / best


def time_mctx(algorithm: str, num_actions: int, batch: int, sims: int, min_seconds: float) -> float:
    """Simulations per second of mctx's policy (jitted, CPU, compile excluded)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import mctx

    def recurrent_fn(params, rng_key, action, embedding):
        b = action.shape[0]
        out = mctx.RecurrentFnOutput(reward=jnp.zeros(b), discount=-jnp.ones(b),
                                     prior_logits=jnp.zeros((b, num_actions)), value=jnp.zeros(b))
        return out, embedding

    root = mctx.RootFnOutput(prior_logits=jnp.zeros((batch, num_actions)), value=jnp.zeros(batch),
                             embedding=jnp.zeros((batch, 1)))
    policy = mctx.gumbel_muzero_policy if algorithm == "gumbel" else mctx.muzero_policy

    @jax.jit
    def run(key):
        return policy(params=(), rng_key=key, root=root, recurrent_fn=recurrent_fn,
                      num_simulations=sims).action_weights

    keys = iter(jax.random.split(jax.random.PRNGKey(0), 10_000))
    run(next(keys)).block_until_ready()  # compile
    return _rate(lambda: run(next(keys)).block_until_ready(), batch * sims, min_seconds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="only batch 256 x 32 simulations (the row compared with mctx)")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--simulations", type=int, nargs="+", default=[8, 32, 200])
    parser.add_argument("--actions", type=int, nargs="+", default=[7, 82])
    parser.add_argument("--algorithms", nargs="+", choices=["puct", "gumbel"],
                        default=["puct", "gumbel"])
    parser.add_argument("--no-peer", action="store_true", help="skip mctx")
    parser.add_argument("--seconds", type=float, default=0.3,
                        help="minimum timed seconds per figure (best run counts)")


def measure(args: argparse.Namespace) -> Iterator[Measurement]:
    batches, sims_list = (([256], [32]) if args.quick else (args.batch, args.simulations))
    rows = [(algorithm, num_actions, batch, sims) for num_actions in args.actions
            for algorithm in args.algorithms for batch in batches for sims in sims_list]
    # All of ours first, then the peer: JAX's thread pools stay busy for a while after its runs.
    ours = {row: time_ours(*row, args.seconds) for row in rows}
    for algorithm, num_actions, batch, sims in rows:
        peer = peer_value = None
        if not args.no_peer and batch == 256 and sims == 32:
            peer = ("mctx gumbel_muzero_policy" if algorithm == "gumbel"
                    else "mctx muzero_policy") + " (jit, CPU)"
            try:
                peer_value = time_mctx(algorithm, num_actions, batch, sims, args.seconds)
            except ImportError:
                peer, peer_value = "mctx (not installed)", None
        yield Measurement(name=f"{algorithm} {num_actions} actions, batch {batch} x {sims} sims",
                          value=ours[algorithm, num_actions, batch, sims], unit="sims/s",
                          peer=peer, peer_value=peer_value)


def main(argv: Iterable[str] | None = None) -> None:  # python -m azero.bench.search
    import sys

    from azero.bench.report import write_table
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    write_table(measure(parser.parse_args(argv)), sys.stdout)


if __name__ == "__main__":
    main()
