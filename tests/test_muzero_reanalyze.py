"""Reanalyze (azero/muzero/reanalyze.py): refreshed policy and value targets are the newest
network's search outputs, sampling draws its configured share from them, and fraction 0 leaves
the self-play targets alone."""
import numpy as np
import pytest
import torch

from azero.config import SearchConfig, load_config
from azero.games import make
from azero.muzero.loop import MuZero
from azero.muzero.reanalyze import ReanalyzeBuffer, Reanalyzer
from azero.muzero.replay import TrajectoryBuffer, TrajectoryWriter, outcome_rewards, value_targets
from azero.nets.muzero import MuZeroNet
from azero.nets.muzero_evaluator import MuZeroEvaluator, MuZeroSearch

SEARCH = SearchConfig(algorithm="gumbel", num_simulations=8, max_num_considered_actions=4)
BATCH = 8                       # positions per reanalysis search


# one torch thread (conftest.one_torch_thread): tiny nets on a shared 2-core box
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_random_games(directory, game, games, seed=0, games_per_shard=2):
    """Random Connect Four games as trajectory shards whose targets a search never gives: a
    one-hot policy on the move played and root values of 0.123."""
    rng = np.random.default_rng(seed)
    writer = TrajectoryWriter(directory, worker=0, games_per_shard=games_per_shard)
    for _ in range(games):
        state = game.initial_states(1)
        states, actions = [state[0]], []
        while not game.terminal(state)[0]:
            legal = np.flatnonzero(game.legal_mask(state)[0])
            a = int(rng.choice(legal))
            actions.append(a)
            state = game.step(state, np.array([a]))
            states.append(state[0])
        states = np.stack(states)
        to_play = game.to_play(states)
        policy = np.eye(game.spec.num_actions, dtype=np.float32)[actions]
        writer.add_trajectory(states, np.array(actions), outcome_rewards(to_play, game.result(state)[0]),
                              to_play, policy, np.full(len(actions), 0.123, np.float32))
    writer.flush()


def tiny_net(game, seed=0):
    torch.manual_seed(seed)
    return MuZeroNet(game.spec.observation_shape, game.spec.num_actions, latent_channels=4,
                     representation_blocks=1, dynamics_blocks=1, prediction_blocks=0,
                     value_hidden=8, reward_hidden=8).eval()


def expected_search(net, game, states, search_config=SEARCH, batch=BATCH):
    """(policy [n, A], root value [n]) of a search of `net` without root noise, made apart from
    the Reanalyzer, in batches of `batch` rows. The net is evaluated as it is, fp32, as the
    Reanalyzer evaluates it (a snapshot's folded BatchNorm rounds differently)."""
    search = MuZeroSearch(MuZeroEvaluator(net, game), search_config, batch)
    policies, values = [], []
    for i in range(0, len(states), batch):
        part = states[i:i + batch]
        padded = np.repeat(part[:1], batch, axis=0)
        padded[:len(part)] = part
        search.reset()
        out = search.run(padded, add_noise=False, active=np.arange(batch) < len(part))
        policies.append(out.policy_target[:len(part)])
        values.append(out.root_value[:len(part)])
    return np.concatenate(policies), np.concatenate(values)


def dense_policy(chunk, num_actions):
    n = len(chunk.action)
    out = np.zeros((n, num_actions), np.float32)
    rows = np.repeat(np.arange(n), np.diff(chunk.policy_offsets))
    out[rows, chunk.policy_actions] = chunk.policy_probs
    return out


def make_buffer(tmp_path, game, fraction, td_steps=1):
    buffer = ReanalyzeBuffer(tmp_path, game, 10_000, unroll_steps=2, td_steps=td_steps,
                             fraction=fraction)
    buffer.refresh()
    return buffer


def test_refreshed_targets_are_the_newest_networks_search(tmp_path):
    game = make("connect4")
    write_random_games(tmp_path, game, 5)
    buffer = make_buffer(tmp_path, game, fraction=1.0, td_steps=1)
    net = tiny_net(game)
    step = [7]
    reanalyzer = Reanalyzer(net, game, buffer, SEARCH, batch_size=BATCH, positions_per_step=1.0,
                            step_of=lambda: step[0])
    A = game.spec.num_actions

    for round_ in range(2):
        if round_ == 1:                  # training moved the network: the next refresh sees it
            with torch.no_grad():
                for p in net.parameters():
                    p.add_(torch.randn_like(p) * 0.3)
            step[0] = 9
        published = {}
        while len(published) < len(buffer.chunks):
            assert reanalyzer.refresh(BATCH) > 0
            published = {n: s for n, s in buffer.refreshed_step.items() if s == step[0]}
        fresh = {c.name: c for c in buffer.refreshed()}
        for chunk in buffer.chunks:
            copy = fresh[chunk.name]
            rows = chunk.sample_rows
            want_policy, want_root = expected_search(net, game, chunk.states[rows])
            got = dense_policy(copy, A)
            np.testing.assert_allclose(got[rows], want_policy, atol=1e-5)
            np.testing.assert_allclose(copy.root_value[rows], want_root, atol=1e-5)
            # not the self-play targets (one-hot policies, root values 0.123)
            assert not np.allclose(got[rows], dense_policy(chunk, A)[rows], atol=1e-3)
            # value targets: one-step bootstraps from the refreshed root values (td_steps 1)
            root = np.zeros(len(chunk.action), np.float32)
            root[rows] = want_root
            np.testing.assert_allclose(
                copy.value_target, value_targets(chunk.reward, chunk.to_play, root, chunk.end,
                                                 chunk.truncated, 1), atol=1e-5)
            assert not np.allclose(copy.value_target[rows], chunk.value_target[rows])
            # the shard's own targets are left as self-play wrote them
            np.testing.assert_allclose(chunk.root_value[rows], 0.123)

    # fraction 1: every sampled window carries the refreshed targets of its rows
    batch = buffer.sample(64, np.random.default_rng(1), augment=False)
    by_state = {}               # a position of several games (the opening) has their values
    for chunk in buffer.refreshed():
        pol = dense_policy(chunk, A)
        for r in chunk.sample_rows:
            policy, values = by_state.setdefault(chunk.states[r].tobytes(), (pol[r], []))
            values.append(chunk.value_target[r])
    obs_of = {np.asarray(game.observation(np.frombuffer(k, game.spec.state_dtype)[None]),
                         np.float32).tobytes(): v for k, v in by_state.items()}
    for o, policy, value in zip(batch.obs, batch.policy[:, 0], batch.value[:, 0]):
        want_policy, want_values = obs_of[o.tobytes()]
        np.testing.assert_allclose(policy, want_policy, atol=1e-6)
        assert np.isclose(want_values, value, atol=1e-6).any()


def test_fraction_zero_leaves_the_self_play_targets(tmp_path):
    game = make("connect4")
    write_random_games(tmp_path, game, 4)
    buffer = make_buffer(tmp_path, game, fraction=0.0)
    reanalyzer = Reanalyzer(tiny_net(game), game, buffer, SEARCH, batch_size=BATCH,
                            positions_per_step=1.0)
    while len(buffer.refreshed_step) < len(buffer.chunks):
        reanalyzer.refresh(BATCH)
    plain = TrajectoryBuffer(tmp_path, game, 10_000, unroll_steps=2, td_steps=1)
    plain.refresh()
    a = buffer.sample(64, np.random.default_rng(3))
    b = plain.sample(64, np.random.default_rng(3))
    for x, y in zip(a, b):
        assert (x is None and y is None) or np.array_equal(x, y)
    # a run with muzero.reanalyze_fraction 0 has no Reanalyze step at all
    config = load_config("connect4_muzero_tiny")
    assert config.muzero.reanalyze_fraction == 0
    assert MuZero().before_training(None, buffer, config, game) is None


def test_a_share_of_the_windows_comes_from_refreshed_games_and_the_step_is_paced(tmp_path):
    game = make("connect4")
    write_random_games(tmp_path, game, 6, seed=4)
    buffer = make_buffer(tmp_path, game, fraction=0.5)
    reanalyzer = Reanalyzer(tiny_net(game), game, buffer, SEARCH, batch_size=BATCH,
                            positions_per_step=BATCH / 2)
    # 2 steps owe one search of BATCH positions; 1 step owes half of one: nothing yet
    assert reanalyzer(1)["reanalyzed_positions"] == 0
    figures = reanalyzer(3)             # 2 x BATCH owed now
    assert figures["reanalyzed_positions"] == 2 * BATCH
    while not buffer.refreshed():
        reanalyzer.refresh(BATCH)
    refreshed = {c.name for c in buffer.refreshed()}
    fresh_states = {c.states[r].tobytes() for c in buffer.refreshed() for r in c.sample_rows}
    assert len(refreshed) < len(buffer.chunks)      # some shards still have only old targets
    batch = buffer.sample(400, np.random.default_rng(5), augment=False)
    # windows of refreshed games carry soft search policies; the others the one-hot ones
    soft = (batch.policy[:, 0].max(1) < 0.999)
    assert 0.4 < soft.mean() < 0.6
    obs_fresh = {np.asarray(game.observation(np.frombuffer(k, game.spec.state_dtype)[None]),
                            np.float32).tobytes() for k in fresh_states}
    assert all(o.tobytes() in obs_fresh for o in batch.obs[soft])


def test_reanalyze_slower_than_self_play_refreshes_shards_that_stay_in_the_window(tmp_path):
    """Steady state of a full window: each step one new shard arrives and Reanalyze refreshes
    half as many positions (muzero.reanalyze_fraction 0.5). Stalest-first alone chased the
    window's oldest shard: its copy was evicted within a step or two or before its search was
    done, and the refreshed share of each batch came from those few positions (or from none).
    Now no search is thrown away and the refreshed copies hold a steady share of the window."""
    game = make("connect4")
    window = 800                                    # ~10 shards of 4 random games
    buffer = ReanalyzeBuffer(tmp_path, game, window, unroll_steps=2, fraction=0.5)
    per_shard = 4 * 20                              # a random game: ~20 positions
    reanalyzer = Reanalyzer(tiny_net(game), game, buffer, SEARCH, batch_size=BATCH,
                            positions_per_step=per_shard / 2)
    A = game.spec.num_actions
    # the selection is under test, not the search: uniform targets, no network
    reanalyzer.search_rows = lambda states: (np.full((len(states), A), 1 / A, np.float32),
                                             np.zeros(len(states), np.float32))
    published_rows = []

    def counting_publish(chunk, policy, root_value, step):
        published_rows.append(chunk.sample_count())
        buffer.publish(chunk, policy, root_value, step)

    reanalyzer.publish = counting_publish
    pools = []
    for step in range(40):
        write_random_games(tmp_path, game, 4, seed=100 + step, games_per_shard=4)
        buffer.refresh()
        reanalyzer(1)
        if step >= 20:                              # the window has been full for ~10 steps
            pools.append(sum(c.sample_count() for c in buffer.refreshed()))
    # every search but the one under way went into a published copy
    in_progress = reanalyzer._work.done if reanalyzer._work is not None else 0
    assert reanalyzer.positions_refreshed - sum(published_rows) == in_progress
    # a quarter of the window on average (half of the older half); never empty
    assert min(pools) >= window / 16, pools
    assert np.mean(pools) >= window / 8, pools
