"""Differential test: our Connect Four against OpenSpiel's connect_four (C++), on random games.

At every ply of every game: the same legal moves, the same terminal flag, the same returns, and the
same board (OpenSpiel's observation tensor: [first player's stones, second player's, empty] planes
with row 0 at the bottom; ours is [own, opponent] with row 0 at the top). OpenSpiel's action is
the column 0..6, as ours."""
import numpy as np
import pytest

from azero.games.connect4.game import ConnectFour

pyspiel = pytest.importorskip("pyspiel")


def play_both(num_games: int, seed: int) -> int:
    """Plays `num_games` random games in lockstep on both implementations; returns plies played."""
    game = ConnectFour()
    spiel_game = pyspiel.load_game("connect_four")
    rng = np.random.default_rng(seed)
    spiel = [spiel_game.new_initial_state() for _ in range(num_games)]
    states = game.initial_states(num_games)
    live = np.arange(num_games)
    plies = 0
    for ply in range(game.spec.max_game_length + 1):
        mask = game.legal_mask(states)
        terminal = game.terminal(states)
        result = game.result(states)
        to_play = game.to_play(states)
        obs = game.observation(states)
        for i in live:
            s = spiel[i]
            where = f"game {i} (seed {seed}) after {ply} plies: {s.history()}"
            assert s.is_terminal() == terminal[i], where
            assert np.flatnonzero(mask[i]).tolist() == s.legal_actions(), where
            assert s.returns()[to_play[i]] == result[i], where
            assert s.returns()[1 - to_play[i]] == -result[i], where
            theirs = np.asarray(s.observation_tensor(0)).reshape(3, 6, 7)[:2, ::-1]
            ours = obs[i, :2] if to_play[i] == 0 else obs[i, 1::-1]
            assert np.array_equal(ours, theirs), where
        live = live[~terminal[live]]
        if len(live) == 0:
            return plies
        actions = np.zeros(num_games, dtype=np.int64)
        for i in live:
            legal = np.flatnonzero(mask[i])
            actions[i] = legal[rng.integers(len(legal))]
            spiel[i].apply_action(int(actions[i]))
        states[live] = game.step(states[live], actions[live])
        plies += len(live)
    raise AssertionError("games longer than 42 plies")


def test_random_games_agree_with_openspiel():
    plies = play_both(num_games=2000, seed=0)
    assert plies > 2000 * 7


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(1, 11))
def test_many_random_games_agree_with_openspiel(seed):
    play_both(num_games=10000, seed=seed)
