"""Categorical value/reward representation (MuZero appendix F, after Pohlen et al. 2018).

A scalar x is squashed by the invertible h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x, then
represented as a two-hot distribution over `2 n + 1` evenly spaced support points covering
[-h(max_value), h(max_value)]: the two points around h(x) share the mass in proportion to their
closeness, so that the expectation over the support is exactly h(x) (inside the range; outside it
the value is clipped). A network's logits over the support decode to
h^-1(sum_i softmax(logits)_i * point_i).

The paper (Atari) uses integer points -300..300 in h-space; for board games values lie in [-1, 1],
so the points are spread over h([-max_value, max_value]) instead: the same code covers both by
choosing n and max_value.
"""
from __future__ import annotations

import math

import torch

EPS = 0.001   # the paper's epsilon: keeps h invertible and Lipschitz at large |x|


def h(x: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x, elementwise."""
    return torch.sign(x) * (torch.sqrt(x.abs() + 1.0) - 1.0) + eps * x


def h_inverse(y: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """The inverse of h. Solving |y| = sqrt(|x| + 1) - 1 + eps |x| for r = sqrt(|x| + 1) gives
    r = (sqrt(1 + 4 eps (|y| + 1 + eps)) - 1) / (2 eps), |x| = (r - 1)(r + 1). Written without
    the cancellations of that form (float32 lost ~1e-3 relative near 0, where board-game values
    live): with c = 1 + 2 eps and s = sqrt(c^2 + 4 eps |y|),
    r - 1 = |y| (2 - 4 eps / (c + s)) / (s + 1) and r + 1 = 2 (|y| + 1 + eps) / (s + 1) + 1."""
    a = y.abs()
    c = 1.0 + 2.0 * eps
    s = torch.sqrt(c * c + 4.0 * eps * a)
    r_minus_1 = a * (2.0 - 4.0 * eps / (c + s)) / (s + 1.0)
    r_plus_1 = 2.0 * (a + 1.0 + eps) / (s + 1.0) + 1.0
    return torch.sign(y) * r_minus_1 * r_plus_1


class Support:
    """`size` = n: 2n + 1 support points over [-h(max_value), h(max_value)] (n >= 1)."""

    def __init__(self, size: int, max_value: float):
        if int(size) < 1:
            raise ValueError(f"support size must be >= 1, got {size}")
        if not (max_value > 0 and math.isfinite(max_value)):
            raise ValueError(f"support max_value must be a positive number, got {max_value}")
        self.size = int(size)
        self.max_value = float(max_value)
        self.bound = float(h(torch.tensor(self.max_value, dtype=torch.float64)))
        # float32 [2n + 1], increasing
        self.points = torch.linspace(-self.bound, self.bound, 2 * self.size + 1)

    @property
    def num_bins(self) -> int:
        return 2 * self.size + 1

    def scalar_to_probs(self, x: torch.Tensor) -> torch.Tensor:
        """x [...] -> float32 [..., 2n + 1] two-hot targets (expectation = h(x) clipped)."""
        y = h(x.float()).clamp(-self.bound, self.bound)
        step = 2.0 * self.bound / (self.num_bins - 1)
        pos = (y + self.bound) / step                   # in [0, 2n]
        low = pos.floor().clamp(0, self.num_bins - 2)
        upper_weight = pos - low                        # in [0, 1]
        probs = torch.zeros(*x.shape, self.num_bins, dtype=torch.float32, device=x.device)
        low = low.long().unsqueeze(-1)
        probs.scatter_(-1, low, (1.0 - upper_weight).unsqueeze(-1))
        probs.scatter_add_(-1, low + 1, upper_weight.unsqueeze(-1))
        return probs

    def logits_to_scalar(self, logits: torch.Tensor) -> torch.Tensor:
        """logits [..., 2n + 1] -> float32 [...]: h^-1 of the expected support point."""
        probs = torch.softmax(logits.float(), dim=-1)
        return h_inverse((probs * self.points.to(probs.device)).sum(-1))


__all__ = ["EPS", "Support", "h", "h_inverse"]
