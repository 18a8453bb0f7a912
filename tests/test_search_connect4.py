"""Connect Four tactics with a uniform evaluator (zero logits, zero values): the search alone finds
the immediate win and blocks the immediate loss, several different positions in one batch, for
PUCT and Gumbel. The search steps the rules through the fused step_with_info, and finds the same
as through the separate calls."""
import collections

import numpy as np
import pytest

from azero.search import BatchedSearch, SearchConfig

games = pytest.importorskip("azero.games")

# (moves as 1-indexed columns, the only good action (0-indexed column))
POSITIONS = [
    ("112233", 3),    # X to move: completes the bottom row 1-2-3-4
    ("1212627", 1),   # O to move: fourth O in column 2
    ("12121", 0),     # O to move: X threatens a fourth in column 1
    ("121262", 1),    # X to move: O threatens a fourth in column 2
]


def position(game, moves: str) -> np.ndarray:
    state = game.initial_states(1)
    for ch in moves:
        state = game.step(state, np.array([int(ch) - 1]))
    return state[0]


def uniform(states):
    return np.zeros((len(states), 7), np.float32), np.zeros(len(states), np.float32)


@pytest.mark.parametrize("algorithm,sims", [("puct", 400), ("gumbel", 200)])
@pytest.mark.parametrize("add_noise", [False, True])
def test_wins_and_blocks(algorithm, sims, add_noise):
    game = games.make("connect4")
    cases = POSITIONS
    states = np.stack([position(game, m) for m, _ in cases] * 2)  # each position twice
    expected = np.array([a for _, a in cases] * 2)
    search = BatchedSearch(game, SearchConfig(algorithm=algorithm, num_simulations=sims),
                           len(states), seed=3)
    out = search.run(states, uniform, add_noise=add_noise, temperature=0.0)
    np.testing.assert_array_equal(out.actions, expected)
    for b in range(len(states)):
        search.core.check_invariants(b)
    # The winning move's Q is a sure win; in the blocking positions every other move loses.
    assert (out.root_q[[0, 1], expected[[0, 1]]] == 1.0).all()


class CountedGame:
    """A game whose rules functions count their calls; fused=False hides step_with_info."""

    def __init__(self, game, fused: bool = True):
        self.game, self.fused, self.calls = game, fused, collections.Counter()

    def __getattr__(self, name):
        if name == "step_with_info" and not self.fused:
            raise AttributeError(name)
        attr = getattr(self.game, name)
        if not callable(attr):
            return attr

        def counted(*args, **kwargs):
            self.calls[name] += 1
            return attr(*args, **kwargs)
        return counted


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_the_search_steps_with_step_with_info_and_finds_the_same(algorithm):
    game = games.make("connect4")
    states = np.stack([position(game, m) for m, _ in POSITIONS])
    sims = 64
    fused, separate = CountedGame(game), CountedGame(game, fused=False)
    outs = [BatchedSearch(g, SearchConfig(algorithm=algorithm, num_simulations=sims), len(states),
                          seed=3).run(states, uniform, add_noise=True, temperature=0.0)
            for g in (fused, separate)]
    # at most one call per simulation step (none in a step whose every tree walked to a terminal
    # node already in the tree), and the separate calls in the same steps
    assert 0 < fused.calls["step_with_info"] <= sims and fused.calls["step"] == 0
    assert separate.calls["step"] == fused.calls["step_with_info"]
    for field in ("actions", "visit_counts", "policy_target", "root_value", "root_q"):
        np.testing.assert_array_equal(getattr(outs[0], field), getattr(outs[1], field), err_msg=field)
