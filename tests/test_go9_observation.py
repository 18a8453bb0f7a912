"""Go's observation kernel (games/go9/rules.observation, one pass per plane from a byte table)
against the point-by-point loop it replaced, kept here verbatim as the reference: bit-identical
float32 planes (history planes included) on positions of random games with passes, captures,
finished games, symmetry frames, another komi and a full superko history."""
import numpy as np
from numba import njit

from azero.games.go9 import rules
from azero.games.go9.game import Go9
from azero.games.go9.rules import (ATARI, BLACK, KOMI2, NUM_POINTS, NUM_PREV, OBS_BLACK_TO_MOVE,
                                   OBS_KOMI, OBS_LEGAL, OBS_ONES, OBS_OPP_ATARI, OBS_OWN_ATARI,
                                   OBS_PASSED, PASSES, PLY, SIZE, WHITE, earlier_board, has_point,
                                   legal_points)


@njit(cache=False)
def _reference_observation(states, out):
    """The kernel before the byte-table rewrite (commit b90de89), unchanged."""
    for i in range(states.shape[0]):
        mover = states[i, PLY] & 1
        legal_lo, legal_hi = legal_points(states, i)
        at_lo = states[i, ATARI]
        at_hi = states[i, ATARI + 1]
        own_lo = states[i, BLACK + 2 * mover]
        own_hi = states[i, BLACK + 2 * mover + 1]
        opp_lo = states[i, WHITE - 2 * mover]
        opp_hi = states[i, WHITE - 2 * mover + 1]
        komi = 0.05 * states[i, KOMI2] * (1.0 if mover == 1 else -1.0)
        black_to_move = 1.0 if mover == 0 else 0.0
        passed = 1.0 if states[i, PASSES] > 0 else 0.0
        for p in range(NUM_POINTS):
            r = p // SIZE
            c = p % SIZE
            out[i, 0, r, c] = 1.0 if has_point(own_lo, own_hi, p) else 0.0
            out[i, 1, r, c] = 1.0 if has_point(opp_lo, opp_hi, p) else 0.0
            for t in range(NUM_PREV):
                b_lo, b_hi, w_lo, w_hi = earlier_board(states, i, t)
                black = 1.0 if has_point(b_lo, b_hi, p) else 0.0
                white = 1.0 if has_point(w_lo, w_hi, p) else 0.0
                out[i, 2 + 2 * t, r, c] = black if mover == 0 else white
                out[i, 3 + 2 * t, r, c] = white if mover == 0 else black
            out[i, OBS_BLACK_TO_MOVE, r, c] = black_to_move
            out[i, OBS_KOMI, r, c] = komi
            out[i, OBS_LEGAL, r, c] = 1.0 if has_point(legal_lo, legal_hi, p) else 0.0
            out[i, OBS_OWN_ATARI, r, c] = 1.0 if has_point(own_lo & at_lo, own_hi & at_hi, p) \
                else 0.0
            out[i, OBS_OPP_ATARI, r, c] = 1.0 if has_point(opp_lo & at_lo, opp_hi & at_hi, p) \
                else 0.0
            out[i, OBS_PASSED, r, c] = passed
            out[i, OBS_ONES, r, c] = 1.0


def _positions(game: Go9, games: int, plies: int, pass_rate: float, seed: int) -> np.ndarray:
    """Every position met in `games` random games of up to `plies` plies: each move a pass with
    probability pass_rate, else a uniformly random legal stone move; finished games stay."""
    rng = np.random.default_rng(seed)
    states = game.initial_states(games)
    seen = [states.copy()]
    for _ in range(plies):
        mask = game.legal_mask(states)
        live = mask.any(axis=1)
        if not live.any():
            break
        actions = np.full(games, rules.PASS)
        for i in np.flatnonzero(live):
            stones = np.flatnonzero(mask[i, :rules.PASS])
            if len(stones) and rng.random() >= pass_rate:
                actions[i] = rng.choice(stones)
        states = states.copy()
        states[live] = game.step(states[live], actions[live])
        seen.append(states.copy())
    return np.concatenate(seen)


def _same_bits(game: Go9, states: np.ndarray) -> None:
    new = game.observation(states)
    old = np.full_like(new, np.nan)
    _reference_observation(states, old)
    assert new.dtype == np.float32 and new.flags.c_contiguous
    # bit-identical, NaN-free (the reference writes every entry): compare the raw words
    assert np.array_equal(new.view(np.int32), old.view(np.int32))


def test_observation_is_bit_identical_to_the_point_by_point_loop():
    game = Go9()
    states = np.concatenate([_positions(game, 24, 140, 0.02, seed=1),
                             _positions(game, 24, 60, 0.3, seed=2)])
    obs = game.observation(states)
    # the positions reach what each plane can show: history stones, atari on both sides,
    # passes, finished games (no legal moves), both sides to move
    assert obs[:, 2 + 2 * (NUM_PREV - 1)].any() and obs[:, 3 + 2 * (NUM_PREV - 1)].any()
    assert obs[:, OBS_OWN_ATARI].any() and obs[:, OBS_OPP_ATARI].any()
    assert obs[:, OBS_PASSED].any() and not obs[:, OBS_PASSED].all()
    assert (obs[:, OBS_LEGAL].sum(axis=(1, 2)) == 0).any()
    assert 0 < obs[:, OBS_BLACK_TO_MOVE, 0, 0].mean() < 1
    # points 63-64 (bit 63 of the low word, bit 0 of the high one) and 80 (the last) are used
    for p in (63, 64, NUM_POINTS - 1):
        assert obs[:, 0, p // SIZE, p % SIZE].any() and obs[:, 1, p // SIZE, p % SIZE].any()
    _same_bits(game, states)
    # under every symmetry (permuted boards, other hash frames)
    k = np.random.default_rng(3).integers(0, rules.NUM_SYMMETRIES, size=len(states))
    moved = np.concatenate([game.transform_states(states[k == s], int(s))
                            for s in range(rules.NUM_SYMMETRIES)])
    _same_bits(game, moved)


def test_observation_matches_with_other_komi_and_a_full_superko_history():
    _same_bits(Go9(komi=-3.5), _positions(Go9(komi=-3.5), 8, 50, 0.05, seed=4))
    # a 12-stone-move history (a narrower row): it fills up, then only pass is legal
    short = Go9(max_game_length=12)
    states = _positions(short, 8, 30, 0.0, seed=5)
    assert (short.observation(states)[:, OBS_LEGAL].sum(axis=(1, 2)) == 0).any()
    _same_bits(short, states)


def test_observation_of_one_row_and_of_a_slice():
    game = Go9()
    states = _positions(game, 4, 40, 0.05, seed=6)
    _same_bits(game, states[7:8])
    _same_bits(game, states[::3])                 # a strided batch of states
