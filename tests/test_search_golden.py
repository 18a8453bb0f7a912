"""Golden search results: a deterministic fake evaluator on a fixed pseudo-random game tree, visit
counts recorded once from a run verified against tests/reference_mcts.py (and re-checked against
it here). A change in any selection rule, backup sign, tie-break or prior computation shows up as a
changed count."""
import numpy as np
import pytest

from azero.search import BatchedSearch, SearchConfig
from fake_games import RandomTree
from reference_mcts import ReferenceMCTS

GOLDEN = {
    ("puct", (-1.0, 1.0)): (
        [[6, 11, 3, 0, 28, 0], [2, 0, 43, 0, 3, 0], [0, 6, 23, 0, 19, 0], [9, 2, 0, 31, 0, 6]],
        [0.026154, -0.139719, 0.042796, -0.168764]),
    ("puct", None): (
        [[0, 46, 0, 0, 2, 0], [0, 0, 47, 0, 1, 0], [0, 1, 23, 0, 24, 0], [43, 0, 0, 5, 0, 0]],
        [-0.162769, 0.042584, 0.039725, -0.082883]),
    ("gumbel", (-1.0, 1.0)): (
        [[3, 20, 3, 0, 19, 3], [19, 20, 3, 0, 3, 3], [3, 3, 19, 0, 20, 3], [3, 3, 3, 20, 0, 19]],
        [0.003379, 0.012598, 0.113575, -0.052692]),
}
GUMBEL_ACTIONS = [1, 1, 4, 3]


@pytest.mark.parametrize("algorithm,value_bounds", list(GOLDEN))
def test_golden_visit_counts(algorithm, value_bounds):
    game = RandomTree(6, 7)
    roots = game.roots(np.arange(4) + 2024)
    config = SearchConfig(algorithm=algorithm, num_simulations=48, value_bounds=value_bounds)
    out = BatchedSearch(game, config, 4).run(roots, game.evaluate, add_noise=False, temperature=0)
    visits, values = GOLDEN[(algorithm, value_bounds)]
    np.testing.assert_array_equal(out.visit_counts, visits)
    np.testing.assert_allclose(out.root_value, values, atol=2e-6)
    if algorithm == "gumbel":
        np.testing.assert_array_equal(out.actions, GUMBEL_ACTIONS)
    else:
        np.testing.assert_array_equal(out.actions, np.argmax(visits, axis=1))
    for b in range(4):
        ref = ReferenceMCTS(game, game.evaluate, algorithm=algorithm, num_simulations=48,
                            value_bounds=value_bounds).run(roots[b])
        np.testing.assert_array_equal(ref["visit_counts"], visits[b])
