"""A different legal mask per batch row: no visit, policy mass or edge ever on an illegal action,
each row's answer its own; masks and legal-action lists give the same trees; rows are independent
(batched equals one by one)."""
import numpy as np
import pytest

from azero import _mcts
from azero.search import BatchedSearch, SearchConfig
from fake_games import Bandit, RandomTree, uniform_evaluator


def test_per_row_masks_bandit():
    rng = np.random.default_rng(0)
    P, A = 12, 10
    values = rng.uniform(-0.9, 0.3, size=(P, A))
    legal = np.zeros((P, A), bool)
    for p in range(P):
        arms = rng.choice(A, size=rng.integers(1, A), replace=False)
        legal[p, arms] = True
        values[p, arms[0]] = 0.8
    values[~legal] = 1.0  # illegal arms would be the best ones
    game = Bandit(values, legal)
    for algorithm in ("puct", "gumbel"):
        search = BatchedSearch(game, SearchConfig(algorithm=algorithm, num_simulations=300), P)
        out = search.run(game.roots(np.arange(P)), uniform_evaluator(A), add_noise=algorithm == "puct",
                         temperature=0.0)
        assert (out.visit_counts[~legal] == 0).all()
        assert (out.policy_target[~legal] == 0).all()
        assert np.isnan(out.root_q[~legal]).all()
        np.testing.assert_array_equal(out.actions, np.where(legal, values, -9).argmax(axis=1))
        np.testing.assert_allclose(out.policy_target.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_every_edge_of_every_node_is_legal_there(algorithm):
    game = RandomTree(7, 7)
    roots = game.roots(np.arange(8) + 50)
    roots = roots[~game.terminal(roots)]
    search = BatchedSearch(game, SearchConfig(algorithm=algorithm, num_simulations=60), len(roots))
    out = search.run(roots, game.evaluate)
    core = search.core
    for b in range(len(roots)):
        core.check_invariants(b)
        for n in range(core.num_nodes()[b]):
            state = search.nodes[b, n][None]
            info = core.node(b, n)
            if info["state"] == "terminal":
                assert game.terminal(state)[0]
                continue
            children = core.children(b, n)
            np.testing.assert_array_equal(children["actions"], np.flatnonzero(game.legal_mask(state)[0]))
            for a, c in zip(children["actions"], children["child"]):
                if c >= 0:  # the child's stored state is the parent's state after that action
                    np.testing.assert_array_equal(search.nodes[b, c], game.step(state, np.array([a]))[0])
        assert (out.visit_counts[b][~game.legal_mask(roots[b:b + 1])[0]] == 0).all()


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_batched_equals_one_by_one(algorithm):
    game = RandomTree(5, 6)
    roots = game.roots(np.arange(10) + 300)
    roots = roots[~game.terminal(roots)]
    config = SearchConfig(algorithm=algorithm, num_simulations=40)
    together = BatchedSearch(game, config, len(roots)).run(roots, game.evaluate, add_noise=False)
    for b in range(len(roots)):
        alone = BatchedSearch(game, config, 1).run(roots[b:b + 1], game.evaluate, add_noise=False)
        np.testing.assert_array_equal(alone.visit_counts[0], together.visit_counts[b])
        np.testing.assert_array_equal(alone.policy_target[0], together.policy_target[b])


def _drive(core, game, roots, legal_as_lists: bool, sims: int):
    """Runs the core by hand, legal actions given as masks or as (shuffled) lists."""
    rng = np.random.default_rng(0)
    nodes = {}

    def legal_kwargs(states):
        mask = game.legal_mask(states)
        if not legal_as_lists:
            return {"legal": mask}
        lists = [rng.permutation(np.flatnonzero(m)).astype(np.int32) for m in mask]
        offsets = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int32)
        actions = np.concatenate(lists) if lists else np.zeros(0, np.int32)
        return {"legal_actions": actions.astype(np.int32), "legal_offsets": offsets}

    logits, values = game.evaluate(roots)
    core.expand_roots(np.arange(len(roots), dtype=np.int32), values, logits, **legal_kwargs(roots))
    for b in range(len(roots)):
        nodes[b, 0] = roots[b]
    core.start(sims)
    while True:
        rows, parents, actions, new = core.select()
        if len(rows) == 0:
            break
        parent_states = np.stack([nodes[r, p] for r, p in zip(rows, parents)])
        children = game.step(parent_states, actions)
        for r, n, c in zip(rows, new, children):
            nodes[r, n] = c
        terminal = game.terminal(children)
        live = children[~terminal]
        values = np.where(terminal, game.result(children), 0).astype(np.float32)
        lg, lv = game.evaluate(live)
        values[~terminal] = lv
        core.expand_backup(values, lg, terminal=terminal, **legal_kwargs(live))
    return core.outputs()


def test_legal_lists_equal_legal_masks():
    game = RandomTree(6, 6)
    roots = game.roots(np.arange(6) + 9)
    roots = roots[~game.terminal(roots)]
    for algorithm in ("puct", "gumbel"):
        a = _drive(_mcts.Search(len(roots), 6, algorithm=algorithm), game, roots, False, 30)
        b = _drive(_mcts.Search(len(roots), 6, algorithm=algorithm), game, roots, True, 30)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
