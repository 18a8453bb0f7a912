"""Match statistics: Elo from a score, its confidence interval, and the sequential probability
ratio test (SPRT) that fishtest and cutechess use to stop a match as soon as it is decided.

Conventions:
  * Results are counted from one player's point of view ("A"): wins, draws, losses. A game scores
    1, 1/2 or 0; the score of a match is the mean over its games.
  * Elo is logistic Elo: expected score s = 1 / (1 + 10^(-elo/400)); 75% <-> +190.8.
  * SPRT hypotheses are stated in logistic Elo (H0: elo = elo0, H1: elo = elo1), alpha is the
    false-positive rate (accepting H1 when H0 holds), beta the false-negative rate.

The SPRT log-likelihood ratio (`sprt_llr`) is the generalized SPRT (GSPRT) of fishtest's
stat_util with the trinomial W/D/L model: under each hypothesis the W/D/L probabilities are the
maximum-likelihood ones among those whose expected score is s0 (resp. s1), and the LLR is the
log of the ratio of the two likelihoods of the observed counts. `model="normal"` gives the
BayesElo-free normal approximation instead (per-game score ~ Normal(s, sample variance)), which
agrees closely once a few dozen games are in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

# Two-sided 95% quantile of the standard normal.
Z95 = 1.959963984540054

# Pseudo-count added to every W/D/L cell in the trinomial SPRT so that the constrained maximum
# likelihood exists when a cell is empty (e.g. 10 wins, 0 draws, 0 losses). It moves the LLR by
# far less than the test's bounds once more than a handful of games are in.
_PSEUDO_COUNT = 1e-3


def score_from_elo(elo: float) -> float:
    """Expected score of a player `elo` logistic-Elo points stronger than its opponent."""
    return 1.0 / (1.0 + 10.0 ** (-elo / 400.0))


def elo_from_score(score: float) -> float:
    """Logistic Elo difference that gives the expected `score` in (0, 1); +-inf at 1 and 0."""
    if score <= 0.0:
        return -math.inf
    if score >= 1.0:
        return math.inf
    return -400.0 * math.log10(1.0 / score - 1.0) + 0.0   # + 0.0: no "-0.0" at 50%


def los(wins: int, losses: int) -> float:
    """Likelihood of superiority: the probability that A is stronger, from wins and losses
    (draws carry no information about it): Phi((W - L) / sqrt(W + L))."""
    if wins + losses == 0:
        return 0.5
    return 0.5 * (1.0 + math.erf((wins - losses) / math.sqrt(2.0 * (wins + losses))))


def _score_and_variance(wins: float, draws: float, losses: float) -> tuple[float, float]:
    """Mean per-game score and its per-game (population) variance."""
    n = wins + draws + losses
    s = (wins + 0.5 * draws) / n
    var = (wins * (1.0 - s) ** 2 + draws * (0.5 - s) ** 2 + losses * s**2) / n
    return s, var


def _regularised_variance(wins: float, draws: float, losses: float) -> float:
    """Per-game score variance with half a game added to each W/D/L cell: a stand-in when every
    game had the same result and the observed variance is 0."""
    return _score_and_variance(wins + 0.5, draws + 0.5, losses + 0.5)[1]


def elo_interval(wins: int, draws: int, losses: int,
                 confidence_z: float = Z95) -> tuple[float, float, float]:
    """(elo, low, high): the Elo difference of the observed score and a two-sided interval (95% by
    default) from the normal approximation of the mean score, mapped through `elo_from_score`
    (cutechess's method). Infinite ends where the score interval leaves (0, 1). When every game
    had the same result (a clean sweep, all draws) the observed variance is 0; the variance with
    half a game added to each cell stands in for it, so the interval keeps a finite width."""
    n = wins + draws + losses
    if n == 0:
        return 0.0, -math.inf, math.inf
    s, var = _score_and_variance(wins, draws, losses)
    if var == 0.0:
        var = _regularised_variance(wins, draws, losses)
    half = confidence_z * math.sqrt(var / n)
    return elo_from_score(s), elo_from_score(s - half), elo_from_score(s + half)


def _constrained_mle(p_hat: tuple[float, ...], scores: tuple[float, ...],
                     target: float) -> list[float]:
    """The probabilities p maximising sum_i p_hat_i log p_i subject to sum_i p_i = 1 and
    sum_i p_i scores_i = target (all p_hat_i > 0, min(scores) < target < max(scores)).

    Lagrange: p_i = p_hat_i / (1 + lam (scores_i - target)), where lam solves
    g(lam) = sum_i p_hat_i (scores_i - target) / (1 + lam (scores_i - target)) = 0. g is strictly
    decreasing on the interval where every denominator is positive and runs from +inf to -inf
    across it, so bisection finds the root."""
    d = [a - target for a in scores]
    lo = -1.0 / max(d)       # denominators 1 + lam d_i stay positive for lam in (lo, hi)
    hi = -1.0 / min(d)
    for _ in range(200):
        lam = 0.5 * (lo + hi)
        g = sum(p * di / (1.0 + lam * di) for p, di in zip(p_hat, d))
        if g > 0:
            lo = lam
        else:
            hi = lam
        if hi - lo < 1e-15 * max(1.0, abs(lam)):
            break
    lam = 0.5 * (lo + hi)
    p = [ph / (1.0 + lam * di) for ph, di in zip(p_hat, d)]
    total = sum(p)
    return [x / total for x in p]


def sprt_llr(wins: int, draws: int, losses: int, elo0: float, elo1: float,
             model: Literal["trinomial", "normal"] = "trinomial") -> float:
    """Log-likelihood ratio of H1 (elo = elo1) over H0 (elo = elo0) for the observed W/D/L.

    trinomial: N * sum_i p_hat_i log(p1_i / p0_i) with p_hat the observed frequencies (plus a tiny
      pseudo-count) and p0, p1 the maximum-likelihood W/D/L probabilities with expected score
      s0, s1 (fishtest's GSPRT).
    normal: N (s1 - s0) (2 s - s0 - s1) / (2 var), s and var the observed mean and variance of the
      per-game score: the LLR of two normal means with the observed variance.
    """
    n = wins + draws + losses
    if n == 0:
        return 0.0
    s0, s1 = score_from_elo(elo0), score_from_elo(elo1)
    if model == "normal":
        s, var = _score_and_variance(wins, draws, losses)
        if var == 0.0:   # every game the same result: keeps the LLR finite and its sign right
            var = _regularised_variance(wins, draws, losses)
        return n * (s1 - s0) * (2.0 * s - s0 - s1) / (2.0 * var)
    if model != "trinomial":
        raise ValueError(f"unknown SPRT model {model!r}; use 'trinomial' or 'normal'")
    counts = [c + _PSEUDO_COUNT for c in (wins, draws, losses)]
    total = sum(counts)
    p_hat = tuple(c / total for c in counts)
    scores = (1.0, 0.5, 0.0)
    p0 = _constrained_mle(p_hat, scores, s0)
    p1 = _constrained_mle(p_hat, scores, s1)
    return n * sum(ph * math.log(a / b) for ph, a, b in zip(p_hat, p1, p0))


def sprt_bounds(alpha: float, beta: float) -> tuple[float, float]:
    """(lower, upper) LLR bounds: accept H0 at or below lower, H1 at or above upper (Wald)."""
    if not (0.0 < alpha < 1.0 and 0.0 < beta < 1.0):
        raise ValueError(f"SPRT alpha and beta must lie in (0, 1), got {alpha}, {beta}")
    return math.log(beta / (1.0 - alpha)), math.log((1.0 - beta) / alpha)


@dataclass(frozen=True)
class SprtConfig:
    elo0: float = 0.0
    elo1: float = 35.0       # ~55% expected score, the AlphaGo Zero gating margin
    alpha: float = 0.05
    beta: float = 0.05
    model: Literal["trinomial", "normal"] = "trinomial"

    def __post_init__(self) -> None:
        if not self.elo1 > self.elo0:
            raise ValueError(f"SPRT needs elo1 > elo0, got elo0={self.elo0}, elo1={self.elo1}")
        sprt_bounds(self.alpha, self.beta)


@dataclass(frozen=True)
class SprtResult:
    llr: float
    lower: float
    upper: float
    decision: Literal["H0", "H1"] | None    # None: keep playing

    def __str__(self) -> str:
        verdict = {"H0": "H0 accepted", "H1": "H1 accepted", None: "undecided"}[self.decision]
        return f"LLR {self.llr:+.2f} [{self.lower:.2f}, {self.upper:.2f}] {verdict}"


def sprt(wins: int, draws: int, losses: int, cfg: SprtConfig = SprtConfig()) -> SprtResult:
    """The SPRT verdict for the observed W/D/L."""
    lower, upper = sprt_bounds(cfg.alpha, cfg.beta)
    llr = sprt_llr(wins, draws, losses, cfg.elo0, cfg.elo1, cfg.model)
    decision = "H1" if llr >= upper else "H0" if llr <= lower else None
    return SprtResult(llr, lower, upper, decision)


@dataclass(frozen=True)
class MatchStats:
    """W/D/L from A's point of view and what follows from them."""
    wins: int
    draws: int
    losses: int

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses

    @property
    def score(self) -> float:
        """Mean score of A per game (0.5 with no games)."""
        return (self.wins + 0.5 * self.draws) / self.games if self.games else 0.5

    @property
    def elo(self) -> float:
        return elo_interval(self.wins, self.draws, self.losses)[0]

    @property
    def elo_interval(self) -> tuple[float, float]:
        """95% interval of the Elo difference."""
        return elo_interval(self.wins, self.draws, self.losses)[1:]

    @property
    def los(self) -> float:
        return los(self.wins, self.losses)

    def sprt(self, cfg: SprtConfig = SprtConfig()) -> SprtResult:
        return sprt(self.wins, self.draws, self.losses, cfg)

    def as_dict(self) -> dict:
        lo, hi = self.elo_interval
        return {"games": self.games, "wins": self.wins, "draws": self.draws,
                "losses": self.losses, "score": self.score, "elo": self.elo,
                "elo_low": lo, "elo_high": hi, "los": self.los}

    def __str__(self) -> str:
        lo, hi = self.elo_interval
        return (f"W/D/L {self.wins}/{self.draws}/{self.losses} ({self.games} games), "
                f"score {100 * self.score:.1f}%, Elo {_fmt_elo(self.elo)} "
                f"[{_fmt_elo(lo)}, {_fmt_elo(hi)}] (95%), LOS {100 * self.los:.1f}%")


def _fmt_elo(x: float) -> str:
    return f"{x:+.1f}" if math.isfinite(x) else ("+inf" if x > 0 else "-inf")
