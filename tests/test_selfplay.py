"""Self-play engine: games in lockstep, restarts, value targets, resignation bookkeeping."""
import numpy as np
import pytest

from fake_games import uniform_evaluator

from azero.config import SelfPlayConfig
from azero.games import make
from azero.search import SearchConfig
from azero.selfplay import SelfPlay


def play_until(sp, evaluator, games):
    finished = []
    for _ in range(500):
        finished += sp.play_move(evaluator)
        if len(finished) >= games:
            return finished
    raise AssertionError("games did not finish")


def _recording(sp):
    """Makes `sp` record the search's root values of every position it searches: state bytes ->
    the set of root values (a position searched in several games may get several)."""
    roots = {}
    run = sp.search.run

    def recording_run(states, *args, **kw):
        out = run(states, *args, **kw)
        for s, v in zip(states, out.root_value):
            roots.setdefault(s.tobytes(), set()).add(np.float32(v))
        return out

    sp.search.run = recording_run
    return roots


@pytest.mark.parametrize("algorithm", ["gumbel", "puct"])
def test_finished_games_replay_to_their_result(algorithm):
    game = make("connect4")
    sp = SelfPlay(game, SearchConfig(algorithm=algorithm, num_simulations=8),
                  SelfPlayConfig(games_per_worker=6, temperature_moves=4), seed=1)
    finished = play_until(sp, uniform_evaluator(game.spec.num_actions), 12)
    for g in finished:
        # The recorded positions are exactly the game replayed from the start.
        state = game.initial_states(1)
        assert np.array_equal(g.states[0], state[0])
        for t, a in enumerate(g.actions):
            assert np.array_equal(g.states[t], state[0])
            assert game.legal_mask(state)[0, a]
            state = game.step(state, np.array([a]))
        assert game.terminal(state)[0]
        # Result from player 0's view matches the rules' verdict on the final position.
        final_mover = 1 - game.to_play(state)[0]   # who made the last move
        r = game.result(state)[0]                  # side to move's view, so -1 if last mover won
        expected_first = -r if final_mover == 0 else r
        assert g.result_first_player == expected_first
        # Value targets: the final result from each position's side to move, alternating.
        to_play = game.to_play(g.states)
        np.testing.assert_array_equal(
            g.value_targets, np.where(to_play == 0, expected_first, -expected_first))
        # Policy targets are distributions over the legal moves.
        legal = game.legal_mask(g.states)
        np.testing.assert_allclose(g.policy_targets.sum(1), 1.0, rtol=1e-5)
        assert np.all(g.policy_targets[~legal] == 0)


def test_rows_restart_and_keep_playing():
    game = make("connect4")
    sp = SelfPlay(game, SearchConfig(num_simulations=4), SelfPlayConfig(games_per_worker=3), seed=0)
    finished = play_until(sp, uniform_evaluator(game.spec.num_actions), 9)
    assert len(finished) >= 9
    assert not game.terminal(sp.states).any()


def test_resignation_by_the_losing_side_and_playouts_measure_it():
    game = make("connect4")

    # An evaluator that makes player 1 believe it is lost: player 1 resigns on its 2nd move.
    def gloomy_for_player1(states):
        n = len(states)
        v = np.where(game.to_play(states) == 1, -1.0, 1.0).astype(np.float32)  # leaf's mover view
        return np.zeros((n, 7), np.float32), v

    settings = SelfPlayConfig(games_per_worker=8, resign_threshold=-0.5, resign_consecutive=2,
                              resign_playout_fraction=0.5)
    sp = SelfPlay(game, SearchConfig(algorithm="puct", num_simulations=8), settings, seed=3)
    finished = play_until(sp, gloomy_for_player1, 16)
    resigned = [g for g in finished if g.resigned]
    played_out = [g for g in finished if not g.resigned]
    assert resigned and played_out
    for g in resigned:
        assert g.result_first_player == 1.0          # player 1 resigned
        assert len(g.actions) == 4                   # after its second move's search
    for g in played_out:
        # Every played-out game had a resignation due; whether it was false is recorded.
        assert g.false_resignation is not None
        assert g.false_resignation == (g.result_first_player <= 0)


def _replay(game, actions):
    state = game.initial_states(1)
    for a in actions:
        state = game.step(state, np.array([a]))
    return state[0]


def test_go9_ownership_targets_are_the_final_board_from_each_side_to_move():
    game = make("go9")
    sp = SelfPlay(game, SearchConfig(num_simulations=2, max_num_considered_actions=2),
                  SelfPlayConfig(games_per_worker=3, max_moves=24), seed=5)
    finished = play_until(sp, uniform_evaluator(game.spec.num_actions), 3)
    for g in finished:
        own = g.ownership_targets
        assert own.dtype == np.int8 and own.shape == (len(g.actions), 9, 9)
        final = _replay(game, g.actions)
        if not game.terminal(final[None])[0]:         # capped by max_moves: no scored end
            assert not own.any() and not g.ownership_weight.any()
            continue
        np.testing.assert_array_equal(g.ownership_weight, np.ones(len(g.actions)))
        # Sign, independent of Go9.ownership's own convention: a Black stone on the final board
        # is +1 for positions with Black to move and -1 for positions with White to move.
        grid = game.grid(final)
        to_play = game.to_play(g.states)
        black_view = own * np.where(to_play == 0, 1, -1).astype(np.int8)[:, None, None]
        assert (grid == 0).any() and (grid == 1).any()
        assert np.all(black_view[:, grid == 0] == 1) and np.all(black_view[:, grid == 1] == -1)
        # Black's view is the same final area at every ply; it is the rules' ownership.
        assert np.all(black_view == black_view[0])
        final_sign = 1 if game.to_play(final[None])[0] == 0 else -1
        final_view = game.ownership(final[None])[0] * final_sign
        np.testing.assert_array_equal(black_view[0], final_view)


def test_go9_resigned_or_capped_games_have_ownership_weight_0():
    """The last board of a resigned game is not its score (the resigner's dead stones would be
    labelled its own): such games carry a zero target and weight 0, like truncated ones."""
    game = make("go9")

    def gloomy_for_white(states):       # White believes it is lost and resigns on its 2nd move
        v = np.where(game.to_play(states) == 1, -1.0, 1.0).astype(np.float32)
        return np.zeros((len(states), 82), np.float32), v

    settings = SelfPlayConfig(games_per_worker=2, resign_threshold=-0.5, resign_consecutive=2,
                              resign_playout_fraction=0.0)
    sp = SelfPlay(game, SearchConfig(algorithm="puct", num_simulations=4), settings, seed=2)
    finished = play_until(sp, gloomy_for_white, 2)
    for g in finished:
        assert g.resigned and len(g.actions) == 4
        final = _replay(game, g.actions)          # White's resigning move is on the board
        assert game.ownership(final[None]).any()  # the board as it stands would give a target
        assert g.ownership_targets.shape == (4, 9, 9) and not g.ownership_targets.any()
        assert g.ownership_weight.dtype == np.float32
        np.testing.assert_array_equal(g.ownership_weight, np.zeros(4))
    capped = SelfPlay(game, SearchConfig(num_simulations=2, max_num_considered_actions=2),
                      SelfPlayConfig(games_per_worker=2, max_moves=6), seed=1)
    for g in play_until(capped, uniform_evaluator(game.spec.num_actions), 2):
        if not game.terminal(_replay(game, g.actions)[None])[0]:
            assert not g.ownership_targets.any() and not g.ownership_weight.any()


def test_games_without_ownership_have_no_targets():
    game = make("connect4")
    sp = SelfPlay(game, SearchConfig(num_simulations=2), SelfPlayConfig(games_per_worker=2), seed=0)
    assert all(g.ownership_targets is None
               for g in play_until(sp, uniform_evaluator(game.spec.num_actions), 2))


def test_value_target_mixes_the_result_with_the_root_value():
    """value_target_root_weight w: targets (1 - w) z + w q, q the search's root value of that
    very position (recorded here from the search's own outputs)."""
    game = make("connect4")

    def evaluator(states):                   # deterministic, state-dependent values
        values = np.sin(states.astype(np.float64).sum(axis=1)).astype(np.float32)
        return np.zeros((len(states), game.spec.num_actions), np.float32), values

    finished = {}
    for w in (0.0, 0.25):
        sp = SelfPlay(game, SearchConfig(num_simulations=8),
                      SelfPlayConfig(games_per_worker=2, add_noise=False,
                                     value_target_root_weight=w), seed=3)
        roots = _recording(sp)
        finished[w] = (play_until(sp, evaluator, 2)[0], roots)
    (plain, _), (mixed, roots) = finished[0.0], finished[0.25]
    assert np.array_equal(plain.states, mixed.states)           # same game: play is unchanged
    assert all(len(roots[s.tobytes()]) == 1 for s in mixed.states)   # no noise: one value each
    q = np.array([next(iter(roots[s.tobytes()])) for s in mixed.states], np.float32)
    assert np.abs(q).max() > 0.05                               # a real signal to mix in
    np.testing.assert_allclose(mixed.value_targets, 0.75 * plain.value_targets + 0.25 * q,
                               atol=1e-6)


@pytest.mark.parametrize("game_name", ["connect4", "go9"])
def test_random_openings_are_replayable_and_not_recorded(game_name):
    """A share of games opens with 1..K uniformly random moves: those moves are kept in
    `opening` (so the record replays), their positions are not recorded, and the game is played
    on from the position after them."""
    game = make(game_name)
    K = 6
    sp = SelfPlay(game, SearchConfig(num_simulations=2),
                  SelfPlayConfig(games_per_worker=8, random_opening_fraction=0.5,
                                 random_opening_max_moves=K,
                                 max_moves=None if game_name == "connect4" else 30), seed=5)
    finished = play_until(sp, uniform_evaluator(game.spec.num_actions), 24)
    lengths = np.array([len(g.opening) for g in finished])
    assert lengths.max() <= K
    # About half the games have an opening (24+ games: both kinds occur).
    assert (lengths == 0).any() and (lengths > 0).any()
    for g in finished:
        state = game.initial_states(1)
        for a in g.opening:
            assert game.legal_mask(state)[0, a]
            state = game.step(state, np.array([a]))
            assert not game.terminal(state)[0]
        # The first recorded position is the one after the opening.
        assert np.array_equal(g.states[0], state[0])
        assert game.move_number(g.states[:1])[0] == len(g.opening)


def test_random_openings_cover_every_legal_move():
    """The random moves are uniform over the legal moves: every column occurs as a first move."""
    game = make("connect4")
    sp = SelfPlay(game, SearchConfig(num_simulations=2),
                  SelfPlayConfig(games_per_worker=700, random_opening_fraction=1.0,
                                 random_opening_max_moves=1), seed=2)
    firsts = [log.opening[0] for log in sp.logs]
    counts = np.bincount(firsts, minlength=7)
    # 700 draws over 7 columns: 100 each expected, sd ~9.3
    assert counts.min() >= 60 and counts.max() <= 140, counts


@pytest.mark.parametrize("extra, says", [
    ({"random_opening_max_moves": 42}, "42 random moves would fill"),
    ({"random_opening_max_moves": 10, "max_moves": 10}, "selfplay.max_moves"),
])
def test_random_openings_that_leave_nothing_to_search_are_config_errors(extra, says):
    from azero.config import ConfigError
    settings = SelfPlayConfig(games_per_worker=2, random_opening_fraction=0.5, **extra)
    with pytest.raises(ConfigError, match="selfplay.random_opening_max_moves") as e:
        SelfPlay(make("connect4"), SearchConfig(num_simulations=2), settings)
    assert says in str(e.value)


def test_openings_that_keep_ending_the_game_give_up(monkeypatch):
    """Redraws are bounded: a setting whose openings end the game raises instead of spinning."""
    import azero.openings as openings
    monkeypatch.setattr(openings, "REDRAWS_PER_OPENING", 0)
    settings = SelfPlayConfig(games_per_worker=64, random_opening_fraction=1.0,
                              random_opening_max_moves=36)
    with pytest.raises(RuntimeError, match="keep ending connect4 games"):
        SelfPlay(make("connect4"), SearchConfig(num_simulations=2), settings, seed=0)


def _valued(game):
    def evaluator(states):                   # deterministic, state-dependent, never 0 values
        values = (0.2 + 0.7 * np.abs(np.sin(states.astype(np.float64).sum(axis=1)))) \
            * np.where(game.to_play(states) == 0, 1.0, -1.0)
        return np.zeros((len(states), game.spec.num_actions), np.float32), values.astype(np.float32)
    return evaluator


@pytest.mark.parametrize("cut_by", ["game cap", "max_moves"])
def test_truncated_games_take_the_search_value_never_a_draw(cut_by):
    """Tic-tac-toe with uint8 states, cut off at 6 plies by its own cap or by selfplay.max_moves:
    a cut-off game has no result (None) and its value targets are the search's root values, with
    value_target_root_weight ignored (there is no z to mix); games over by the rules keep z."""
    from fake_games import SmallTicTacToe
    game = SmallTicTacToe(np.uint8, max_game_length=6 if cut_by == "game cap" else 9)
    settings = SelfPlayConfig(games_per_worker=8, value_target_root_weight=0.5,
                              max_moves=None if cut_by == "game cap" else 6)
    sp = SelfPlay(game, SearchConfig(num_simulations=8), settings, seed=4)
    roots = _recording(sp)
    finished = play_until(sp, _valued(game), 24)
    truncated = [g for g in finished if g.truncated]
    over = [g for g in finished if not g.truncated]
    assert truncated and over
    for g in finished:
        assert g.states.dtype == np.uint8 and g.for_training
        searched = [roots[s.tobytes()] for s in g.states]
        final = game.step(g.states[-1:], g.actions[-1:])
        if g.truncated:
            assert len(g.actions) == 6 and not game.terminal(final)[0]
            assert g.result_first_player is None
            assert all(v in q for v, q in zip(g.value_targets, searched))
            assert np.all(g.value_targets != 0)
        else:
            assert game.terminal(final)[0]
            z = np.where(game.to_play(g.states) == 0, g.result_first_player,
                         -g.result_first_player)
            mixed = [{np.float32(0.5 * zt + 0.5 * v) for v in q} for zt, q in zip(z, searched)]
            assert all(np.isclose(list(m), t, atol=1e-6).any()
                       for t, m in zip(g.value_targets, mixed))


def test_truncated_games_can_be_left_out_of_training():
    from fake_games import SmallTicTacToe
    game = SmallTicTacToe(np.uint8, max_game_length=6)
    sp = SelfPlay(game, SearchConfig(num_simulations=4),
                  SelfPlayConfig(games_per_worker=8, truncated_value_target="drop"), seed=4)
    finished = play_until(sp, _valued(game), 24)
    assert any(g.truncated for g in finished) and not all(g.truncated for g in finished)
    for g in finished:
        assert g.for_training == (not g.truncated)
        assert np.all(g.value_targets != 0) or not g.truncated


def test_go9_games_are_truncated_at_the_rules_cap_not_scored():
    """Go's move cap is a truncation: no result, no ownership target, search values."""
    from azero.games.go9.game import Go9
    game = Go9(max_game_length=12)
    sp = SelfPlay(game, SearchConfig(num_simulations=2, max_num_considered_actions=2),
                  SelfPlayConfig(games_per_worker=2), seed=1)
    roots = _recording(sp)
    finished = play_until(sp, _valued(game), 2)
    for g in finished:
        assert g.truncated and g.result_first_player is None and len(g.actions) == 12
        assert not g.ownership_weight.any() and not g.ownership_targets.any()
        assert all(v in roots[s.tobytes()] for v, s in zip(g.value_targets, g.states))


def test_an_unknown_truncated_value_target_names_the_key():
    from azero.config import ConfigError, load_config
    with pytest.raises(ConfigError, match="selfplay.truncated_value_target: must be one of"):
        SelfPlayConfig(games_per_worker=2, truncated_value_target="draw")
    with pytest.raises(ConfigError, match="selfplay.games_per_worker: must be >= 1"):
        SelfPlayConfig(games_per_worker=0)
    with pytest.raises(ConfigError, match="selfplay.truncated_value_target: must be one of"):
        load_config("connect4_tiny", ["selfplay.truncated_value_target=zero"])
    assert load_config("connect4_tiny").selfplay.truncated_value_target == "search"
