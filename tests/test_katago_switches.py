"""KataGo's sample-efficiency switches (Wu 2019, "Accelerating Self-Play Learning in Go"):
(a) playout cap randomisation (selfplay.playout_cap_fraction / playout_cap_cheap_simulations),
(b) forced playouts with policy target pruning (search.forced_playouts_k),
(c) the opponent-reply auxiliary policy target (model.opponent_policy_head,
    train.opponent_policy_loss_weight). Each is off by default."""
import math

import numpy as np
import pytest
import torch

from azero import _mcts
from azero.config import ConfigError, SelfPlayConfig, load_config
from azero.games import make
from azero.nets import architecture_for, build_net, make_net
from azero.replay import OpponentBatch, ReplayBuffer, ShardWriter, replay_dir, successor_rows
from azero.search import BatchedSearch, SearchConfig, make_core
from azero.selfplay import SelfPlay
from azero.train import Trainer, policy_cross_entropy


def hashed_evaluator(num_actions: int):
    """Deterministic, state-dependent logits and values (no ties to hide a wrong budget)."""
    def evaluate(states):
        x = np.asarray(states, np.float64).reshape(len(states), -1)
        base = x @ (np.arange(1, x.shape[1] + 1) * 0.7311) + 0.1
        logits = 2.0 * np.sin(base[:, None] * (np.arange(num_actions) + 1) * 0.37)
        values = 0.9 * np.sin(base * 1.3)
        return logits.astype(np.float32), values.astype(np.float32)
    return evaluate


def random_games(game, n_games, rng):
    """n_games uniformly random games: (states [T, S] of every position, None, value [T])."""
    out = []
    for _ in range(n_games):
        state, states = game.initial_states(1), []
        while not game.terminal(state)[0]:
            states.append(state[0])
            state = game.step(state, np.array([rng.choice(np.flatnonzero(game.legal_mask(state)[0]))]))
        out.append((np.stack(states), None, np.zeros(len(states), np.float32)))
    return out


def _passing_after(game, plies):
    hashed = hashed_evaluator(game.spec.num_actions)

    def ev(states):             # pass after `plies` plies: games that end by the rules, scored
        logits, values = hashed(states)
        logits[game.move_number(states) >= plies, game.spec.num_actions - 1] += 20.0
        return logits, values
    return ev


def _mid_game_states(game, n, seed=0):
    """n distinct non-terminal Connect Four positions, a few random plies in."""
    rng = np.random.default_rng(seed)
    states = game.initial_states(n)
    for _ in range(4):
        legal = game.legal_mask(states)
        actions = np.array([rng.choice(np.flatnonzero(row)) for row in legal])
        states = game.step(states, actions)
    assert not game.terminal(states).any()
    return states


# ------------------------------------------------------------------------------------------
# (a) playout cap randomisation: per-row budgets and noise in one batched search


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_per_row_budgets_equal_separate_searches_of_each_budget(algorithm):
    """Rows of one search with budgets [12, 3, 12, 3, 0 ...] give exactly what a search of each
    budget alone gives (same roots, same given noise): visits, policy target, value, action."""
    game = make("connect4")
    A, B = game.spec.num_actions, 6
    states = _mid_game_states(game, B)
    ev = hashed_evaluator(A)
    budgets = np.array([12, 3, 12, 3, 1, 7], np.int32)
    rng = np.random.default_rng(1)
    noise = (rng.gumbel(size=(B, A)) if algorithm == "gumbel"
             else rng.gamma(0.3, size=(B, A))).astype(np.float32)
    cfg = dict(algorithm=algorithm, reuse_tree=False, max_num_considered_actions=4)
    mixed = BatchedSearch(game, SearchConfig(num_simulations=12, **cfg), B, seed=0).run(
        states, ev, root_noise=noise, simulations=budgets, temperature=0.0)
    for n in np.unique(budgets):
        alone = BatchedSearch(game, SearchConfig(num_simulations=int(n), **cfg), B, seed=0).run(
            states, ev, root_noise=noise, temperature=0.0)
        rows = budgets == n
        np.testing.assert_array_equal(mixed.visit_counts[rows], alone.visit_counts[rows])
        np.testing.assert_array_equal(mixed.policy_target[rows], alone.policy_target[rows])
        np.testing.assert_array_equal(mixed.root_value[rows], alone.root_value[rows])
        np.testing.assert_array_equal(mixed.actions[rows], alone.actions[rows])
    # without tree reuse every simulation is one root-child visit
    np.testing.assert_array_equal(mixed.visit_counts.sum(1), budgets)


def test_per_row_budgets_cost_no_extra_network_calls():
    game = make("connect4")
    calls = []
    inner = hashed_evaluator(game.spec.num_actions)

    def counting(states):
        calls.append(len(states))
        return inner(states)

    B = 4
    search = BatchedSearch(game, SearchConfig(num_simulations=10, reuse_tree=False), B)
    search.run(_mid_game_states(game, B), counting, simulations=np.array([10, 2, 2, 10]))
    # one call for the roots, then one per step: 10 steps, the last 8 on the two full rows only
    assert calls == [4] + [4, 4] + [2] * 8


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_noise_in_some_rows_only(algorithm):
    """add_noise [B]: rows with True search as with noise, rows with False as without."""
    game = make("connect4")
    B = 6
    states = _mid_game_states(game, B, seed=2)
    ev = hashed_evaluator(game.spec.num_actions)
    cfg = SearchConfig(algorithm=algorithm, num_simulations=8, reuse_tree=False,
                       dirichlet_alpha=0.3)
    mask = np.array([True, False, False, True, False, True])
    outs = {key: BatchedSearch(game, cfg, B, seed=5).run(
        states, ev, add_noise=mask if key == "mask" else key, temperature=0.0)
        for key in ("mask", True, False)}
    for rows, ref in ((mask, outs[True]), (~mask, outs[False])):
        np.testing.assert_array_equal(outs["mask"].policy_target[rows], ref.policy_target[rows])
        np.testing.assert_array_equal(outs["mask"].visit_counts[rows], ref.visit_counts[rows])
    assert not np.array_equal(outs[True].policy_target, outs[False].policy_target)


class _SpySearch:
    """BatchedSearch that records every run: its states, budgets, noise rows and outputs."""

    def __init__(self, search):
        self.search = search
        self.calls = []

    def run(self, states, evaluator, **kw):
        out = self.search.run(states, evaluator, **kw)
        self.calls.append(dict(states=states.copy(), simulations=kw.get("simulations"),
                               add_noise=np.broadcast_to(kw.get("add_noise"), len(states)).copy(),
                               out=out))
        return out

    def advance(self, actions, active=None):
        self.search.advance(actions, active)

    def reset(self, rows=None):
        self.search.reset(rows)


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_playout_cap_stores_exactly_the_full_search_positions(algorithm):
    game = make("connect4")
    B, full_sims, cheap_sims, p = 4, 8, 2, 0.25
    search_cfg = SearchConfig(algorithm=algorithm, num_simulations=full_sims, reuse_tree=False,
                              max_num_considered_actions=4)
    settings = SelfPlayConfig(games_per_worker=B, temperature_moves=6, playout_cap_fraction=p,
                              playout_cap_cheap_simulations=cheap_sims)
    spies = []

    def make_search(batch_size, seed):
        spies.append(_SpySearch(BatchedSearch(game, search_cfg, batch_size, seed=seed)))
        return spies[-1]

    sp = SelfPlay(game, search_cfg, settings, seed=3, make_search=make_search)
    ev = hashed_evaluator(game.spec.num_actions)
    finished = []           # (call index of the game's last move, game)
    for _ in range(120):
        finished += [(len(spies[0].calls) - 1, g) for g in sp.play_move(ev)]
    calls = spies[0].calls
    sims = np.stack([c["simulations"] for c in calls])          # [moves, B]
    noisy = np.stack([c["add_noise"] for c in calls])
    visits = np.stack([c["out"].visit_counts.sum(1) for c in calls])
    assert set(np.unique(sims)) == {full_sims, cheap_sims}
    np.testing.assert_array_equal(noisy, sims == full_sims)     # cheap searches: no noise
    np.testing.assert_array_equal(visits, sims)                 # each row got its own budget
    full_share = (sims == full_sims).mean()                     # 480 draws: sd 0.02
    assert abs(full_share - p) < 0.07, full_share

    assert len(finished) >= 8
    stored = 0
    for last, g in finished:
        M = len(g.actions)
        positions = [game.initial_states(1)[0]]
        for a in g.actions[:-1]:
            positions.append(game.step(positions[-1][None], np.array([a]))[0])
        positions = np.stack(positions)                         # every position of the game
        first = last - M + 1
        rows = [b for b in range(B)
                if all(np.array_equal(calls[first + t]["states"][b], positions[t])
                       for t in range(M))]
        assert rows, "the game's moves were not searched in one row"
        b = rows[0]
        full = np.array([calls[first + t]["simulations"][b] == full_sims for t in range(M)])
        np.testing.assert_array_equal(g.plies, np.flatnonzero(full))
        np.testing.assert_array_equal(g.states, positions[full])
        for i, t in enumerate(np.flatnonzero(full)):
            np.testing.assert_array_equal(g.policy_targets[i],
                                          calls[first + t]["out"].policy_target[b])
        to_play = game.to_play(g.states)
        np.testing.assert_array_equal(g.value_targets, np.where(
            to_play == 0, g.result_first_player, -g.result_first_player).astype(np.float32))
        for t in np.flatnonzero(~full):     # cheap moves: the search's best, no temperature
            out = calls[first + t]["out"]
            best = (np.argmax(out.visit_counts[b]) if algorithm == "puct" else out.actions[b])
            assert g.actions[t] == best
        stored += len(g.states)
    assert stored < sum(len(g.actions) for _, g in finished)


def test_playout_cap_keeps_the_ownership_targets_of_the_stored_positions():
    """Go: ownership targets and weights follow the stored (full-search) positions: the final
    board from each stored position's side to move."""
    game = make("go9")
    settings = SelfPlayConfig(games_per_worker=3, max_moves=24, playout_cap_fraction=0.5,
                              playout_cap_cheap_simulations=1)
    sp = SelfPlay(game, SearchConfig(num_simulations=2, max_num_considered_actions=2), settings,
                  seed=5)
    ev = _passing_after(game, 10)
    finished, scored = [], 0
    while len(finished) < 4:
        finished += sp.play_move(ev)
    for g in finished:
        T = len(g.states)
        assert T < len(g.actions) or T == 0 or len(g.plies) == len(g.actions)
        assert g.ownership_targets.shape == (T, 9, 9) and g.ownership_weight.shape == (T,)
        final = game.initial_states(1)
        for a in g.actions:
            final = game.step(final, np.array([a]))
        if T and game.terminal(final)[0]:
            final_view = game.ownership(final)[0] * (1 if game.to_play(final)[0] == 0 else -1)
            sign = np.where(game.to_play(g.states) == 0, 1, -1)[:, None, None]
            np.testing.assert_array_equal(g.ownership_targets * sign,
                                          np.broadcast_to(final_view, (T, 9, 9)))
            assert final_view.any() and g.ownership_weight.all()
            scored += 1
    assert scored >= 2
    assert sum(len(g.states) for g in finished) < sum(len(g.actions) for g in finished)


def test_playout_cap_off_keeps_every_position_and_the_same_games():
    """fraction 0 draws nothing extra and searches as the code without the switch did (one
    budget, add_noise as configured): SelfPlay's own generator is untouched by the moves (no
    resignation or opening draws here), so the games are those of the code before the switch."""
    game = make("connect4")
    cfg = SearchConfig(num_simulations=4)
    ev = hashed_evaluator(game.spec.num_actions)
    games = []
    for fraction in (0.0, 0.5):
        spies = []

        def make_search(batch_size, seed):
            spies.append(_SpySearch(BatchedSearch(game, cfg, batch_size, seed=seed)))
            return spies[-1]

        settings = SelfPlayConfig(games_per_worker=3, playout_cap_fraction=fraction,
                                  playout_cap_cheap_simulations=1)
        sp = SelfPlay(game, cfg, settings, seed=4, make_search=make_search)
        before = sp.rng.bit_generator.state
        out = []
        while len(out) < 3:
            out += sp.play_move(ev)
        games.append(out)
        moved_rng = sp.rng.bit_generator.state != before
        assert moved_rng == (fraction > 0)      # the full / cheap draws, only when on
        budgets = [c["simulations"] for c in spies[0].calls]
        assert all(b is None for b in budgets) == (fraction == 0)
    for a in games[0]:
        np.testing.assert_array_equal(a.plies, np.arange(len(a.actions)))
        assert len(a.states) == len(a.actions)


@pytest.mark.parametrize("full_sims, cheap_sims", [(4, 0), (0, 0)])
def test_searches_of_no_simulation_play_the_priors_best_legal_move(full_sims, cheap_sims):
    """PUCT self-play whose searches have no visits (cheap searches of 0 simulations, or
    search.num_simulations 0 past temperature_moves) plays the prior's most likely move, as the
    search's own sampling falls back to the prior: never the argmax of an all-zero visit row
    (action 0, illegal once column 0 is full)."""
    game = make("connect4")

    def column_3(states):                  # prefers column 3, then ties (lowest column first)
        logits = np.zeros((len(states), game.spec.num_actions), np.float32)
        logits[:, 3] = 3.0
        return logits, np.zeros(len(states), np.float32)

    settings = SelfPlayConfig(games_per_worker=4, temperature_moves=0, add_noise=False,
                              playout_cap_fraction=0.25 if full_sims else 0.0,
                              playout_cap_cheap_simulations=cheap_sims)
    sp = SelfPlay(game, SearchConfig(algorithm="puct", num_simulations=full_sims,
                                     reuse_tree=False), settings, seed=0)
    finished = []
    for _ in range(60):
        finished += sp.play_move(column_3)      # an illegal move raises here
    assert len(finished) >= 4
    for g in finished:
        searched = set(g.plies.tolist()) if full_sims else set()   # full searches with visits
        state = game.initial_states(1)
        for ply, a in enumerate(g.actions):
            if ply in searched:                 # a full search: its own visits decide
                state = game.step(state, np.array([a]))
                continue
            legal = np.flatnonzero(game.legal_mask(state)[0])
            assert a == (3 if 3 in legal else legal[0]), (ply, a, legal)
            state = game.step(state, np.array([a]))


def test_playout_cap_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="selfplay.playout_cap_fraction"):
        load_config("connect4_muzero", ["selfplay.playout_cap_fraction=0.25"])
    with pytest.raises(ConfigError, match="selfplay.playout_cap_cheap_simulations"):
        load_config("connect4", ["selfplay.playout_cap_fraction=0.25",
                                 "selfplay.playout_cap_cheap_simulations=64"])
    with pytest.raises(ConfigError, match="selfplay.playout_cap_fraction"):
        load_config("connect4", ["selfplay.playout_cap_fraction=1.5"])


# ------------------------------------------------------------------------------------------
# (b) forced playouts and policy target pruning


def _puct_scale(n_root, c_base=19652.0, c_init=1.25):
    return math.sqrt(n_root) * (c_init + math.log((n_root + c_base + 1.0) / c_base))


def reference_pruned(visits, q, priors, root_value, k, value_bounds):
    """KataGo's policy target pruning, one visit at a time (the paper's wording): the most
    visited child c* keeps its visits; every other child loses visits, at most n_forced, while
    its PUCT score with one visit fewer stays below c*'s; a child left with <= 1 visit gets 0."""
    visits = np.asarray(visits, np.float64)
    visited = visits > 0
    total = visits.sum()
    if value_bounds is None:
        lo = min(root_value, q[visited].min())
        denom = max(max(root_value, q[visited].max()) - lo, 1e-8)
    else:
        lo, denom = value_bounds[0], value_bounds[1] - value_bounds[0]
    c = _puct_scale(1.0 + total)

    def score(a, n):
        return (q[a] - lo) / denom + c * priors[a] / (n + 1.0)

    best = int(np.argmax(visits))          # first of the most visited: the lowest action
    kept = visits.copy()
    for a in np.flatnonzero(visited):
        if a == best:
            continue
        n_forced = math.sqrt(k * priors[a] * total)
        while kept[a] > 0 and visits[a] - (kept[a] - 1) <= n_forced \
                and score(a, kept[a] - 1) < score(best, visits[best]):
            kept[a] -= 1
        if kept[a] <= 1:
            kept[a] = 0
    return kept / kept.sum()


def _drive(core, num_actions, sims, leaf_value, root_logits, forced=True, check_forcing=None):
    """One row's search on the raw core: root with root_logits, leaves valued leaf_value(action
    at the root, depth) with uniform priors. check_forcing(visits_before, visits_after, priors)
    runs around every simulation step."""
    A = num_actions
    core.expand_roots(np.array([0], np.int32), np.array([0.0], np.float32),
                      np.asarray(root_logits, np.float32)[None])
    core.start(sims, forced_rows=np.array([forced]) if forced else None)
    while True:
        before = core.children(0, 0)
        leaves = core.select()
        if leaves.shape[1] == 0:
            break
        _, parent, action, _ = leaves
        values = np.array([leaf_value(int(a), 0 if p == 0 else 1)    # 0: a root child
                           for a, p in zip(action, parent)], np.float32)
        core.expand_backup(values, np.zeros((len(values), A), np.float32))
        if check_forcing is not None:
            check_forcing(before, core.children(0, 0))
    return core.outputs()


def _forcing_checker(k):
    seen = {"forced_steps": 0}

    def check(before, after):
        grown = np.flatnonzero(after["visits"] - before["visits"])
        assert len(grown) == 1                  # one simulation: one root child visited
        total = before["visits"].sum()
        due = (before["visits"] > 0) & (before["visits"] < np.sqrt(k * before["priors"] * total))
        if due.any():
            seen["forced_steps"] += 1
            assert due[grown[0]], (before["visits"], before["priors"], grown)
    return check, seen


@pytest.mark.parametrize("value_bounds", [(-1.0, 1.0), None])
def test_forced_playouts_and_pruned_target_match_the_formulas(value_bounds):
    A, k, sims = 8, 2.0, 40
    cover = {"reduced": 0, "dropped": 0, "forced": 0}
    for seed in range(6):
        rng = np.random.default_rng(seed)
        logits = rng.normal(0, 2.0, A)
        q_child = rng.uniform(-0.8, 0.8, A)     # the root child's worth, for the root's player

        def leaf_value(action, depth, q_child=q_child):
            # values are for the side to move at the leaf: a root child's is -its worth
            return -q_child[action] if depth == 0 else 0.5 * q_child[action]

        cfg = SearchConfig(algorithm="puct", num_simulations=sims, forced_playouts_k=k,
                           value_bounds=value_bounds)
        check, seen = _forcing_checker(k)
        core = make_core(A, cfg, 1)
        _, visits, policy, root_value, root_q = _drive(core, A, sims, leaf_value, logits,
                                                       check_forcing=check)
        core_priors = core.children(0, 0)["priors"].astype(np.float64)   # float32, by action
        priors = core_priors
        expected = reference_pruned(visits[0], np.nan_to_num(root_q[0]), priors,
                                    float(root_value[0]), k, value_bounds)
        np.testing.assert_allclose(policy[0], expected, atol=1e-6)
        kept = expected * (expected > 0)
        cover["dropped"] += int(((visits[0] > 0) & (kept == 0)).sum())
        cover["reduced"] += int(((kept > 0) & (kept * visits[0].sum() < visits[0] - 0.5)).sum())
        cover["forced"] += seen["forced_steps"]
    # the seeds exercise every branch: forced selections, partly pruned and dropped children
    assert all(v > 0 for v in cover.values()), cover


def test_forced_playouts_give_starved_children_their_share():
    """One clearly best child: plain PUCT starves the others, forced playouts give each visited
    child at least ~sqrt(k P sum N) visits."""
    A, k, sims = 5, 2.0, 200
    logits = np.array([2.0, 0.5, 0.0, -0.5, -1.0])
    worth = np.array([0.9, -0.6, -0.6, -0.6, -0.6])

    def leaf_value(action, depth):
        return -worth[action] if depth == 0 else worth[action]

    priors = np.exp(logits - logits.max())
    priors /= priors.sum()
    results = {}
    for kk in (0.0, k):
        cfg = SearchConfig(algorithm="puct", num_simulations=sims, forced_playouts_k=kk)
        _, visits, policy, _, _ = _drive(make_core(A, cfg, 1), A, sims, leaf_value, logits,
                                         forced=kk > 0)
        results[kk] = (visits[0], policy[0])
    plain, forced = results[0.0][0], results[k][0]
    share = np.sqrt(k * priors * sims)
    assert (plain[1:] + 1 < share[1:]).any()            # plain PUCT: some child starved
    visited = forced > 0
    assert (forced + 1 >= share)[visited].all()         # forced: no visited child
    assert visited[1:].sum() >= 2
    # the pruned target takes those forced visits back out
    assert results[k][1][1:].sum() < forced[1:].sum() / sims
    np.testing.assert_allclose(results[0.0][1], plain / plain.sum(), atol=1e-7)


def test_forced_playouts_only_in_noisy_rows_and_moves_come_from_the_pruned_target():
    game = make("connect4")
    B = 96
    states = _mid_game_states(game, B, seed=7)
    ev = hashed_evaluator(game.spec.num_actions)
    cfg = SearchConfig(algorithm="puct", num_simulations=40, forced_playouts_k=2.0,
                       reuse_tree=False)
    quiet = BatchedSearch(game, cfg, B, seed=1).run(states, ev, add_noise=False)
    np.testing.assert_allclose(quiet.policy_target,
                               quiet.visit_counts / quiet.visit_counts.sum(1, keepdims=True),
                               atol=1e-7)
    # temperature 4 flattens the sampling: a sampler of the raw visits would play children that
    # pruning dropped in 1-5 of these rows for seeds 0-5 (measured); none of the pruned target's
    noisy = BatchedSearch(game, cfg, B, seed=1).run(states, ev, add_noise=True, temperature=4.0)
    pruned = noisy.policy_target < noisy.visit_counts / noisy.visit_counts.sum(1, keepdims=True)
    assert pruned.any()
    dropped = (noisy.visit_counts > 0) & (noisy.policy_target == 0)     # [B, A] searched, pruned
    assert dropped.any(1).sum() >= 5, dropped.any(1).sum()
    rows = np.arange(B)
    # ... and none is: the moves come from the pruned target
    assert not dropped[rows, noisy.actions].any()
    assert (noisy.policy_target[rows, noisy.actions] > 0).all()


def test_forced_playouts_with_gumbel_are_refused():
    with pytest.raises(ConfigError, match="search.forced_playouts_k"):
        SearchConfig(algorithm="gumbel", forced_playouts_k=2.0)
    with pytest.raises(ConfigError, match="search.forced_playouts_k"):
        load_config("connect4", ["search.forced_playouts_k=2"])
    with pytest.raises(ValueError, match="forced"):
        _mcts.Search(2, 3, algorithm="gumbel", forced_playouts_k=2.0)
    load_config("connect4", ["search.algorithm=puct", "search.forced_playouts_k=2"])


# ------------------------------------------------------------------------------------------
# (c) the opponent-reply target


def test_successor_rows_follow_games_and_plies():
    game_index = np.array([0, 0, 0, 0, 1, 1, 2])
    move_number = np.array([3, 4, 6, 7, 8, 9, 0])
    np.testing.assert_array_equal(successor_rows(game_index, move_number),
                                  [1, -1, 3, -1, 5, -1, -1])


def _written_buffer(tmp_path, game, games):
    writer = ShardWriter(replay_dir(tmp_path), worker=0, games_per_shard=3)
    for g in games:
        writer.add_game(g["states"], g["policy"], g["value"])
    writer.flush()
    buf = ReplayBuffer(replay_dir(tmp_path), game, window_positions=10_000)
    buf.refresh()
    return buf


def _distinct_policies(game, states, rng):
    mask = game.legal_mask(states)
    p = mask * rng.uniform(0.1, 1.0, mask.shape)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def test_opponent_target_is_the_next_position_policy_of_the_same_game(tmp_path):
    game = make("connect4")
    rng = np.random.default_rng(0)
    games = []
    for states, _, value in random_games(game, 5, rng):
        keep = np.ones(len(states), bool)
        if len(states) > 4:
            keep[2] = False                      # a cheap search's position, left out
        games.append(dict(states=states[keep], policy=_distinct_policies(game, states[keep], rng),
                          value=value[keep]))
    buf = _written_buffer(tmp_path, game, games)
    states, policy, _ = buf.positions()
    target, weight = buf.opponent_policies(np.arange(len(states)))
    i = 0
    for g in games:
        T = len(g["states"])
        plies = game.move_number(g["states"])
        for t in range(T):
            if t + 1 < T and plies[t + 1] == plies[t] + 1:
                assert weight[i + t] == 1
                np.testing.assert_array_equal(target[i + t], g["policy"][t + 1])
            else:                                 # last position, or the next was not stored
                assert weight[i + t] == 0 and not target[i + t].any()
        i += T
    assert 0 < weight.sum() < len(weight)


def test_sampled_opponent_targets_share_the_positions_symmetry(tmp_path):
    game = make("connect4")
    rng = np.random.default_rng(1)
    games = [dict(states=s, policy=_distinct_policies(game, s, rng), value=v)
             for s, _, v in random_games(game, 6, rng)]
    buf = _written_buffer(tmp_path, game, games)
    batch = buf.sample(64, np.random.default_rng(9), opponent_policy=True)
    assert isinstance(batch, OpponentBatch)
    replay = np.random.default_rng(9)                 # sample()'s draws: indices, then symmetries
    idx = replay.integers(0, len(buf), size=64)
    sym = replay.integers(0, game.spec.num_symmetries, size=64)
    assert sym.any() and not sym.all()
    target, weight = buf.opponent_policies(idx)
    np.testing.assert_array_equal(batch.opponent_policy, game.transform_policies(target, sym))
    np.testing.assert_array_equal(batch.opponent_policy_weight, weight)
    np.testing.assert_array_equal(batch.policy, game.transform_policies(buf._gather(idx)[1], sym))
    assert len(buf.sample(8, np.random.default_rng(0))) == 5       # a plain Batch by default


def test_selfplay_shards_carry_the_opponent_target_with_the_playout_cap(tmp_path):
    """End to end: self-play under playout cap randomisation -> shards -> opponent targets: a
    stored position's target is the next move's policy when that move was a full search."""
    game = make("connect4")
    settings = SelfPlayConfig(games_per_worker=3, playout_cap_fraction=0.5,
                              playout_cap_cheap_simulations=2)
    sp = SelfPlay(game, SearchConfig(num_simulations=6), settings, seed=2)
    ev = hashed_evaluator(game.spec.num_actions)
    finished = []
    while len(finished) < 4:
        finished += sp.play_move(ev)
    buf = _written_buffer(tmp_path, game, [dict(states=g.states, policy=g.policy_targets,
                                                value=g.value_targets) for g in finished])
    target, weight = buf.opponent_policies(np.arange(len(buf)))
    i = 0
    for g in finished:
        for t in range(len(g.plies)):
            follows = t + 1 < len(g.plies) and g.plies[t + 1] == g.plies[t] + 1
            assert weight[i + t] == float(follows)
            if follows:
                np.testing.assert_array_equal(target[i + t], g.policy_targets[t + 1])
        i += len(g.plies)
    assert 0 < weight.sum() < len(weight)


def test_opponent_head_architecture_and_old_checkpoints():
    game = make("connect4")
    cfg = load_config("connect4", ["model.blocks=1", "model.channels=8"])
    plain = architecture_for(game.spec, cfg.model)
    assert "opponent_policy" not in plain                # the dict of the code before the head
    net = build_net(plain)                               # an old checkpoint's dict builds
    assert net.opponent_policy_head is None
    with_head = architecture_for(game.spec, load_config(
        "connect4", ["model.blocks=1", "model.channels=8",
                     "model.opponent_policy_head=true"]).model)
    assert with_head["opponent_policy"] is True
    net = build_net(with_head)
    x = torch.randn(3, *game.spec.observation_shape)
    logits, value, own, opp = net.forward_all(x, opponent_policy=True)
    assert opp.shape == logits.shape == (3, game.spec.num_actions)
    assert len(net.forward_all(x)) == 3 and len(net(x)) == 2
    with pytest.raises(ConfigError, match="model.opponent_policy_head"):
        load_config("connect4_muzero", ["model.opponent_policy_head=true"])


def test_weighted_policy_cross_entropy_ignores_rows_of_weight_0():
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]])
    target = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.3, 0.7]])
    weight = torch.tensor([1.0, 0.0, 1.0])
    keep = weight > 0
    assert torch.allclose(policy_cross_entropy(logits, target, weight),
                          policy_cross_entropy(logits[keep], target[keep]))
    assert policy_cross_entropy(logits, target, torch.zeros(3)) == 0


def test_opponent_head_loss_falls_on_a_toy_set(tmp_path):
    torch.manual_seed(0)
    torch.set_num_threads(1)        # a tiny net on a shared CPU (conftest restores the count)
    game = make("connect4")
    cfg = load_config("connect4", ["model.blocks=1", "model.channels=8", "train.lr=3e-3",
                                   "train.warmup_steps=0", "train.batch_size=32",
                                   "model.opponent_policy_head=true", "train.device=cpu"])
    rng = np.random.default_rng(3)
    # sharp targets (one legal move each) that a small net can learn
    games = [dict(states=s, policy=np.eye(7, dtype=np.float32)[
        [rng.choice(np.flatnonzero(m)) for m in game.legal_mask(s)]], value=v)
        for s, _, v in random_games(game, 2, rng)]
    buf = _written_buffer(tmp_path, game, games)
    trainer = Trainer(make_net(game.spec, cfg.model), cfg, device="cpu")
    batch = trainer.sample_batch(buf, np.random.default_rng(0))
    assert isinstance(batch, OpponentBatch) and batch.opponent_policy_weight.sum() > 0
    head = [p.detach().clone() for p in trainer.net.opponent_policy_head.parameters()]
    first = trainer.train_step(batch)["opponent_policy_loss"]
    assert any(not torch.equal(a, b) for a, b in
               zip(head, trainer.net.opponent_policy_head.parameters()))
    for _ in range(80):
        last = trainer.train_step(batch)["opponent_policy_loss"]
    assert last < 0.5 * first, (first, last)
    # no head: the same batch trains the other heads and reports no opponent loss
    plain = load_config("connect4", ["model.blocks=1", "model.channels=8", "train.device=cpu"])
    stats = Trainer(make_net(game.spec, plain.model), plain, device="cpu").train_step(batch)
    assert "opponent_policy_loss" not in stats


# ------------------------------------------------------------------------------------------
# (d) score-weighted value (Go)


@pytest.mark.parametrize("root_weight", [0.0, 0.25])
def test_score_weighted_value_targets(root_weight):
    game = make("go9")
    w_s, scale = 0.4, 6.0
    settings = SelfPlayConfig(games_per_worker=3, max_moves=30, score_value_weight=w_s,
                              score_value_scale=scale, value_target_root_weight=root_weight,
                              resign_threshold=None)
    sp = SelfPlay(game, SearchConfig(num_simulations=2, max_num_considered_actions=2), settings,
                  seed=6)
    ev = _passing_after(game, 9)
    finished = []
    while len(finished) < 4:
        finished += sp.play_move(ev)
    scored = 0
    for g in finished:
        final = game.initial_states(1)
        for a in g.actions:
            final = game.step(final, np.array([a]))
        to_play = game.to_play(g.states)
        if g.truncated:
            continue
        assert game.terminal(final)[0]
        margin = float(game.score(final)[0])            # Black (the first player) minus White
        z = np.where(to_play == 0, g.result_first_player, -g.result_first_player)
        m = np.where(to_play == 0, margin, -margin)
        target = (1 - w_s) * z + w_s * np.tanh(m / scale)
        target = (1 - root_weight) * target + root_weight * g.root_values
        np.testing.assert_allclose(g.value_targets, target, atol=1e-6)
        assert abs(margin) > 0 and np.sign(margin) == g.result_first_player
        scored += 1
    assert scored >= 2


def test_score_weighted_value_leaves_unscored_games_alone():
    """Truncated games keep the root values, resigned ones the plain +-1 result."""
    game = make("go9")
    kinds = set()
    for extra in (dict(max_moves=8),
                  dict(max_moves=40, resign_threshold=-0.05, resign_playout_fraction=0.0)):
        settings = SelfPlayConfig(games_per_worker=3, score_value_weight=0.5, **extra)
        sp = SelfPlay(game, SearchConfig(num_simulations=2, max_num_considered_actions=2),
                      settings, seed=1)
        finished = []
        while len(finished) < 3:
            finished += sp.play_move(hashed_evaluator(game.spec.num_actions))
        for g in finished:
            if g.truncated:
                np.testing.assert_array_equal(g.value_targets, g.root_values)
            elif g.resigned:
                to_play = game.to_play(g.states)
                np.testing.assert_array_equal(g.value_targets, np.where(
                    to_play == 0, g.result_first_player, -g.result_first_player))
            kinds.add("truncated" if g.truncated else "resigned" if g.resigned else "scored")
    assert {"truncated", "resigned"} <= kinds


def test_score_weighted_value_needs_a_score():
    game = make("connect4")
    with pytest.raises(ConfigError, match="selfplay.score_value_weight"):
        SelfPlay(game, SearchConfig(num_simulations=2), SelfPlayConfig(score_value_weight=0.5))
    with pytest.raises(ConfigError, match="selfplay.score_value_weight"):
        load_config("go9_muzero", ["selfplay.score_value_weight=0.5"])
