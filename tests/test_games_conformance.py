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
    assert p.terminal.sum() == len(p.lengths), "every game ends in exactly one terminal state"
    assert np.all((p.lengths >= 1) & (p.lengths <= game.spec.max_game_length))


@pytest.mark.parametrize("seed", SEEDS)
def test_terminal_stays_terminal(game, playouts, seed):
    p = playouts[seed]
    conformance.check_terminal_stays_terminal(game, p.states[p.terminal])


@pytest.mark.parametrize("check", conformance.POSITION_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("seed", SEEDS)
def test_position_checks(game, playouts, check, seed):
    check(game, conformance.subsample(playouts[seed], seed), seed=seed)
