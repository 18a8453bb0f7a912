import os

import numpy as np
import pytest

from fake_games import DropThree, random_games
from azero.replay import ReplayBuffer, ShardWriter, replay_dir, shard_name, write_shard


@pytest.fixture
def game():
    return DropThree()


def _write_games(directory, game, n_games, worker=0, seed=0, games_per_shard=2):
    writer = ShardWriter(directory, worker=worker, games_per_shard=games_per_shard)
    games = random_games(game, n_games, np.random.default_rng(seed))
    for states, policy, value in games:
        writer.add_game(states, policy, value, root_value=np.zeros(len(value), np.float32))
    writer.flush()
    return writer, games


def test_shard_names_sort_by_time_and_are_unique_per_worker_and_seq():
    names = [shard_name(1, 0, 5), shard_name(0, 0, 10), shard_name(1, 1, 10), shard_name(0, 0, 10**18)]
    assert sorted(names) == names
    assert len(set(names)) == len(names)


def test_writer_writes_atomically_named_complete_shards(tmp_path, game):
    d = replay_dir(tmp_path)
    writer, games = _write_games(d, game, 5, games_per_shard=2)
    files = sorted(os.listdir(d))
    assert len(files) == 3 and all(f.startswith("shard-") and f.endswith(".npz") for f in files)
    assert writer.games_written == 5 and writer.positions_written == sum(len(g[2]) for g in games)
    with np.load(d / files[0]) as data:
        assert int(data["num_games"]) == 2
        n = len(games[0][2]) + len(games[1][2])
        assert data["states"].shape == (n, game.spec.state_size) and data["states"].dtype == np.int64
        assert data["policy"].shape == (n, 4) and data["value"].shape == (n,)
        assert data["root_value"].shape == (n,)
        np.testing.assert_array_equal(data["states"][: len(games[0][0])], games[0][0])


def test_write_shard_checks_shapes(tmp_path):
    with pytest.raises(ValueError, match="disagree"):
        write_shard(tmp_path, 0, 0, np.zeros((3, 16)), np.zeros((2, 4)), np.zeros(3), num_games=1)
    assert list(tmp_path.iterdir()) == []


def test_reader_picks_up_new_shards_and_ignores_temp_and_junk(tmp_path, game):
    d = replay_dir(tmp_path)
    buf = ReplayBuffer(d, game, window_positions=10_000)
    assert buf.refresh() == 0 and len(buf) == 0            # folder does not exist yet
    _, games1 = _write_games(d, game, 3, worker=0, seed=1)
    n1 = sum(len(g[2]) for g in games1)
    assert buf.refresh() == n1 and buf.games_seen == 3 and len(buf) == n1
    assert buf.refresh() == 0                                # nothing new: nothing re-read
    # a write in progress (hidden temp name), an unrelated file, a corrupt shard
    (d / ".shard-00000000000000000001-w000-000000.npz.abc.tmp").write_bytes(b"partial")
    (d / "notes.txt").write_text("hello")
    (d / "shard-00000000000000000002-w009-000000.npz").write_bytes(b"garbage")
    _, games2 = _write_games(d, game, 2, worker=1, seed=2)
    n2 = sum(len(g[2]) for g in games2)
    with pytest.warns(RuntimeWarning, match="unreadable shard"):
        assert buf.refresh() == n2
    assert buf.games_seen == 5 and buf.positions_seen == n1 + n2 and len(buf.bad_shards) == 1
    assert buf.refresh() == 0                                # the bad one is not retried
    # the window holds exactly what was written, oldest first
    states, policy, value = buf.positions()
    np.testing.assert_array_equal(states, np.concatenate([g[0] for g in games1 + games2]))
    np.testing.assert_array_equal(policy, np.concatenate([g[1] for g in games1 + games2]))
    np.testing.assert_array_equal(value, np.concatenate([g[2] for g in games1 + games2]))


def test_window_keeps_exactly_the_newest_positions(tmp_path, game):
    d = replay_dir(tmp_path)
    buf = ReplayBuffer(d, game, window_positions=20)
    all_states = []
    for seed in range(6):
        _, games = _write_games(d, game, 2, seed=seed)
        all_states += [g[0] for g in games]
        buf.refresh()
        expected = np.concatenate(all_states)[-20:]
        np.testing.assert_array_equal(buf.positions()[0], expected)
        assert len(buf) == len(expected)
    assert buf.positions_seen == sum(len(s) for s in all_states)
    # a fresh reader over the same folder (a restarted trainer) sees the same window and counts
    again = ReplayBuffer(d, game, window_positions=20)
    again.refresh()
    np.testing.assert_array_equal(again.positions()[0], buf.positions()[0])
    assert (again.positions_seen, again.games_seen) == (buf.positions_seen, buf.games_seen)


def test_sample_shapes_and_augmentation_consistency(tmp_path, game):
    d = replay_dir(tmp_path)
    # distinct, asymmetric policy targets so a mirrored policy is recognisable
    writer = ShardWriter(d, worker=0, games_per_shard=100)
    for states, _, value in random_games(game, 20, np.random.default_rng(3)):
        mask = game.legal_mask(states)
        policy = mask * np.array([0.1, 0.2, 0.3, 0.4], np.float32)
        writer.add_game(states, policy / policy.sum(1, keepdims=True), value)
    writer.flush()
    buf = ReplayBuffer(d, game, window_positions=10_000)
    buf.refresh()
    states, policy, value = buf.positions()
    rng = np.random.default_rng(0)
    obs_b, pol_b, val_b, own_b, own_w = buf.sample(512, rng)
    assert own_b is None and own_w is None   # DropThree has no ownership targets
    assert obs_b.shape == (512, 3, 3, 4) and obs_b.dtype == np.float32
    assert pol_b.shape == (512, 4) and val_b.shape == (512,)
    np.testing.assert_allclose(pol_b.sum(1), 1, rtol=1e-5)
    # every sample is some stored position under identity or mirror, with policy and value matching
    obs_all = game.observation(states)
    mirrored = 0
    for o, p, v in zip(obs_b, pol_b, val_b):
        same = np.all(obs_all == o, axis=(1, 2, 3)) & np.all(policy == p, axis=1) & (value == v)
        mirror = (np.all(obs_all[..., ::-1] == o, axis=(1, 2, 3)) & np.all(policy[:, ::-1] == p, axis=1)
                  & (value == v))
        assert same.any() or mirror.any()
        mirrored += bool(mirror.any() and not same.any())
        # policy mass only on columns that are open in the (transformed) observed position
        open_cols = (o[0, -1] + o[1, -1]) == 0
        assert np.all(p[~open_cols] == 0)
    assert 100 < mirrored < 412         # both symmetries drawn
    obs_plain, pol_plain, *_ = buf.sample(64, rng, augment=False)
    for o, p in zip(obs_plain, pol_plain):
        assert np.any(np.all(obs_all == o, axis=(1, 2, 3)) & np.all(policy == p, axis=1))


def test_sample_from_empty_buffer_says_so(tmp_path, game):
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(tmp_path, game, 10).sample(4, np.random.default_rng())


def test_connect4_round_trip_and_mirror_augmentation(tmp_path):
    from azero import games
    game = games.make("connect4")
    rng = np.random.default_rng(0)
    writer = ShardWriter(tmp_path, worker=7, games_per_shard=4)
    s = game.initial_states(4)
    states, policies = [], []
    for _ in range(6):                       # 6 plies of 4 random games (never terminal this early)
        mask = game.legal_mask(s)
        weights = mask * rng.random(mask.shape)
        policy = (weights / weights.sum(1, keepdims=True)).astype(np.float32)
        states.append(s)
        policies.append(policy)
        s = game.step(s, policy.argmax(1))
    states, policies = np.stack(states, 1), np.stack(policies, 1)
    for g in range(4):
        writer.add_game(states[g], policies[g], np.zeros(6, np.float32))
    buf = ReplayBuffer(tmp_path, game, 1000)
    buf.refresh()
    assert len(buf) == 24 and buf.games_seen == 4
    all_states, all_policy, _ = buf.positions()
    obs, pol, *_ = buf.sample(64, rng)
    perm = game.spec.action_permutations
    for o, p in zip(obs, pol):
        found = False
        for k in range(game.spec.num_symmetries):
            t = game.transform_states(all_states, k)
            # symmetry k moves action a to perm[k, a]
            moved = np.zeros_like(all_policy)
            moved[:, perm[k]] = all_policy
            hit = np.all(game.observation(t) == o, axis=(1, 2, 3)) & np.all(moved == p, axis=1)
            found |= bool(hit.any())
        assert found


def test_shard_writer_refuses_games_with_different_fields(tmp_path):
    writer = ShardWriter(tmp_path, worker=0, games_per_shard=8)
    states, policy, value = np.zeros((2, 3), np.int64), np.full((2, 2), 0.5, np.float32), np.zeros(2)
    writer.add_game(states, policy, value, extra_field=np.zeros(2))
    with pytest.raises(ValueError, match="same fields"):
        writer.add_game(states, policy, value)
    assert writer.pending_games == 1
    assert writer.flush() is not None                # what was accepted is still written


def _go9_positions(n_games=6, plies=30, seed=0):
    """Random go9 games: states [n_games * plies, S] (asymmetric boards with many stones)."""
    from azero import games
    game = games.make("go9")
    rng = np.random.default_rng(seed)
    s = game.initial_states(n_games)
    rows = []
    for _ in range(plies):
        rows.append(s)
        mask = game.legal_mask(s)
        mask[:, 81] = False                               # no passes: keep the boards busy
        s = game.step(s, np.array([rng.choice(np.flatnonzero(m)) for m in mask]))
    return game, np.stack(rows, 1)                        # [games, plies, S]


def test_go9_ownership_is_stored_and_augmented_like_the_stone_planes(tmp_path):
    game, states = _go9_positions()
    writer = ShardWriter(tmp_path, worker=0, games_per_shard=3)
    for g in states:
        mask = game.legal_mask(g)
        writer.add_game(g, mask / mask.sum(1, keepdims=True), np.zeros(len(g), np.float32),
                        ownership=game.ownership(g))      # int8 [T, 9, 9], side to move's view
    writer.flush()
    buf = ReplayBuffer(tmp_path, game, 10_000)
    buf.refresh()
    assert buf.has_ownership
    all_states, _, _ = buf.positions()
    stored = buf.ownership_targets()
    assert stored.dtype == np.int8 and stored.shape == (len(all_states), 9, 9)
    np.testing.assert_array_equal(stored, game.ownership(all_states))
    rng = np.random.default_rng(1)
    batch = buf.sample(96, rng)
    assert batch.ownership.shape == (96, 9, 9) and batch.ownership.dtype == np.float32
    # The target moves with the stones: own stones of the sampled (transformed) observation are
    # +1, the opponent's -1.
    assert np.all(batch.ownership[batch.obs[:, 0] == 1] == 1)
    assert np.all(batch.ownership[batch.obs[:, 1] == 1] == -1)
    # And exactly: each sample is stored position i under symmetry k (found from the rules'
    # transform_states), and its target is the ownership of that transformed position.
    transformed = [game.transform_states(all_states, k) for k in range(8)]
    observed = [game.observation(t) for t in transformed]
    used = set()
    for o, own, p in zip(batch.obs, batch.ownership, batch.policy):
        hits = [(k, i) for k in range(8)
                for i in np.flatnonzero(np.all(observed[k] == o, axis=(1, 2, 3)))]
        assert hits
        k, i = hits[0]
        used.add(k)
        np.testing.assert_array_equal(own, game.ownership(transformed[k][i:i + 1])[0])
        legal = game.legal_mask(transformed[k][i:i + 1])[0]
        assert np.all(p[~legal] == 0)                     # the policy moved the same way
    assert len(used) >= 6                                 # the symmetries were really drawn
    plain = buf.sample(16, rng, augment=False)
    assert plain.ownership is not None and np.all(plain.ownership[plain.obs[:, 0] == 1] == 1)


def test_a_mixed_window_samples_ownership_with_weight_0_where_there_is_none(tmp_path):
    """An old shard without ownership does not switch ownership off for the whole window: its
    positions come with weight 0 (zero target), the others with their stored weight (1 if the
    shard predates ownership_weight, 0 for a resigned game)."""
    game, states = _go9_positions(n_games=3, plies=10)
    policy = np.full((10, 82), 1 / 82, np.float32)
    write_shard(tmp_path, 0, 0, states[0], policy, np.zeros(10, np.float32), 1)   # no ownership
    write_shard(tmp_path, 0, 1, states[1], policy, np.zeros(10, np.float32), 1,
                ownership=game.ownership(states[1]))                # no weights: all exact
    write_shard(tmp_path, 0, 2, states[2], policy, np.zeros(10, np.float32), 1,
                ownership=np.zeros((10, 9, 9), np.int8), ownership_weight=np.zeros(10, np.uint8))
    buf = ReplayBuffer(tmp_path, game, 30)
    buf.refresh()
    assert buf.has_ownership
    np.testing.assert_array_equal(buf.ownership_weights(), np.repeat([0.0, 1.0, 0.0], 10))
    own = buf.ownership_targets()
    assert not own[:10].any() and not own[20:].any()
    np.testing.assert_array_equal(own[10:20], game.ownership(states[1]))
    batch = buf.sample(64, np.random.default_rng(0), augment=False)
    assert batch.ownership.shape == (64, 9, 9) and batch.ownership_weight.shape == (64,)
    assert 0 < batch.ownership_weight.sum() < 64
    assert not batch.ownership[batch.ownership_weight == 0].any()
    exact = batch.ownership_weight == 1
    assert np.all(batch.ownership[exact][batch.obs[exact, 0] == 1] == 1)


def test_samples_of_games_without_ownership_have_none(tmp_path, game):
    _write_games(tmp_path, game, 3)
    buf = ReplayBuffer(tmp_path, game, 1000)
    buf.refresh()
    batch = buf.sample(8, np.random.default_rng())
    assert batch.ownership is None and batch.ownership_weight is None


def test_ownership_of_the_wrong_shape_is_a_bad_shard(tmp_path):
    game, states = _go9_positions(n_games=1, plies=4)
    write_shard(tmp_path, 0, 0, states[0], np.full((4, 82), 1 / 82, np.float32), np.zeros(4), 1,
                ownership=np.zeros((4, 7, 7), np.int8))
    buf = ReplayBuffer(tmp_path, game, 100)
    with pytest.warns(RuntimeWarning, match="ownership"):
        buf.refresh()
    assert len(buf) == 0


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_states_of_any_dtype_go_through_replay_unchanged(tmp_path, dtype):
    """A game whose states are uint8 / int32 rows: shards store them as they are, the window gives
    them back bit for bit in that dtype, and sampling observes them through the game."""
    from fake_games import SmallTicTacToe
    game = SmallTicTacToe(dtype, max_game_length=9)
    d = replay_dir(tmp_path)
    rng = np.random.default_rng(5)
    games = []
    for _ in range(12):                          # random games: positions, uniform policy, values
        s, states = game.initial_states(1), []
        while not game.terminal(s)[0]:
            states.append(s[0])
            s = game.step(s, [rng.choice(np.flatnonzero(game.legal_mask(s)[0]))])
        mask = game.legal_mask(np.array(states))
        games.append((np.array(states), (mask / mask.sum(1, keepdims=True)).astype(np.float32),
                      rng.uniform(-1, 1, len(states)).astype(np.float32)))
    writer = ShardWriter(d, worker=0, games_per_shard=5)
    for states, policy, value in games:
        assert states.dtype == dtype
        writer.add_game(states, policy, value)
    writer.flush()
    with np.load(writer.shards_written[0]) as data:
        assert data["states"].dtype == dtype
    buf = ReplayBuffer(d, game, window_positions=10_000)
    buf.refresh()
    states, _, value = buf.positions()
    assert states.dtype == dtype
    np.testing.assert_array_equal(states, np.concatenate([g[0] for g in games]))
    batch = buf.sample(64, np.random.default_rng(0))    # mirror symmetry on dtype rows
    assert batch.obs.shape == (64, 2, 3, 3)
    obs_all = game.observation(states)
    for o in batch.obs:
        assert np.any(np.all(obs_all == o, axis=(1, 2, 3))
                      | np.all(obs_all[..., ::-1] == o, axis=(1, 2, 3)))


def test_a_shard_whose_state_dtype_does_not_fit_the_game_is_skipped(tmp_path):
    from fake_games import SmallTicTacToe
    d = replay_dir(tmp_path)
    d.mkdir(parents=True)
    states = SmallTicTacToe(np.int32).initial_states(3)
    write_shard(d, 0, 0, states, np.full((3, 9), 1 / 9, np.float32), np.zeros(3), num_games=1)
    buf = ReplayBuffer(d, SmallTicTacToe(np.uint8), window_positions=100)
    with pytest.warns(RuntimeWarning, match="states dtype int32 does not fit"):
        assert buf.refresh() == 0
