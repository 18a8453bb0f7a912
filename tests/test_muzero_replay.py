"""Trajectory replay: shards, value/reward targets with their signs, absorbing padding and masks,
K-step windows under symmetries, atomicity and the window."""
import os

import numpy as np
import pytest

from azero.games import make
from azero.games.protocol import GameSpec
from azero.muzero.replay import (TrajectoryBuffer, TrajectoryWriter, outcome_rewards,
                                 trajectory_dir)
from azero.replay import ReplayBuffer


class Line:
    """Data-only stand-in for a game: a state row is [game id, ply]; the observation is the row,
    so a sampled window tells where it starts."""
    spec = GameSpec(name="line", num_actions=3, observation_shape=(2, 1, 1), state_size=2,
                    max_game_length=100)

    def observation(self, states):
        return states.astype(np.float32).reshape(len(states), 2, 1, 1)


def line_game(game_id, to_play, rewards, root_value, truncated=False, seed=0):
    """A trajectory of T = len(rewards) moves with the given turn order and rewards."""
    T = len(rewards)
    rng = np.random.default_rng(seed)
    states = np.stack([np.full(T + 1, game_id), np.arange(T + 1)], 1).astype(np.int64)
    policy = rng.dirichlet(np.ones(3), size=T).astype(np.float32)
    actions = rng.integers(0, 3, size=T)
    return dict(states=states, actions=actions, rewards=np.asarray(rewards, np.float32),
                to_play=np.asarray(to_play), policy=policy,
                root_value=np.asarray(root_value, np.float32), truncated=truncated)


def reference_value(g, t, td_steps):
    """The value target at ply t by its definition, one term at a time: rewards r_i from the view
    of to_play[t] (negated for the other player) up to the bootstrap ply, then the root value
    there (same sign rule); 0 at and past the final ply."""
    T = len(g["rewards"])
    if t >= T:
        return 0.0
    last = T - 1 if g["truncated"] else T
    b = last if td_steps is None else min(t + td_steps, last)
    sign = lambda i: 1.0 if g["to_play"][i] == g["to_play"][t] else -1.0    # noqa: E731
    z = sum(sign(i) * g["rewards"][i] for i in range(t, b))
    if b < T:
        z += sign(b) * g["root_value"][b]
    return z


def sample_all(buf, rng, n=400):
    """Windows keyed by (game id, start ply)."""
    batch = buf.sample(n, rng)
    keys = [(int(o[0, 0, 0]), int(o[1, 0, 0])) for o in batch.obs]
    return batch, keys


@pytest.mark.parametrize("td_steps", [None, 2])
def test_targets_signs_and_padding_for_the_side_to_move(tmp_path, td_steps):
    """Game 0: alternating players, the last mover (player 0, move 4) wins: z = +1 for the
    winner to move, -1 for the loser, at every ply; its reward is +1 for its mover only.
    Game 1: player 1 moves twice in a row (plies 1 and 2): signs follow to_play, not parity.
    Game 2: truncated: nothing is known past its end (masks 0), value from its root values."""
    K = 3
    to_play0 = np.array([0, 1, 0, 1, 0, 1])
    g0 = line_game(0, to_play0, outcome_rewards(to_play0, -1.0), [0.3, -0.2, 0.5, -0.6, 0.9])
    assert list(g0["rewards"]) == [0, 0, 0, 0, 1.0]
    g1 = line_game(1, [0, 1, 1, 0, 1], [0, 0, 0, -1.0], [0.1, 0.2, -0.3, 0.4], seed=1)
    g2 = line_game(2, [0, 1, 0, 1, 0], [0, 0, 0, 0], [0.25, -0.5, 0.75, -0.125], True, seed=2)
    games = [g0, g1, g2]
    writer = TrajectoryWriter(tmp_path, worker=0, games_per_shard=2)
    for g in games:
        writer.add_trajectory(**g)
    writer.flush()
    buf = TrajectoryBuffer(tmp_path, Line(), 1000, unroll_steps=K, td_steps=td_steps)
    assert buf.refresh() == 6 + 5 + 5 and buf.games_seen == 3 and buf.num_windows == 5 + 4 + 4
    batch, keys = sample_all(buf, np.random.default_rng(0))
    assert {k for k in keys} == {(g, t) for g, n in ((0, 5), (1, 4), (2, 4)) for t in range(n)}
    if td_steps is None:   # the outcome: the winner to move sees +1 at every ply
        for t in range(5):
            assert reference_value(g0, t, None) == (1.0 if to_play0[t] == 0 else -1.0)
    for row, (gid, t0) in enumerate(keys):
        g = games[gid]
        T = len(g["rewards"])
        for k in range(K + 1):
            t = t0 + k
            inside, live = t <= T, t < T
            assert batch.inside_mask[row, k] == inside
            assert batch.policy_mask[row, k] == live
            if live:
                np.testing.assert_allclose(batch.policy[row, k], g["policy"][t])
            else:
                assert not batch.policy[row, k].any()
            if k < K:
                if live:
                    assert batch.actions[row, k] == g["actions"][t]
                else:
                    assert 0 <= batch.actions[row, k] < 3        # random past the end
            known_value = live if g["truncated"] else True
            assert batch.value_mask[row, k] == known_value
            assert batch.value[row, k] == pytest.approx(reference_value(g, t, td_steps) if
                                                        known_value else 0.0, abs=1e-6)
            if k == 0:
                assert batch.reward_mask[row, 0] == 0
            else:
                known_reward = inside if g["truncated"] else True
                assert batch.reward_mask[row, k] == known_reward
                assert batch.reward[row, k] == (g["rewards"][t - 1] if inside else 0.0)
    # the winning move's reward is for its mover (+1) wherever a window sees it
    for row, (gid, t0) in enumerate(keys):
        if gid == 0 and t0 + K >= 5:
            assert batch.reward[row, 5 - t0] == 1.0


@pytest.mark.parametrize("td_steps", [None, 2])
def test_root_weight_mixes_each_searched_rows_root_value_into_its_target(tmp_path, td_steps):
    """root_weight w: a searched row's target is (1 - w) z + w root_value (z the w = 0 target,
    root_value the row's own search value); final rows stay 0."""
    to_play = np.array([0, 1, 0, 1, 0, 1])
    g = line_game(0, to_play, outcome_rewards(to_play, -1.0), [0.3, -0.2, 0.5, -0.6, 0.9])
    writer = TrajectoryWriter(tmp_path, worker=0, games_per_shard=1)
    writer.add_trajectory(**g)
    writer.flush()
    plain = TrajectoryBuffer(tmp_path, Line(), 1000, unroll_steps=1, td_steps=td_steps)
    mixed = TrajectoryBuffer(tmp_path, Line(), 1000, unroll_steps=1, td_steps=td_steps,
                             root_weight=0.25)
    plain.refresh(), mixed.refresh()
    z, mix = plain._chunks[0].value_target, mixed._chunks[0].value_target
    root = np.append(g["root_value"], 0.0)
    np.testing.assert_allclose(mix[:5], 0.75 * z[:5] + 0.25 * root[:5], atol=1e-6)
    assert mix[5] == 0.0 and not np.allclose(mix[:5], z[:5])
    with pytest.raises(ValueError, match="root_weight"):
        TrajectoryBuffer(tmp_path, Line(), 1000, root_weight=1.5)


def test_outcome_rewards_follow_the_turns():
    assert list(outcome_rewards(np.array([0, 1, 0]), -1.0)) == [0.0, 1.0]   # mover won
    assert list(outcome_rewards(np.array([0, 1, 1]), -1.0)) == [0.0, -1.0]  # same player to move
    assert list(outcome_rewards(np.array([0, 1, 0]), 0.0)) == [0.0, 0.0]
    assert len(outcome_rewards(np.array([0]), 1.0)) == 0


def random_connect4_games(n, rng):
    game = make("connect4")
    games = []
    for _ in range(n):
        s = game.initial_states(1)
        states, actions, to_play, policies = [s[0]], [], [int(game.to_play(s)[0])], []
        while not game.terminal(s)[0]:
            legal = game.legal_mask(s)[0]
            p = rng.dirichlet(np.ones(7)) * legal
            policies.append((p / p.sum()).astype(np.float32))
            actions.append(int(rng.choice(np.flatnonzero(legal))))
            s = game.step(s, np.array(actions[-1:]))
            states.append(s[0])
            to_play.append(int(game.to_play(s)[0]))
        to_play = np.array(to_play)
        games.append(dict(states=np.array(states), actions=np.array(actions),
                          rewards=outcome_rewards(to_play, float(game.result(s)[0])),
                          to_play=to_play, policy=np.array(policies),
                          root_value=rng.uniform(-1, 1, len(actions)).astype(np.float32)))
    return game, games


def write(directory, games, worker=0, per_shard=3):
    writer = TrajectoryWriter(directory, worker=worker, games_per_shard=per_shard)
    for g in games:
        writer.add_trajectory(**g)
    writer.flush()
    return writer


def test_windows_follow_the_rules_under_symmetries(tmp_path):
    """Every live step of a sampled window, mirrored or not, is the rules' step of the one
    before with the recorded action, and the policy targets sit on legal moves."""
    game, games = random_connect4_games(6, np.random.default_rng(1))
    write(tmp_path, games)
    buf = TrajectoryBuffer(tmp_path, game, 10_000, unroll_steps=4)
    buf.refresh()
    rng = np.random.default_rng(2)
    batch = buf.sample(64, rng, future_observations=True)
    assert batch.obs.shape == (64, 3, 6, 7) and batch.future_obs.shape == (64, 4, 3, 6, 7)
    mirrored = 0
    for row in range(64):
        obs = batch.obs[row]
        for k in range(4):
            if not batch.policy_mask[row, k]:
                break
            # recover the state: find the game position whose (maybe mirrored) observation it is
            candidates = [(s, sym) for g in games for s in g["states"] for sym in (0, 1)
                          if np.array_equal(game.transform_observations(
                              game.observation(s[None]), np.array([sym]))[0], obs)]
            assert candidates
            state, sym = candidates[0]
            mirrored += sym
            moved = game.transform_states(state[None], sym)
            legal = game.legal_mask(moved)[0]
            assert legal[batch.actions[row, k]]
            assert not batch.policy[row, k][~legal].any()
            nxt = game.step(moved, batch.actions[row, k:k + 1])
            obs = batch.future_obs[row, k]
            np.testing.assert_array_equal(game.observation(nxt)[0], obs)
    assert mirrored > 0                   # some windows were mirrored


def test_shards_are_atomic_torn_temp_files_are_ignored_and_resume_rereads(tmp_path):
    game, games = random_connect4_games(7, np.random.default_rng(3))
    d = trajectory_dir(tmp_path)
    writer = write(d, games[:4], per_shard=2)
    assert writer.games_written == 4
    assert writer.positions_written == sum(len(g["states"]) for g in games[:4])
    # a shard being written when the worker was killed: a hidden temp file, torn
    (d / ".shard-00000000000000000001-w001-000000.npz.x1.tmp").write_bytes(b"PK\x03\x04torn")
    (d / "shard-00000000000000000002-w009-000000.npz").write_bytes(b"garbage")
    buf = TrajectoryBuffer(d, game, 10_000)
    with pytest.warns(RuntimeWarning, match="unreadable shard"):
        buf.refresh()
    assert buf.games_seen == 4 and len(buf.bad_shards) == 1
    # a restarted trainer reads the same shards: same window, same samples
    again = TrajectoryBuffer(d, game, 10_000)
    with pytest.warns(RuntimeWarning):
        again.refresh()
    a, b = buf.sample(16, np.random.default_rng(5)), again.sample(16, np.random.default_rng(5))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # the shard holds every position, the final one included, and reads as an AlphaZero shard
    az = ReplayBuffer(d, game, 10_000)
    with pytest.warns(RuntimeWarning):
        az.refresh()
    states, policy, value = az.positions()
    np.testing.assert_array_equal(states, np.concatenate([g["states"] for g in games[:4]]))
    first = games[0]
    T = len(first["actions"])
    # value: the outcome from the side to move; the winner (last mover) sees +1
    winner = first["to_play"][T - 1] if first["rewards"][-1] > 0 else None
    if winner is not None:
        expected = np.where(first["to_play"][:T] == winner, 1.0, -1.0)
        np.testing.assert_array_equal(value[:T], expected)
    assert value[T] == 0 and not policy[T].any()
    # new shards are picked up by refresh
    write(d, games[4:], worker=1)
    assert buf.refresh() == sum(len(g["states"]) for g in games[4:]) and buf.games_seen == 7


def test_window_evicts_whole_oldest_games(tmp_path):
    game, games = random_connect4_games(6, np.random.default_rng(4))
    lengths = [len(g["states"]) for g in games]
    write(tmp_path, games, per_shard=2)
    window = lengths[-1] + lengths[-2] + 3      # the two newest games and a bit of a third
    buf = TrajectoryBuffer(tmp_path, game, window)
    buf.refresh()
    # the game the cut would split is kept whole: the three newest games
    assert len(buf) == sum(lengths[-3:])
    states = buf.positions()[0]
    np.testing.assert_array_equal(states, np.concatenate([g["states"] for g in games[-3:]]))
    assert buf.num_windows == sum(lengths[-3:]) - 3
    keys = {tuple(o.ravel()) for o in buf.sample(200, np.random.default_rng(0), augment=False).obs}
    allowed = {tuple(game.observation(g["states"][:-1]).reshape(len(g["states"]) - 1, -1)[i])
               for g in games[-3:] for i in range(len(g["states"]) - 1)}
    assert keys <= allowed


def test_writer_checks_shapes(tmp_path):
    g = line_game(0, [0, 1, 0], [0, 1.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="disagree"):
        TrajectoryWriter(tmp_path, 0).add_trajectory(**{**g, "to_play": np.array([0, 1])})
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        TrajectoryWriter(tmp_path, 0).add_trajectory(**{**g, "actions": np.array([0, 3])})
    assert os.listdir(tmp_path) == []
