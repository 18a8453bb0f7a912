"""The C++ search equals the pure-Python reference (tests/reference_mcts.py) on the same inputs:
same visit counts, improved policy, root value and Q, same Gumbel action; PUCT and Gumbel, fixed and
min-max value normalisation, with and without (the same) root noise, several rows per batch, and
games where a player sometimes moves twice in a row (backup signs from to_play)."""
import numpy as np
import pytest

from azero.search import BatchedSearch, SearchConfig
from fake_games import Bandit, RandomTree, TurnTree
from reference_mcts import ReferenceMCTS


def compare(game, roots, evaluator, config: SearchConfig, noise=None):
    search = BatchedSearch(game, config, len(roots), seed=0)
    out = search.run(roots, evaluator, temperature=0.0, root_noise=noise, add_noise=False)
    for b in range(len(roots)):
        search.core.check_invariants(b)
        ref = ReferenceMCTS(game, evaluator, algorithm=config.algorithm,
                            num_simulations=config.num_simulations, value_bounds=config.value_bounds,
                            max_num_considered_actions=config.max_num_considered_actions,
                            pb_c_base=config.pb_c_base, pb_c_init=config.pb_c_init)
        kw = {}
        if noise is not None:
            kw = {"gumbel": noise[b]} if config.algorithm == "gumbel" else {
                "dirichlet": noise[b], "dirichlet_fraction": config.dirichlet_fraction}
        r = ref.run(roots[b], **kw)
        np.testing.assert_array_equal(out.visit_counts[b], r["visit_counts"], err_msg=f"row {b}")
        np.testing.assert_allclose(out.policy_target[b], r["policy"], atol=1e-6, err_msg=f"row {b}")
        np.testing.assert_allclose(out.root_value[b], r["root_value"], atol=1e-6)
        np.testing.assert_allclose(out.root_q[b], r["root_q"], atol=1e-6)
        if config.algorithm == "gumbel":
            assert out.actions[b] == r["action"], f"row {b}"
    return search, out


def live_roots(game, seeds):
    roots = game.roots(seeds)
    return roots[~game.terminal(roots)]


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
@pytest.mark.parametrize("value_bounds", [(-1.0, 1.0), None])
@pytest.mark.parametrize("num_actions,depth,sims", [(5, 6, 30), (3, 9, 12), (9, 4, 7)])
def test_equals_reference_without_noise(algorithm, value_bounds, num_actions, depth, sims):
    game = RandomTree(num_actions, depth)
    roots = live_roots(game, np.arange(6) + 1000 * num_actions)
    config = SearchConfig(algorithm=algorithm, num_simulations=sims, value_bounds=value_bounds,
                          max_num_considered_actions=4)
    _, out = compare(game, roots, game.evaluate, config)
    assert (out.visit_counts.sum(axis=1) == sims).all()


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_equals_reference_with_the_same_noise(algorithm):
    game = RandomTree(6, 6)
    roots = live_roots(game, np.arange(6) + 77)
    rng = np.random.default_rng(5)
    shape = (len(roots), 6)
    noise = rng.gumbel(size=shape) if algorithm == "gumbel" else rng.gamma(0.3, size=shape)
    config = SearchConfig(algorithm=algorithm, num_simulations=25, max_num_considered_actions=16)
    compare(game, roots, game.evaluate, config, noise=noise.astype(np.float32))


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_equals_reference_on_bandits_with_masks(algorithm):
    rng = np.random.default_rng(1)
    values = rng.uniform(-1, 1, size=(5, 8))
    legal = rng.random((5, 8)) < 0.6
    legal[:, 3] = True
    game = Bandit(values, legal)

    def evaluate(states):
        n = len(states)
        return (np.sin(np.arange(8.0))[None].repeat(n, 0)).astype(np.float32), np.zeros(n, np.float32)

    config = SearchConfig(algorithm=algorithm, num_simulations=20, max_num_considered_actions=4)
    compare(game, game.roots(np.arange(5)), evaluate, config)


def test_one_player_games_use_discount_plus_one():
    game = RandomTree(4, 5, num_players=1)
    roots = live_roots(game, np.arange(4) + 3)
    for algorithm in ("puct", "gumbel"):
        compare(game, roots, game.evaluate, SearchConfig(algorithm=algorithm, num_simulations=20,
                                                         value_bounds=None))


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
@pytest.mark.parametrize("value_bounds", [(-1.0, 1.0), None])
def test_backup_signs_follow_the_side_to_move(algorithm, value_bounds):
    """A player sometimes moves twice: every edge's stored discount is +1 where to_play is the
    same at parent and child and -1 where the turn passes (both occur), and the search equals the
    reference, which takes its signs from to_play too (strict alternation fails this)."""
    game = TurnTree(5, 7, repeat_rate=0.4)
    roots = live_roots(game, np.arange(8) + 31)
    config = SearchConfig(algorithm=algorithm, num_simulations=40, value_bounds=value_bounds,
                          max_num_considered_actions=4)
    search, _ = compare(game, roots, game.evaluate, config)
    signs = []
    for b in range(len(roots)):
        for n in range(1, int(search.core.num_nodes()[b])):
            info = search.core.node(b, n)
            players = game.to_play(search.nodes[b, [info["parent"], n]])
            assert info["discount"] == (1.0 if players[0] == players[1] else -1.0), (b, n)
            signs.append(info["discount"])
    assert signs.count(1.0) > 20 and signs.count(-1.0) > 20


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_a_player_who_always_moves_again_is_searched_as_one_player(algorithm):
    """Two players, but player 0 always keeps the turn: the same search, visit for visit and
    value for value, as the one-player game with the same tree (no reference involved)."""
    two = TurnTree(4, 6, terminal_rate=0.1, repeat_rate=1.0)
    one = RandomTree(4, 6, terminal_rate=0.1, num_players=1)
    roots = live_roots(one, np.arange(6) + 5)
    config = SearchConfig(algorithm=algorithm, num_simulations=30)
    outs = [BatchedSearch(game, config, len(roots)).run(game_roots, game.evaluate, add_noise=False,
                                                         temperature=0.0)
            for game, game_roots in ((one, roots), (two, two.roots(roots[:, 2])))]
    np.testing.assert_array_equal(outs[0].visit_counts, outs[1].visit_counts)
    np.testing.assert_array_equal(outs[0].actions, outs[1].actions)
    np.testing.assert_allclose(outs[0].root_value, outs[1].root_value, atol=1e-6)
    np.testing.assert_allclose(outs[0].root_q, outs[1].root_q, atol=1e-6)


def test_priors_are_the_reference_softmax_bit_for_bit():
    from azero import _mcts
    from reference_mcts import softmax_priors
    rng = np.random.default_rng(11)
    K, A = 40, 37
    logits = (rng.normal(size=(K, A)) * rng.choice([0.1, 3, 30, 100], size=(K, 1))).astype(np.float32)
    logits[0, :] = 0.0
    logits[1, 5] = -np.inf
    legal = rng.random((K, A)) < 0.6
    legal[:, 5] = True
    core = _mcts.Search(K, A)
    core.expand_roots(np.arange(K, dtype=np.int32), np.zeros(K, np.float32), logits, legal)
    for k in range(K):
        ch = core.children(k, 0)
        ref = softmax_priors(logits[k], legal[k])
        np.testing.assert_array_equal(ch["actions"], sorted(ref))
        np.testing.assert_array_equal(ch["priors"], np.array([ref[a] for a in sorted(ref)], np.float32))
        assert abs(float(ch["priors"].astype(np.float64).sum()) - 1.0) < 1e-5
        # and close to the exact softmax
        x = logits[k].astype(np.float64)
        x[~legal[k]] = -np.inf
        exact = np.exp(x - x.max())
        exact /= exact.sum()
        np.testing.assert_allclose(ch["priors"], exact[legal[k]], rtol=1e-5, atol=1e-30)
