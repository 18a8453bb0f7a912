"""Subtree reuse: after advance the root keeps the played child's subtree (visits, Q, priors, node
states), dropped nodes are freed (compaction), reuse off equals a fresh search, noise never
compounds, stale trees are rebuilt; over a learned model (ModelSearch) a kept root takes the real
observation's evaluation and legal actions."""
import numpy as np
import pytest

from azero.search import BatchedSearch, ModelSearch, SearchConfig
from fake_games import RandomTree


def live(game, seeds):
    roots = game.roots(seeds)
    return roots[~game.terminal(roots)]


def subtree(core, row, node):
    """{action path: (visits, value)} of the subtree under `node`."""
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


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_advance_keeps_the_child_subtree(algorithm):
    game = RandomTree(5, 9, terminal_rate=0.05)
    roots = live(game, np.arange(6) + 11)
    B = len(roots)
    search = BatchedSearch(game, SearchConfig(algorithm=algorithm, num_simulations=80), B)
    out = search.run(roots, game.evaluate)
    core = search.core
    actions = out.visit_counts.argmax(axis=1)
    before = []
    for b in range(B):
        child = core.children(b, 0)["child"][list(core.children(b, 0)["actions"]).index(actions[b])]
        before.append(subtree(core, b, int(child)))
    search.advance(actions)
    next_states = game.step(roots, actions)
    for b in range(B):
        core.check_invariants(b)
        assert subtree(core, b, 0) == before[b]
        assert core.num_nodes()[b] == len(before[b])  # everything else was freed
        np.testing.assert_array_equal(search.nodes[b, 0], next_states[b])
        # every kept node's stored state is the one its path leads to
        for n in range(1, core.num_nodes()[b]):
            info = core.node(b, n)
            parent_state = search.nodes[b, info["parent"]][None]
            np.testing.assert_array_equal(search.nodes[b, n],
                                          game.step(parent_state, np.array([info["action"]]))[0])
    # The next search starts from those visits.
    keep = ~game.terminal(next_states)
    out2 = search.run(next_states, game.evaluate, active=keep)
    for b in np.flatnonzero(keep):
        assert out2.visit_counts[b].sum() == before[b][()][0] - 1 + 80


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_reuse_off_equals_a_fresh_search(algorithm):
    game = RandomTree(6, 8, terminal_rate=0.05)
    roots = live(game, np.arange(5) + 40)
    B = len(roots)
    config = SearchConfig(algorithm=algorithm, num_simulations=40, reuse_tree=False)
    search = BatchedSearch(game, config, B)
    out = search.run(roots, game.evaluate, add_noise=False)
    actions = out.visit_counts.argmax(axis=1)
    search.advance(actions)
    assert (search.core.num_nodes() == 0).all()
    nxt = game.step(roots, actions)
    keep = ~game.terminal(nxt)
    reused = search.run(nxt, game.evaluate, add_noise=False, active=keep, temperature=0)
    fresh = BatchedSearch(game, config, B).run(nxt, game.evaluate, add_noise=False, active=keep,
                                               temperature=0)
    np.testing.assert_array_equal(reused.visit_counts, fresh.visit_counts)
    np.testing.assert_array_equal(reused.actions, fresh.actions)


def test_inactive_rows_are_untouched_and_unvisited_children_drop_the_tree():
    game = RandomTree(6, 8, terminal_rate=0.0)
    roots = live(game, np.arange(4) + 3)
    search = BatchedSearch(game, SearchConfig(algorithm="puct", num_simulations=30), 4)
    out = search.run(roots, game.evaluate, add_noise=False)
    counts = search.core.num_nodes().copy()
    unvisited = np.array([np.flatnonzero(game.legal_mask(roots[b:b + 1])[0] & (out.visit_counts[b] == 0))
                          for b in range(4)], dtype=object)
    actions = out.visit_counts.argmax(axis=1)
    if len(unvisited[1]):
        actions[1] = unvisited[1][0]
    active = np.array([True, True, False, True])
    search.advance(actions, active)
    assert search.core.num_nodes()[2] == counts[2]
    if len(unvisited[1]):
        assert search.core.num_nodes()[1] == 0
    # the next run evaluates a new root where needed and works on every active row
    nxt = roots.copy()
    nxt[active] = game.step(roots[active], actions[active])
    out = search.run(nxt, game.evaluate, active=np.array([True, True, False, True]))
    assert out.actions[2] == -1 and out.visit_counts[2].sum() == 0
    assert (out.visit_counts[[0, 1, 3]].sum(axis=1) >= 30).all()


def test_a_whole_game_with_reuse_stays_bounded_and_consistent():
    game = RandomTree(4, 40, terminal_rate=0.0)
    states = live(game, np.arange(3))
    search = BatchedSearch(game, SearchConfig(num_simulations=24), 3)
    for move in range(30):
        out = search.run(states, game.evaluate)
        for b in range(3):
            search.core.check_invariants(b)
        assert (search.core.num_nodes() <= 1 + 24 * (move + 1)).all()
        search.advance(out.actions)
        states = game.step(states, out.actions)
    # Nodes are recycled: capacity is far below what 30 searches without freeing would need.
    assert search.core.node_capacity < 30 * 24


def test_dirichlet_noise_does_not_compound_over_runs_on_one_root():
    game = RandomTree(6, 6)
    roots = live(game, np.arange(3) + 8)
    B = len(roots)
    search = BatchedSearch(game, SearchConfig(algorithm="puct", num_simulations=10), B)
    clean = [search.run(roots, game.evaluate, add_noise=False) and search.core.children(b, 0)["priors"].copy()
             for b in range(B)]
    search.reset()
    for _ in range(3):
        search.run(roots, game.evaluate, add_noise=True)
        noisy = [search.core.children(b, 0)["priors"] for b in range(B)]
        assert any(not np.allclose(n, c) for n, c in zip(noisy, clean))
    search.run(roots, game.evaluate, add_noise=False)
    for b in range(B):
        np.testing.assert_array_equal(search.core.children(b, 0)["priors"], clean[b])


def test_a_root_that_is_not_the_stored_one_is_rebuilt():
    game = RandomTree(5, 6)
    roots = live(game, np.arange(4) + 21)
    B = len(roots)
    search = BatchedSearch(game, SearchConfig(num_simulations=20), B)
    search.run(roots, game.evaluate, add_noise=False)
    other = live(game, np.arange(40) + 500)[:B]
    out = search.run(other, game.evaluate, add_noise=False)  # no advance / reset in between
    fresh = BatchedSearch(game, SearchConfig(num_simulations=20), B).run(other, game.evaluate,
                                                                         add_noise=False)
    np.testing.assert_array_equal(out.visit_counts, fresh.visit_counts)


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
