"""The conformance suite (games/conformance.py) run against every registered game."""
import numpy as np
import pytest

from azero import games
from azero.games import conformance

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module", params=games.names())
def game(request):
    return games.make(request.param)


@pytest.fixture(scope="module")
def playouts(game):
    """Random playouts per seed; building them already checks every step (batched equals
    one-by-one, masks vs terminal, move numbers, game length, inputs untouched, step_with_info
    equals the separate calls)."""
    return {seed: conformance.random_playouts(game, seed=seed, num_games=16) for seed in SEEDS}


def test_spec(game):
    conformance.check_spec(game)


def test_initial_states(game):
    conformance.check_initial_states(game)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_playouts(game, playouts, seed):
    p = playouts[seed]
    assert not (p.terminal & p.truncated).any()
    assert (p.terminal | p.truncated).sum() == len(p.lengths), \
        "every game ends in exactly one terminal or truncated state"
    assert np.all((p.lengths >= 1) & (p.lengths <= game.spec.max_game_length))
    assert (p.lengths == game.spec.max_game_length).sum() >= p.truncated.sum(), \
        "a game was cut off before the move cap"


@pytest.mark.parametrize("seed", SEEDS)
def test_terminal_stays_terminal(game, playouts, seed):
    p = playouts[seed]
    conformance.check_terminal_stays_terminal(game, p.states[p.terminal])


@pytest.mark.parametrize("seed", SEEDS)
def test_truncated_states_go_on(game, playouts, seed):
    p = playouts[seed]
    conformance.check_truncated(game, p.states[p.truncated], seed=seed)


@pytest.mark.parametrize("check", conformance.POSITION_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("seed", SEEDS)
def test_position_checks(game, playouts, check, seed):
    check(game, conformance.subsample(playouts[seed], seed), seed=seed)


# A small game with a move cap below its natural length (tic-tac-toe cut at 6 plies) and uint8
# states: the suite's truncation checks on a game where many games are cut off.

def test_a_game_with_truncations_and_uint8_states_conforms():
    from fake_games import SmallTicTacToe
    game = SmallTicTacToe(np.uint8, max_game_length=6)
    p = conformance.random_playouts(game, seed=0, num_games=32)
    assert p.truncated.sum() > 5 and p.terminal.sum() > 0
    assert p.states.dtype == np.uint8
    conformance.run_all(game)


@pytest.mark.parametrize("fault, says", [
    ("never_truncated", "live games at the move cap"),
    ("truncated_when_over", "both terminal and truncated"),
])
def test_the_suite_catches_truncation_faults(fault, says):
    from fake_games import SmallTicTacToe

    class Faulty(SmallTicTacToe):
        def truncated(self, states):
            if fault == "never_truncated":        # the cap ignored: a live game at the cap
                return np.zeros(len(states), bool)
            return super().truncated(states) | self.terminal(states)

    with pytest.raises(AssertionError, match=says):
        conformance.random_playouts(Faulty(np.uint8, max_game_length=6), seed=0, num_games=32)


def test_check_truncated_refuses_a_cut_off_state_without_moves():
    from fake_games import SmallTicTacToe

    class Stuck(SmallTicTacToe):                    # no legal move once cut off, yet not over
        def legal_mask(self, states):
            return super().legal_mask(states) & ~self.truncated(states)[:, None]

    game = Stuck(np.uint8, max_game_length=6)
    with pytest.raises(AssertionError):
        conformance.random_playouts(game, seed=0, num_games=32)
    cut = SmallTicTacToe(np.uint8, max_game_length=6)
    p = conformance.random_playouts(cut, seed=0, num_games=32)
    with pytest.raises(AssertionError, match="no legal move"):
        conformance.check_truncated(game, p.states[p.truncated])


def test_the_suite_holds_a_game_to_its_alternating_turns_promise():
    """A game whose spec promises alternating turns but whose player moves twice in a row (to_play
    changes every second ply) fails the random playouts; the search would back up wrong signs."""
    from azero.games.connect4.game import ConnectFour

    class TwiceEach(ConnectFour):
        def to_play(self, states):
            return ((np.asarray(states)[:, self.rules.PLY] // 2) & 1).astype(np.int8)

    assert TwiceEach.spec.alternating_turns
    with pytest.raises(AssertionError, match="alternating_turns promises"):
        conformance.random_playouts(TwiceEach(), seed=0, num_games=4, one_by_one=False)


def test_alternating_turns_signs_equal_the_to_play_signs(game, playouts):
    """step_leaves' shortcut for a game that promises alternating turns gives the signs that
    to_play of parent and child give."""
    import dataclasses

    from azero.search import step_leaves

    states = playouts[0].states
    states = states[~(game.terminal(states) | game.truncated(states))][:256]
    rng = np.random.default_rng(0)
    mask = game.legal_mask(states)
    actions = np.array([rng.choice(np.flatnonzero(m)) for m in mask], np.int32)
    fast = step_leaves(game, states, actions).discounts
    game_without_promise = type(game).__new__(type(game))
    game_without_promise.__dict__.update(game.__dict__)
    game_without_promise.spec = dataclasses.replace(game.spec, alternating_turns=False)
    slow = step_leaves(game_without_promise, states, actions).discounts
    assert game.spec.alternating_turns and fast.dtype == np.float32
    assert np.array_equal(fast, slow) and np.all(fast == -1.0)
