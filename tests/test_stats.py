import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from azero.stats import (MatchStats, SprtConfig, elo_from_score, elo_interval, los,
                         score_from_elo, sprt, sprt_bounds, sprt_llr)


def test_elo_from_score_known_values():
    assert elo_from_score(0.75) == pytest.approx(190.849, abs=1e-3)   # 400 log10(3)
    assert elo_from_score(0.5) == 0.0
    assert elo_from_score(0.25) == pytest.approx(-190.849, abs=1e-3)
    assert elo_from_score(0.0) == -math.inf and elo_from_score(1.0) == math.inf
    for elo in (-300.0, -35.0, 0.0, 12.5, 400.0):
        assert elo_from_score(score_from_elo(elo)) == pytest.approx(elo)
    assert score_from_elo(400.0) == pytest.approx(10 / 11)


def test_interval_contains_estimate_and_shrinks_with_games():
    widths = []
    for scale in (1, 4, 16):
        elo, lo, hi = elo_interval(60 * scale, 20 * scale, 20 * scale)
        assert elo == pytest.approx(elo_from_score(0.7))
        assert lo < elo < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # Quadrupling the games roughly halves the width (the score's standard error halves).
    assert widths[1] / widths[2] == pytest.approx(2.0, rel=0.1)


def test_interval_by_hand():
    # 10 W, 5 D, 5 L: s = 0.625, per-game variance = (10*.375^2 + 5*.125^2 + 5*.625^2)/20
    s = 0.625
    var = (10 * 0.375**2 + 5 * 0.125**2 + 5 * 0.625**2) / 20
    half = 1.959964 * math.sqrt(var / 20)
    lo_expected = -400 * math.log10(1 / (s - half) - 1)
    hi_expected = -400 * math.log10(1 / (s + half) - 1)
    _, lo, hi = elo_interval(10, 5, 5)
    assert lo == pytest.approx(lo_expected, abs=1e-3)
    assert hi == pytest.approx(hi_expected, abs=1e-3)


def test_interval_of_unanimous_results_is_not_degenerate():
    elo, lo, hi = elo_interval(40, 0, 0)                  # clean sweep
    assert elo == math.inf and hi == math.inf
    assert 300 < lo < 1000
    elo, lo, hi = elo_interval(0, 30, 0)                  # all draws
    assert elo == 0.0 and lo == pytest.approx(-hi) and 0 < hi < 200


def test_los():
    assert los(10, 10) == pytest.approx(0.5)
    assert los(0, 0) == 0.5
    assert los(30, 10) == pytest.approx(0.5 * (1 + math.erf(20 / math.sqrt(2 * 40))))


def _trinomial_llr_by_optimizer(w, d, l, elo0, elo1):
    """Independent: the maximum log-likelihood of the W/D/L counts over trinomials with expected
    score s, parametrised by the draw probability (p_win = s - p_draw/2), found numerically."""
    def max_loglik(s):
        def neg(pd):
            pw, pl = s - pd / 2, 1 - s - pd / 2
            return -(w * math.log(pw) + d * math.log(pd) + l * math.log(pl))
        upper = min(2 * s, 2 * (1 - s))
        res = minimize_scalar(neg, bounds=(1e-12, upper - 1e-12), method="bounded",
                              options={"xatol": 1e-13})
        return -res.fun
    s0 = 1 / (1 + 10 ** (-elo0 / 400))
    s1 = 1 / (1 + 10 ** (-elo1 / 400))
    return max_loglik(s1) - max_loglik(s0)


@pytest.mark.parametrize("wdl,elo0,elo1", [
    ((60, 20, 20), 0, 35),
    ((30, 40, 30), 0, 35),
    ((120, 300, 100), -5, 5),
    ((5, 1, 9), 0, 50),
])
def test_trinomial_llr_matches_independent_optimisation(wdl, elo0, elo1):
    got = sprt_llr(*wdl, elo0, elo1, model="trinomial")
    want = _trinomial_llr_by_optimizer(*wdl, elo0, elo1)
    assert got == pytest.approx(want, abs=2e-3)


def test_normal_llr_by_formula():
    w, d, l = 60, 20, 20
    n = w + d + l
    s = (w + d / 2) / n
    var = (w * (1 - s) ** 2 + d * (0.5 - s) ** 2 + l * s**2) / n
    s0, s1 = 0.5, 1 / (1 + 10 ** (-35 / 400))
    want = n * (s1 - s0) * (2 * s - s0 - s1) / (2 * var)
    assert sprt_llr(w, d, l, 0, 35, model="normal") == pytest.approx(want)
    # Close to the trinomial GSPRT when the score lies between the hypotheses.
    assert sprt_llr(110, 80, 100, 0, 35, "normal") == pytest.approx(
        sprt_llr(110, 80, 100, 0, 35, "trinomial"), abs=0.05)


def test_llr_sign_and_degenerate_counts():
    assert sprt_llr(0, 0, 0, 0, 35) == 0.0
    assert sprt_llr(10, 0, 0, 0, 35) > 0
    assert sprt_llr(0, 0, 10, 0, 35) < 0
    assert sprt_llr(0, 10, 0, 0, 35) < 0        # 50% is H0's score
    for model in ("trinomial", "normal"):
        assert math.isfinite(sprt_llr(10, 0, 0, 0, 35, model))


def test_bounds():
    lower, upper = sprt_bounds(0.05, 0.05)
    assert lower == pytest.approx(math.log(0.05 / 0.95))
    assert upper == pytest.approx(math.log(0.95 / 0.05))
    with pytest.raises(ValueError):
        sprt_bounds(0.0, 0.05)
    with pytest.raises(ValueError):
        SprtConfig(elo0=10, elo1=5)


def _run_stream(probs, seed, cfg, max_games=3000):
    rng = np.random.default_rng(seed)
    counts = [0, 0, 0]
    for outcome in rng.choice(3, size=max_games, p=probs):
        counts[outcome] += 1
        verdict = sprt(*counts, cfg)
        if verdict.decision is not None:
            return verdict.decision, sum(counts)
    return None, max_games


def test_sprt_accepts_h1_for_stronger_and_h0_for_equal():
    cfg = SprtConfig(elo0=0, elo1=35, alpha=0.05, beta=0.05)
    # Expected score 0.65 (~+108 Elo): far above elo1.
    for seed in range(3):
        decision, n = _run_stream([0.55, 0.2, 0.25], seed, cfg)
        assert decision == "H1", (seed, n)
    # Equal players: expected score 0.5 = H0.
    decisions = [_run_stream([0.35, 0.3, 0.35], seed, cfg)[0] for seed in range(3)]
    assert decisions.count("H0") >= 2, decisions


def test_match_stats():
    m = MatchStats(wins=60, draws=20, losses=20)
    assert m.games == 100 and m.score == pytest.approx(0.7)
    lo, hi = m.elo_interval
    assert lo < m.elo < hi
    assert m.sprt().decision == "H1"
    d = m.as_dict()
    assert d["wins"] == 60 and d["score"] == pytest.approx(0.7)
    assert "60/20/20" in str(m)
    assert MatchStats(0, 0, 0).score == 0.5
