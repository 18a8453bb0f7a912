"""MuZero's three functions (Schrittwieser et al. 2020) as one module with a plain architecture dict.

    representation h: obs [N, C, H, W] -> conv3x3-BN-ReLU stem -> `representation_blocks`
        residual blocks -> latent [N, L, H, W], min-max scaled to [0, 1] per sample
    dynamics g: (latent [N, L, H, W], action [N]) -> concat(latent, action plane [N, 1, H, W])
        -> conv3x3-BN (+ the input latent: the step starts near the identity) -> ReLU
        -> `dynamics_blocks` residual blocks -> next latent (min-max scaled), and the reward head
        on it: conv1x1-BN-ReLU-flatten-linear-ReLU-linear -> reward of the move for its mover
    prediction f: latent -> `prediction_blocks` residual blocks -> policy head
        (conv1x1-BN-ReLU-flatten-linear -> logits [N, A]) and value head (as the reward head)

The action enters as a learned plane: nn.Embedding(num_actions, H * W), one [H, W] plane per
action, so any game's action space works without knowing where its moves land on the board.

Value and reward are either scalars (`value_head: scalar`: tanh, in [-1, 1]: board-game results)
or categorical over a support with the h(x) transform (`categorical`, azero.muzero.support; the
paper's choice for Atari): then `value_logits` / `reward_logits` hold the raw logits [N, 2n + 1]
for the cross-entropy loss and `value` / `reward` the decoded scalars.

Sign convention (protocol v2): the value is from the view of the side to move at that latent;
the reward is for the player who made the move.

With `projection_dim > 0` the net also has EfficientZero's SimSiam projector and predictor
(`project`), for the optional consistency loss.
"""
from __future__ import annotations

from typing import Any, Literal, NamedTuple

import torch
from torch import nn

from .resnet import ResidualBlock

ARCHITECTURE_KIND = "muzero"


class MuZeroOutput(NamedTuple):
    latent: torch.Tensor                 # float [N, L, H, W] in [0, 1]
    policy_logits: torch.Tensor          # float [N, A]
    value: torch.Tensor                  # float [N], side to move at `latent`
    reward: torch.Tensor                 # float [N], for the mover (zeros from initial_inference)
    value_logits: torch.Tensor | None    # float [N, 2n + 1] (categorical), else None
    reward_logits: torch.Tensor | None   # float [N, 2n + 1] (categorical, recurrent), else None


def scale_latent(x: torch.Tensor) -> torch.Tensor:
    """Min-max scaling of each sample to [0, 1] (the paper's hidden-state normalisation):
    x [N, ...] -> (x - min) / (max - min) per row; a constant row maps to 0."""
    flat = x.flatten(1)
    lo = flat.min(1, keepdim=True).values
    hi = flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-5)).view_as(x)


def _conv_bn(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), nn.BatchNorm2d(c_out)]


def _scalar_head(channels: int, head_channels: int, area: int, hidden: int, out: int) -> nn.Module:
    """latent [N, channels, H, W] -> [N, out]."""
    return nn.Sequential(*_conv_bn(channels, head_channels, 1), nn.ReLU(inplace=True), nn.Flatten(),
                         nn.Linear(head_channels * area, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out))


class MuZeroNet(nn.Module):
    def __init__(self, observation_shape: tuple[int, int, int] | list[int], num_actions: int, *,
                 latent_channels: int = 64, representation_blocks: int = 3,
                 dynamics_blocks: int = 3, prediction_blocks: int = 1, policy_channels: int = 2,
                 value_channels: int = 1, value_hidden: int = 64, reward_hidden: int = 64,
                 value_head: Literal["scalar", "categorical"] = "scalar", support_size: int = 20,
                 support_max: float = 1.0, projection_dim: int = 0):
        super().__init__()
        from ..muzero.support import Support

        if len(observation_shape) != 3:
            raise ValueError(f"observation_shape must be (C, H, W), got {tuple(observation_shape)}")
        if value_head not in ("scalar", "categorical"):
            raise ValueError(f"value_head must be 'scalar' or 'categorical', got {value_head!r}")
        for name, v, lo in (("num_actions", num_actions, 1), ("latent_channels", latent_channels, 1),
                            ("representation_blocks", representation_blocks, 0),
                            ("dynamics_blocks", dynamics_blocks, 0),
                            ("prediction_blocks", prediction_blocks, 0),
                            ("projection_dim", projection_dim, 0)):
            if int(v) < lo:
                raise ValueError(f"{name} must be >= {lo}, got {v}")
        in_channels, height, width = (int(d) for d in observation_shape)
        L, area, A = int(latent_channels), height * width, int(num_actions)
        self.architecture: dict[str, Any] = {
            "kind": ARCHITECTURE_KIND, "observation_shape": [in_channels, height, width],
            "num_actions": A, "latent_channels": L,
            "representation_blocks": int(representation_blocks),
            "dynamics_blocks": int(dynamics_blocks), "prediction_blocks": int(prediction_blocks),
            "policy_channels": int(policy_channels), "value_channels": int(value_channels),
            "value_hidden": int(value_hidden), "reward_hidden": int(reward_hidden),
            "value_head": str(value_head), "support_size": int(support_size),
            "support_max": float(support_max), "projection_dim": int(projection_dim),
        }
        self.support = Support(support_size, support_max) if value_head == "categorical" else None
        out = self.support.num_bins if self.support is not None else 1
        self.latent_shape = (L, height, width)

        self.representation_net = nn.Sequential(
            *_conv_bn(in_channels, L, 3), nn.ReLU(inplace=True),
            *[ResidualBlock(L) for _ in range(representation_blocks)])
        self.action_embedding = nn.Embedding(A, area)
        self.dynamics_entry = nn.Sequential(*_conv_bn(L + 1, L, 3))
        self.dynamics_trunk = nn.Sequential(*[ResidualBlock(L) for _ in range(dynamics_blocks)])
        self.reward_head = _scalar_head(L, value_channels, area, reward_hidden, out)
        self.prediction_trunk = nn.Sequential(*[ResidualBlock(L) for _ in range(prediction_blocks)])
        self.policy_head = nn.Sequential(*_conv_bn(L, policy_channels, 1), nn.ReLU(inplace=True),
                                         nn.Flatten(), nn.Linear(policy_channels * area, A))
        self.value_head = _scalar_head(L, value_channels, area, value_hidden, out)
        self.projector = self.predictor = None
        if projection_dim:
            P = int(projection_dim)
            self.projector = nn.Sequential(nn.Flatten(), nn.Linear(L * area, P), nn.BatchNorm1d(P),
                                           nn.ReLU(inplace=True), nn.Linear(P, P))
            self.predictor = nn.Sequential(nn.Linear(P, P), nn.BatchNorm1d(P),
                                           nn.ReLU(inplace=True), nn.Linear(P, P))

    @property
    def num_actions(self) -> int:
        return self.architecture["num_actions"]

    # ------------------------------------------------------------------ the three functions
    def representation(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [N, C, H, W] -> latent [N, L, H, W] in [0, 1]."""
        return scale_latent(self.representation_net(obs))

    def dynamics(self, latent: torch.Tensor, actions: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """latent [N, L, H, W], actions int64 [N] -> (next latent [N, L, H, W] in [0, 1],
        reward head output [N, 1] (pre-tanh) or [N, 2n + 1] (logits))."""
        actions = torch.as_tensor(actions, dtype=torch.long, device=latent.device)
        if actions.shape != latent.shape[:1]:
            raise ValueError(f"actions must have shape {tuple(latent.shape[:1])}, "
                             f"got {tuple(actions.shape)}")
        if len(actions) and (int(actions.min()) < 0 or int(actions.max()) >= self.num_actions):
            raise ValueError(f"actions must lie in [0, {self.num_actions}), got "
                             f"{int(actions.min())}..{int(actions.max())}")
        _, height, width = self.latent_shape
        plane = self.action_embedding(actions).view(-1, 1, height, width).to(latent.dtype)
        x = self.dynamics_entry(torch.cat([latent, plane], dim=1)) + latent
        nxt = scale_latent(self.dynamics_trunk(torch.relu(x)))
        return nxt, self.reward_head(nxt)

    def prediction(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latent -> (policy logits [N, A], value head output [N, 1] or [N, 2n + 1])."""
        x = self.prediction_trunk(latent)
        return self.policy_head(x), self.value_head(x)

    def _decode(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A value/reward head's output -> (scalar [N], logits or None)."""
        if self.support is None:
            return torch.tanh(raw.squeeze(-1)), None
        return self.support.logits_to_scalar(raw), raw

    # ------------------------------------------------------------------ inference API
    def initial_inference(self, obs: torch.Tensor) -> MuZeroOutput:
        """obs float32 [N, C, H, W] -> root latent, policy logits, value (reward: zeros)."""
        latent = self.representation(obs)
        logits, raw_value = self.prediction(latent)
        value, value_logits = self._decode(raw_value)
        return MuZeroOutput(latent, logits, value, torch.zeros_like(value), value_logits, None)

    def recurrent_inference(self, latent: torch.Tensor, actions: torch.Tensor) -> MuZeroOutput:
        """latent [N, L, H, W], actions int64 [N] -> the next latent with its policy logits,
        value (for the side to move there) and the move's reward (for its mover)."""
        nxt, raw_reward = self.dynamics(latent, actions)
        reward, reward_logits = self._decode(raw_reward)
        logits, raw_value = self.prediction(nxt)
        value, value_logits = self._decode(raw_value)
        return MuZeroOutput(nxt, logits, value, reward, value_logits, reward_logits)

    def project(self, latent: torch.Tensor, with_predictor: bool) -> torch.Tensor:
        """EfficientZero's consistency branch: latent -> projection [N, P] (then through the
        predictor head for the online side). Needs projection_dim > 0."""
        if self.projector is None:
            raise ValueError("this MuZeroNet has no projection head (projection_dim 0)")
        z = self.projector(latent)
        return self.predictor(z) if with_predictor else z

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy logits [N, A], value [N]) of the representation + prediction: the AlphaZero
        net's interface, so tools that only evaluate positions take a MuZero net too."""
        out = self.initial_inference(obs)
        return out.policy_logits, out.value


# config.MuZeroConfig field -> its key in the architecture dict (the heads' sizes come from
# config.ModelConfig, the rest of the dict from the game).
_ARCHITECTURE_KEYS = {"latent_channels": "latent_channels",
                      "representation_blocks": "representation_blocks",
                      "dynamics_blocks": "dynamics_blocks", "prediction_blocks": "prediction_blocks",
                      "reward_hidden": "reward_hidden", "value_head": "value_head",
                      "support_size": "support_size", "support_max": "support_max"}
_MODEL_KEYS = ("policy_channels", "value_channels", "value_hidden")


def muzero_architecture_for(spec, model_config, muzero_config) -> dict[str, Any]:
    """The architecture dict of the MuZero net a game (GameSpec), config.ModelConfig (head sizes)
    and config.MuZeroConfig describe. The projection head exists only when the consistency loss
    is on."""
    return {
        "kind": ARCHITECTURE_KIND,
        "observation_shape": [int(d) for d in spec.observation_shape],
        "num_actions": int(spec.num_actions),
        **{key: getattr(model_config, key) for key in _MODEL_KEYS},
        **{key: getattr(muzero_config, field) for field, key in _ARCHITECTURE_KEYS.items()},
        "projection_dim": (int(muzero_config.projection_dim)
                           if muzero_config.consistency_loss_weight > 0 else 0),
    }


def build_muzero_net(architecture: dict[str, Any]) -> MuZeroNet:
    """Rebuild a MuZeroNet from its architecture dict; ValueError on one it cannot build."""
    arch = dict(architecture)
    if arch.pop("kind", None) != ARCHITECTURE_KIND:
        raise ValueError(f"not a {ARCHITECTURE_KIND!r} architecture: {architecture!r}")
    try:
        return MuZeroNet(arch.pop("observation_shape"), arch.pop("num_actions"), **arch)
    except (KeyError, TypeError) as e:
        raise ValueError(f"bad architecture {architecture!r}: {e}") from None


def make_muzero_net(spec, model_config, muzero_config) -> MuZeroNet:
    """A fresh MuZero net for a game and the config's model + muzero sections."""
    return build_muzero_net(muzero_architecture_for(spec, model_config, muzero_config))


__all__ = ["ARCHITECTURE_KIND", "MuZeroNet", "MuZeroOutput", "build_muzero_net",
           "make_muzero_net", "muzero_architecture_for", "scale_latent"]
