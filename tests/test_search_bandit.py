"""Bandits with known answers: one move, then the game is over, arm values known exactly."""
import numpy as np
import pytest

from azero import _mcts
from azero.search import BatchedSearch, SearchConfig
from fake_games import Bandit, CountingEvaluator, RandomTree, uniform_evaluator
from reference_mcts import considered_visits

VALUES = np.array([[-0.8, 0.1, 0.75, -0.3, 0.5, -0.6, 0.2, 0.0],
                   [0.3, -0.5, -0.1, 0.6, 0.9, -0.9, 0.0, 0.45]])


def misleading_evaluator(worst):
    """Priors pile on the worst arm of each problem; values say nothing."""
    def evaluate(states):
        logits = np.zeros((len(states), VALUES.shape[1]), np.float32)
        logits[np.arange(len(states)), worst[states[:, 0]]] = 3.0
        return logits, np.zeros(len(states), np.float32)
    return evaluate


@pytest.mark.parametrize("num_players", [1, 2])
@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_enough_simulations_find_the_best_arm(algorithm, num_players):
    game = Bandit(VALUES, num_players=num_players)
    evaluate = misleading_evaluator(VALUES.argmin(axis=1))
    # AlphaZero's PUCT counts unvisited arms as losses and trusts the misleading prior for long.
    sims = 1600 if algorithm == "puct" else 400
    search = BatchedSearch(game, SearchConfig(algorithm=algorithm, num_simulations=sims), 2)
    # Gumbel noise makes the action a sample (policy improvement), so only PUCT keeps its noise.
    out = search.run(game.roots([0, 1]), evaluate, add_noise=algorithm == "puct", temperature=0.0)
    best = VALUES.argmax(axis=1)
    np.testing.assert_array_equal(out.actions, best)
    # (Sequential halving may leave the last two arms with equal visits.)
    np.testing.assert_array_equal(out.visit_counts[[0, 1], best], out.visit_counts.max(axis=1))
    # Q of each visited arm is its value from the mover's point of view, exactly.
    visited = out.visit_counts > 0
    np.testing.assert_allclose(out.root_q[visited], VALUES.astype(np.float32)[visited], atol=1e-6)
    assert np.isnan(out.root_q[~visited]).all()
    # Root value: the root's own (zero) evaluation averaged with every backed-up arm value.
    expect = (out.visit_counts * np.nan_to_num(out.root_q)).sum(axis=1) / (1 + sims)
    np.testing.assert_allclose(out.root_value, expect, atol=1e-5)


def test_gumbel_with_one_simulation_per_arm_visits_each_once_and_picks_the_best():
    game = Bandit(VALUES)
    search = BatchedSearch(game, SearchConfig(num_simulations=8, max_num_considered_actions=16), 2)
    out = search.run(game.roots([0, 1]), uniform_evaluator(8), add_noise=False)
    np.testing.assert_array_equal(out.visit_counts, np.ones((2, 8)))
    np.testing.assert_array_equal(out.actions, VALUES.argmax(axis=1))
    # The improved policy ranks the arms by value.
    for b in range(2):
        np.testing.assert_array_equal(np.argsort(out.policy_target[b]), np.argsort(VALUES[b]))


def test_gumbel_final_action_is_argmax_of_gumbel_plus_logit_plus_sigma():
    game = Bandit(VALUES)
    noise = np.random.default_rng(0).gumbel(size=(2, 8)).astype(np.float32)
    search = BatchedSearch(game, SearchConfig(num_simulations=8), 2)
    out = search.run(game.roots([0, 1]), uniform_evaluator(8), root_noise=noise)
    q = out.root_q.astype(np.float64)
    lo, hi = q.min(axis=1, keepdims=True), q.max(axis=1, keepdims=True)
    sigma = (50.0 + 1) * 0.1 * (q - lo) / (hi - lo)
    np.testing.assert_array_equal(out.actions, np.argmax(noise + np.log(1 / 8) + sigma, axis=1))
    # policy target: softmax(logits + sigma)
    target = np.exp(sigma) / np.exp(sigma).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out.policy_target, target, atol=1e-6)


def test_gumbel_sequential_halving_schedule():
    """4 arms, 16 simulations: two rounds on all 4 arms (2 visits each), then the best 2 by value
    share the remaining 8 (mctx's schedule: [0,0,0,0,1,1,1,1,2,2,3,3,4,4,5,5])."""
    assert considered_visits(4, 16) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    game = Bandit(VALUES[:, :4])
    search = BatchedSearch(game, SearchConfig(num_simulations=16), 2)
    out = search.run(game.roots([0, 1]), uniform_evaluator(4), add_noise=False)
    for b in range(2):
        order = np.argsort(-VALUES[b, :4])
        np.testing.assert_array_equal(out.visit_counts[b, order], [6, 6, 2, 2])


def test_gumbel_with_fewer_simulations_than_arms_visits_the_top_arms_once():
    game = Bandit(VALUES)
    logits = np.linspace(-1, 1, 8).astype(np.float32)[::-1].copy()

    def evaluate(states):
        return np.tile(logits, (len(states), 1)), np.zeros(len(states), np.float32)

    noise = np.random.default_rng(3).gumbel(size=(2, 8)).astype(np.float32)
    search = BatchedSearch(game, SearchConfig(num_simulations=3), 2)
    out = search.run(game.roots([0, 1]), evaluate, root_noise=noise)
    for b in range(2):
        top3 = np.argsort(-(noise[b] + logits), kind="stable")[:3]
        expect = np.zeros(8, np.int32)
        expect[top3] = 1
        np.testing.assert_array_equal(out.visit_counts[b], expect)
    assert set(out.actions[0:1]) <= set(np.flatnonzero(out.visit_counts[0]))


@pytest.mark.parametrize("m,n", [(1, 5), (2, 7), (3, 10), (4, 16), (16, 32), (16, 200), (5, 3)])
def test_considered_visit_schedule_matches_the_reference(m, n):
    assert _mcts.Search.considered_visits(m, n) == considered_visits(m, n)


def test_puct_temperature_samples_in_proportion_to_visits():
    rows = 2000
    game = Bandit(VALUES[:1].repeat(rows, 0))
    search = BatchedSearch(game, SearchConfig(algorithm="puct", num_simulations=30), rows, seed=1)
    out = search.run(game.roots(np.arange(rows)), uniform_evaluator(8), add_noise=False)
    visits = out.visit_counts[0]
    assert (out.visit_counts == visits).all()
    freq = np.bincount(out.actions, minlength=8) / rows
    np.testing.assert_allclose(freq, visits / visits.sum(), atol=0.035)
    assert (visits[out.actions] > 0).all()
    cold = search.run(game.roots(np.arange(rows)), uniform_evaluator(8), add_noise=False,
                      temperature=0.0)
    assert (cold.actions == np.argmax(visits)).all()


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_virtual_loss_several_leaves_per_step(algorithm):
    game = RandomTree(6, 8, terminal_rate=0.05)
    roots = game.roots(np.arange(4) + 7)
    roots = roots[~game.terminal(roots)]
    config = SearchConfig(algorithm=algorithm, num_simulations=64, leaves_per_step=4)
    evaluator = CountingEvaluator(game.evaluate)
    search = BatchedSearch(game, config, len(roots))
    out = search.run(roots, evaluator, add_noise=True)
    assert (out.visit_counts.sum(axis=1) == 64).all()
    for b in range(len(roots)):
        search.core.check_invariants(b)
    steps = len(evaluator.calls) - 1
    assert steps < 64 / 2, evaluator.calls  # several leaves per tree per step
    assert max(evaluator.calls[1:]) <= 4 * len(roots)
    # and the bandit answer survives virtual loss
    bandit = Bandit(VALUES)
    config = SearchConfig(algorithm=algorithm, num_simulations=200, leaves_per_step=4)
    out = BatchedSearch(bandit, config, 2).run(bandit.roots([0, 1]), uniform_evaluator(8),
                                               add_noise=False, temperature=0.0)
    np.testing.assert_array_equal(out.actions, VALUES.argmax(axis=1))


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_zero_simulations_act_on_the_priors(algorithm):
    game = Bandit(VALUES)
    logits = np.array([0, 0, 5, 0, 0, 0, 0, 0], np.float32)

    def evaluate(states):
        return np.tile(logits, (len(states), 1)), np.zeros(len(states), np.float32)

    out = BatchedSearch(game, SearchConfig(algorithm=algorithm, num_simulations=0), 2).run(
        game.roots([0, 1]), evaluate, add_noise=False, temperature=0.0)
    assert (out.visit_counts == 0).all()
    np.testing.assert_array_equal(out.actions, [2, 2])
    prior = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(out.policy_target, np.tile(prior, (2, 1)), rtol=1e-5)
