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


def subtree(core, row, node):
    """{action path: (visits, value, state)} of the subtree under `node`."""
    out, stack = {}, [((), node)]
    while stack:
        path, n = stack.pop()
        info = core.node(row, n)
        out[path] = (info["visits"], round(info["value"], 9), info["state"])
        if info["num_edges"]:
            ch = core.children(row, n)
            for a, c in zip(ch["actions"], ch["child"]):
                if c >= 0:
                    stack.append((path + (int(a),), int(c)))
    return out


def masked_softmax(logits, legal):
    z = np.where(legal, logits - logits[legal].max(), -np.inf)
    p = np.exp(z)
    return p / p.sum()


def model_of(game):
    def recurrent_fn(latents, actions):
        nxt = game.step(latents, actions)
        logits, values = game.evaluate(nxt)
        return nxt, np.zeros(len(actions), np.float32), None, logits, values
    return recurrent_fn


def illegal_at_new_root(core, B, A, rng):
    """A root mask per row that makes one to three of the kept root's visited actions illegal
    (a different set per row, all of them in a row with fewer), the others legal."""
    legal = np.ones((B, A), bool)
    for b in range(B):
        ch = core.children(b, 0)
        visited = ch["actions"][ch["child"] >= 0]
        k = min(1 + b % 3, len(visited))
        legal[b, rng.choice(visited, size=k, replace=False)] = False
    assert legal.any(axis=1).all()
    return legal


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_a_kept_tree_takes_the_new_root_and_never_searches_illegal_actions(algorithm):
    """After advance, run() re-sets each kept root from its arguments (the real observation, as in
    MuZero): value and priors are the new ones, root actions illegal there get no visit, no
    policy mass and are never played, and the kept subtrees under legal actions are reused."""
    A, B, sims = 6, 5, 100
    game = RandomTree(A, 1000, terminal_rate=0.0, legal_rate=1.0)
    roots = game.roots(np.arange(B) + 300)
    rng = np.random.default_rng(5)
    model = ModelSearch(A, (3,), SearchConfig(algorithm=algorithm, num_simulations=sims), B,
                        latent_dtype=np.int64)
    logits, values = game.evaluate(roots)
    first = model.run(roots, logits, values, model_of(game), add_noise=False, temperature=0)
    model.advance(first.actions)
    states = game.step(roots, first.actions)
    legal = illegal_at_new_root(model.core, B, A, rng)
    kept_visits = np.zeros(B, int)
    for b in range(B):
        ch = model.core.children(b, 0)
        kept_visits[b] = ch["visits"][legal[b, ch["actions"]]].sum()
    # the real observation's evaluation differs from the model's prediction stored at the node
    new_logits = rng.normal(size=(B, A)).astype(np.float32)
    new_values = rng.uniform(-0.5, 0.5, size=B).astype(np.float32)
    out = model.run(states, new_logits, new_values, model_of(game), root_legal=legal,
                    add_noise=False, temperature=0)
    assert (out.visit_counts[~legal] == 0).all()
    assert (out.policy_target[~legal] == 0).all()
    assert legal[np.arange(B), out.actions].all()
    assert (kept_visits > 0).sum() >= 2   # reuse is exercised, not only dropping
    np.testing.assert_array_equal(out.visit_counts.sum(axis=1), kept_visits + sims)
    for b in range(B):
        core = model.core
        core.check_invariants(b)
        assert core.node(b, 0)["raw_value"] == pytest.approx(new_values[b])
        ch = core.children(b, 0)
        np.testing.assert_array_equal(ch["actions"], np.flatnonzero(legal[b]))
        # priors from the new logits (noise-free run), not the model's
        np.testing.assert_allclose(ch["priors"], masked_softmax(new_logits[b], legal[b])[legal[b]],
                                   rtol=1e-5)
        # the latents followed their nodes through the compaction
        for n in range(1, core.num_nodes()[b]):
            info = core.node(b, n)
            np.testing.assert_array_equal(
                model.nodes[b, n], game.step(model.nodes[b, info["parent"]][None],
                                             np.array([info["action"]]))[0])


def test_refresh_roots_keeps_legal_subtrees_and_drops_the_rest():
    """The core's refresh: the kept subtrees under still-legal root actions are unchanged, the
    others are freed, the root's visits and value are recomputed from what is kept; a legal set
    larger than the root's old block (its edge block grows) keeps the tree consistent too."""
    A, B = 7, 4
    game = RandomTree(A, 1000, terminal_rate=0.0, legal_rate=1.0)
    roots = game.roots(np.arange(B) + 70)
    model = ModelSearch(A, (3,), SearchConfig(algorithm="puct", num_simulations=80), B,
                        latent_dtype=np.int64)
    logits, values = game.evaluate(roots)
    first_legal = np.ones((B, A), bool)
    first_legal[:, :2] = False                      # the first search sees 5 legal actions
    model.run(roots, logits, values, model_of(game), root_legal=first_legal, add_noise=False,
              temperature=0)
    core = model.core
    rng = np.random.default_rng(11)
    legal = illegal_at_new_root(core, B, A, rng)   # 1..3 visited actions illegal, 0 and 1 legal
    before = []
    for b in range(B):
        ch = core.children(b, 0)
        before.append({int(a): subtree(core, b, int(c)) for a, c in zip(ch["actions"], ch["child"])
                       if c >= 0})
    new_values = np.linspace(-0.4, 0.4, B).astype(np.float32)
    rows, new, old = core.refresh_roots(np.arange(B, dtype=np.int32), new_values, logits, legal)
    for b in range(B):
        core.check_invariants(b)
        ch = core.children(b, 0)
        np.testing.assert_array_equal(ch["actions"], np.flatnonzero(legal[b]))  # grew by 0 and 1
        kept = {a: t for a, t in before[b].items() if legal[b, a]}
        assert {int(a) for a, c in zip(ch["actions"], ch["child"]) if c >= 0} == set(kept)
        for a, c in zip(ch["actions"], ch["child"]):
            if c >= 0:
                assert subtree(core, b, int(c)) == kept[int(a)]
        assert core.num_nodes()[b] == 1 + sum(len(t) for t in kept.values())  # the rest freed
        root = core.node(b, 0)
        kept_visits = sum(t[()][0] for t in kept.values())
        assert root["visits"] == 1 + kept_visits
        q_sum = sum(-t[()][0] * t[()][1] for t in kept.values())  # discount -1
        assert root["value"] == pytest.approx((new_values[b] + q_sum) / (1 + kept_visits))
        mine = rows == b
        assert sorted(new[mine]) == list(range(core.num_nodes()[b]))
    assert sum(len(t) for b in range(B) for a, t in before[b].items() if legal[b, a]) > B
    # a search on the refreshed trees runs and keeps the invariants
    model.run(roots, logits, new_values, model_of(game), root_legal=legal, add_noise=False)
    for b in range(B):
        core.check_invariants(b)


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
