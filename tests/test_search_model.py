"""ModelSearch: the same trees over a learned model (MuZero): latent node data, rewards and
discounts from the dynamics, legality at the root only."""
import numpy as np
import pytest

from azero.search import BatchedSearch, ModelSearch, SearchConfig
from fake_games import RandomTree
from reference_mcts import ReferenceMCTS


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_a_model_that_is_the_game_gives_the_games_search(algorithm):
    game = RandomTree(5, 1000, terminal_rate=0.0, legal_rate=1.0)
    roots = game.roots(np.arange(6) + 17)
    config = SearchConfig(algorithm=algorithm, num_simulations=40)

    def recurrent_fn(latents, actions):
        nxt = game.step(latents, actions)
        logits, values = game.evaluate(nxt)
        return nxt, np.zeros(len(actions), np.float32), None, logits, values

    expected = BatchedSearch(game, config, 6).run(roots, game.evaluate, add_noise=False,
                                                  temperature=0)
    logits, values = game.evaluate(roots)
    model = ModelSearch(5, (3,), config, 6, latent_dtype=np.int64)
    out = model.run(roots, logits, values, recurrent_fn, add_noise=False, temperature=0)
    np.testing.assert_array_equal(out.visit_counts, expected.visit_counts)
    np.testing.assert_array_equal(out.actions, expected.actions)
    np.testing.assert_allclose(out.policy_target, expected.policy_target)
    # tree reuse works the same way over latents
    model.advance(out.actions)
    for b in range(6):
        model.core.check_invariants(b)
    np.testing.assert_array_equal(model.nodes[:, 0], game.step(roots, out.actions))


def test_rewards_and_discounts():
    """One player, discount 0.9: an action's Q is its reward plus 0.9 times the child's value;
    the search prefers the action with the best reward; the root mask is honoured."""
    A = 6
    rewards = np.array([0.1, 0.9, -0.5, 0.3, 0.95, 0.0], np.float32)
    root_legal = np.ones((2, A), bool)
    root_legal[1, 4] = False   # the best reward is illegal in row 1

    def recurrent_fn(latents, actions):
        depth = latents[:, 0]
        r = np.where(depth == 0, rewards[actions], 0.0).astype(np.float32)
        nxt = latents.copy()
        nxt[:, 0] += 1
        n = len(actions)
        return nxt, r, np.full(n, 0.9, np.float32), np.zeros((n, A), np.float32), \
            np.full(n, 0.2, np.float32)

    config = SearchConfig(algorithm="puct", num_simulations=200, value_bounds=None)
    model = ModelSearch(A, (1,), config, 2, discount=0.9)
    out = model.run(np.zeros((2, 1), np.float32), np.zeros((2, A), np.float32),
                    np.zeros(2, np.float32), recurrent_fn, root_legal=root_legal,
                    add_noise=False, temperature=0)
    assert out.actions.tolist() == [4, 1]
    assert out.visit_counts[1, 4] == 0
    core = model.core
    for b in range(2):
        core.check_invariants(b)
        for n in range(core.num_nodes()[b]):
            ch = core.children(b, n)
            for q, c in zip(ch["q"], ch["child"]):
                if c >= 0:
                    info = core.node(b, int(c))
                    assert info["discount"] == pytest.approx(0.9)
                    assert q == pytest.approx(info["reward"] + info["discount"] * info["value"], abs=1e-9)
    # root children: reward + 0.9 * (values 0.2 and their own discounted descendants) > reward
    visited = out.visit_counts[0] > 0
    assert (out.root_q[0][visited] > rewards[visited]).all()


@pytest.mark.parametrize("value_bounds", [None, (-0.2, 0.2)])
def test_tree_wide_min_max_equals_the_reference(value_bounds):
    """SearchConfig(tree_min_max=True): PUCT normalises Q by the running min/max over every edge
    of the tree (the MuZero pseudocode's MinMaxStats, with value_bounds as its KnownBounds, here
    narrower than the Qs so that the running bounds widen them), the same visits as
    tests/reference_mcts.py's computation, and not those of the per-node or fixed normalisation."""
    game = RandomTree(5, 7)
    roots = game.roots(np.arange(8) + 4000)
    roots = roots[~game.terminal(roots)]
    config = SearchConfig(algorithm="puct", num_simulations=60, value_bounds=value_bounds,
                          tree_min_max=True)
    out = BatchedSearch(game, config, len(roots)).run(roots, game.evaluate, add_noise=False,
                                                      temperature=0)
    per_node = BatchedSearch(game, SearchConfig(algorithm="puct", num_simulations=60,
                                                value_bounds=value_bounds), len(roots)).run(
        roots, game.evaluate, add_noise=False, temperature=0)
    for b in range(len(roots)):
        ref = ReferenceMCTS(game, game.evaluate, algorithm="puct", num_simulations=60,
                            value_bounds=value_bounds, tree_min_max=True).run(roots[b])
        np.testing.assert_array_equal(out.visit_counts[b], ref["visit_counts"], err_msg=f"row {b}")
        np.testing.assert_allclose(out.root_value[b], ref["root_value"], atol=1e-6)
    assert (out.visit_counts != per_node.visit_counts).any()


def test_tree_min_max_is_a_puct_option():
    with pytest.raises(ValueError, match="PUCT"):
        SearchConfig(algorithm="gumbel", tree_min_max=True)


def test_tree_wide_min_max_starts_from_the_kept_tree():
    """With tree reuse the next search's min/max starts from every edge Q of the kept subtree:
    visits equal to the reference continuing from the same kept node."""
    game = RandomTree(5, 9, terminal_rate=0.05)
    roots = game.roots(np.arange(10) + 123)
    roots = roots[~game.terminal(roots)][:6]
    B = len(roots)
    config = SearchConfig(algorithm="puct", num_simulations=40, value_bounds=None,
                          tree_min_max=True)
    search = BatchedSearch(game, config, B)
    first = search.run(roots, game.evaluate, add_noise=False, temperature=0)
    actions = first.actions
    search.advance(actions)
    states = game.step(roots, actions)
    keep = ~game.terminal(states)
    second = search.run(states, game.evaluate, add_noise=False, temperature=0, active=keep)
    reused = 0
    for b in np.flatnonzero(keep):
        ref = ReferenceMCTS(game, game.evaluate, algorithm="puct", num_simulations=40,
                            value_bounds=None, tree_min_max=True)
        np.testing.assert_array_equal(ref.run(roots[b])["visit_counts"], first.visit_counts[b])
        kept = ref.root.children[int(actions[b])]
        reused += kept.visits > 1
        out = ref.run(states[b], kept=kept)
        np.testing.assert_array_equal(second.visit_counts[b], out["visit_counts"], err_msg=f"row {b}")
    assert reused >= 3
