"""go9 kernels called directly with output arrays of any layout: legal_mask writes eight entries
per store into a C-contiguous mask and entry by entry otherwise; both give the masks of the
Game API (checked against the independent reference in test_go9_rules.py) and write nothing
outside their rows' 82 entries."""
import numpy as np

from azero.games.go9 import rules
from azero.games.go9.game import Go9


def _random_positions(n: int, plies: int, seed: int) -> np.ndarray:
    """n games of uniformly random legal moves, `plies` moves each (fewer once over)."""
    game, rng = Go9(), np.random.default_rng(seed)
    states = game.initial_states(n)
    for _ in range(plies):
        mask = game.legal_mask(states)
        live = mask.any(axis=1)
        actions = np.full(n, rules.PASS)
        for i in np.flatnonzero(live):
            actions[i] = rng.choice(np.flatnonzero(mask[i]))
        states[live] = game.step(states[live], actions[live])
    return states


def test_legal_mask_is_the_same_in_any_output_layout():
    states = np.concatenate([_random_positions(60, plies, seed=plies) for plies in (0, 30, 120)])
    states[::17, rules.STATUS] = rules.OVER                  # some finished games: all False
    expected = Go9().legal_mask(states)
    assert expected.any() and not expected.all() and not expected[::17].any()
    b = len(states)
    strided = np.ones((b, 2 * rules.NUM_ACTIONS), dtype=np.bool_)
    rules.legal_mask(states, strided[:, ::2])
    assert np.array_equal(strided[:, ::2], expected) and strided[:, 1::2].all()
    padded = np.ones((b, rules.NUM_ACTIONS + 10), dtype=np.bool_)
    rules.legal_mask(states, padded[:, 3:3 + rules.NUM_ACTIONS])
    assert np.array_equal(padded[:, 3:3 + rules.NUM_ACTIONS], expected)
    assert padded[:, :3].all() and padded[:, 3 + rules.NUM_ACTIONS:].all()
    fortran = np.asfortranarray(np.ones((b, rules.NUM_ACTIONS), dtype=np.bool_))
    rules.legal_mask(states, fortran)
    assert np.array_equal(fortran, expected)
