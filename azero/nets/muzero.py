"""MuZero's three functions (Schrittwieser et al. 2020) as one module with a plain architecture dict.

    representation h: obs [N, C, H, W] -> conv3x3-BN-ReLU stem -> `representation_blocks`
        residual blocks -> latent [N, L, H, W], min-max scaled to [0, 1] per sample
    dynamics g: (latent [N, L, H, W], action [N]) -> concat(latent, action plane [N, 1, H, W])
        -> conv3x3-BN (+ the input latent: the step starts near the identity) -> ReLU
        -> `dynamics_blocks` residual blocks -> next latent (min-max scaled), and the reward head
        on it: conv1x1-BN-ReLU-flatten-linear-ReLU-linear -> reward of the move for its mover
    prediction f: latent -> `prediction_blocks` residual blocks -> policy head
        (conv1x1-BN-ReLU-flatten-linear -> logits [N, A]) and value head (as the reward head)

The action enters as planes beside the latent. Where the game draws its actions on the board
(GameSpec.action_planes [A, P, H, W]: Connect Four's column, Go's point, a chess move's from- and
to-squares), those P fixed planes (`action_planes` P > 0, a buffer saved with the weights); else a
learned plane per action, nn.Embedding(num_actions, H * W) (`action_planes` 0), so any game's
action space works. On Connect Four the game's planes learnt the winning move's reward 1.55x as
fast offline (BENCHMARKS.md, "MuZero: the action as the game draws it").

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

import numpy as np
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


NORMALIZATIONS = ("batch", "layer")


def _norm_layer(normalization: str):
    """channels -> the norm layer after each convolution. "batch": BatchNorm2d (statistics of
    the batch in training, running ones in inference). "layer": GroupNorm with one group, each
    sample normalised over its own [C, H, W], the same function in training and inference. Why
    it matters here: a BatchNorm after the dynamics sees, in training, the batch of step k of
    the unroll alone (k = 1..K), in inference one running average over all of them; a net can
    come to rely on the per-step statistics (measured: BENCHMARKS.md, "MuZero with Reanalyze")."""
    if normalization == "batch":
        return nn.BatchNorm2d
    if normalization == "layer":
        return lambda channels: nn.GroupNorm(1, channels)
    raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")


def _normalization_entry(normalization: str) -> dict[str, str]:
    """The architecture dict's "normalization" item: none for "batch", so the dicts (and
    checkpoints) of BatchNorm nets stay those of the code before the key."""
    return {} if normalization == "batch" else {"normalization": str(normalization)}


def _conv_bn(c_in: int, c_out: int, k: int, norm=nn.BatchNorm2d) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False), norm(c_out)]


def _scalar_head(channels: int, head_channels: int, area: int, hidden: int, out: int,
                 norm=nn.BatchNorm2d) -> nn.Module:
    """latent [N, channels, H, W] -> [N, out]."""
    return nn.Sequential(*_conv_bn(channels, head_channels, 1, norm), nn.ReLU(inplace=True),
                         nn.Flatten(),
                         nn.Linear(head_channels * area, hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out))


class MuZeroNet(nn.Module):
    def __init__(self, observation_shape: tuple[int, int, int] | list[int], num_actions: int, *,
                 latent_channels: int = 64, representation_blocks: int = 3,
                 dynamics_blocks: int = 3, prediction_blocks: int = 1, policy_channels: int = 2,
                 value_channels: int = 1, value_hidden: int = 64, reward_hidden: int = 64,
                 value_head: Literal["scalar", "categorical"] = "scalar", support_size: int = 20,
                 support_max: float = 1.0, projection_dim: int = 0, action_planes: Any = 0,
                 normalization: str = "batch"):
        """action_planes: the game's planes, float [A, P, H, W] (GameSpec.action_planes), or
        their count P (zeros until a state dict fills them: how a checkpoint rebuilds the net),
        or 0 / None for a learned plane per action. normalization: "batch" | "layer" (see
        _norm_layer)."""
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
        planes = None
        if action_planes is None or np.ndim(action_planes) == 0:
            num_action_planes = int(action_planes or 0)
            if num_action_planes < 0:
                raise ValueError(f"action_planes must be >= 0, got {action_planes}")
        else:
            planes = torch.tensor(np.asarray(action_planes, np.float32))     # a copy
            if planes.ndim != 4 or planes.shape[0] != A or tuple(planes.shape[2:]) != (height, width):
                raise ValueError(f"action_planes must have shape [{A}, P, {height}, {width}], "
                                 f"got {tuple(planes.shape)}")
            num_action_planes = int(planes.shape[1])
        self.architecture: dict[str, Any] = {
            "kind": ARCHITECTURE_KIND, "observation_shape": [in_channels, height, width],
            "num_actions": A, "latent_channels": L,
            "representation_blocks": int(representation_blocks),
            "dynamics_blocks": int(dynamics_blocks), "prediction_blocks": int(prediction_blocks),
            "policy_channels": int(policy_channels), "value_channels": int(value_channels),
            "value_hidden": int(value_hidden), "reward_hidden": int(reward_hidden),
            "value_head": str(value_head), "support_size": int(support_size),
            "support_max": float(support_max), "projection_dim": int(projection_dim),
            "action_planes": num_action_planes,
        }
        norm = _norm_layer(normalization)
        self.architecture.update(_normalization_entry(normalization))
        self.support = Support(support_size, support_max) if value_head == "categorical" else None
        out = self.support.num_bins if self.support is not None else 1
        self.latent_shape = (L, height, width)

        self.representation_net = nn.Sequential(
            *_conv_bn(in_channels, L, 3, norm), nn.ReLU(inplace=True),
            *[ResidualBlock(L, norm) for _ in range(representation_blocks)])
        if num_action_planes:
            # [A, P, H, W]; a buffer, not a parameter: the game's drawing of its moves is fixed
            self.register_buffer("action_plane_table", planes if planes is not None else
                                 torch.zeros(A, num_action_planes, height, width))
            self.action_embedding = None
        else:
            self.action_embedding = nn.Embedding(A, area)
        self.dynamics_entry = nn.Sequential(*_conv_bn(L + max(num_action_planes, 1), L, 3, norm))
        self.dynamics_trunk = nn.Sequential(*[ResidualBlock(L, norm)
                                              for _ in range(dynamics_blocks)])
        self.reward_head = _scalar_head(L, value_channels, area, reward_hidden, out, norm)
        self.prediction_trunk = nn.Sequential(*[ResidualBlock(L, norm)
                                                for _ in range(prediction_blocks)])
        self.policy_head = nn.Sequential(*_conv_bn(L, policy_channels, 1, norm),
                                         nn.ReLU(inplace=True), nn.Flatten(),
                                         nn.Linear(policy_channels * area, A))
        self.value_head = _scalar_head(L, value_channels, area, value_hidden, out, norm)
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
        if self.action_embedding is None:
            plane = self.action_plane_table[actions].to(latent.dtype)       # [N, P, H, W]
        else:
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
    is on; action_planes is the count P of the game's action planes (0: learned)."""
    planes = _game_action_planes(spec, muzero_config)
    return {
        "kind": ARCHITECTURE_KIND,
        "observation_shape": [int(d) for d in spec.observation_shape],
        "num_actions": int(spec.num_actions),
        **{key: getattr(model_config, key) for key in _MODEL_KEYS},
        **{key: getattr(muzero_config, field) for field, key in _ARCHITECTURE_KEYS.items()},
        "projection_dim": (int(muzero_config.projection_dim)
                           if muzero_config.consistency_loss_weight > 0 else 0),
        "action_planes": 0 if planes is None else int(planes.shape[1]),
        **_normalization_entry(muzero_config.normalization),
    }


def _game_action_planes(spec, muzero_config) -> np.ndarray | None:
    """The game's action planes [A, P, H, W] when the config reads actions through them
    (muzero.action_encoding "game") and the game has them; else None (a learned plane)."""
    if muzero_config.action_encoding == "learned":
        return None
    return getattr(spec, "action_planes", None)


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
    arch = muzero_architecture_for(spec, model_config, muzero_config)
    if arch["action_planes"]:
        arch["action_planes"] = _game_action_planes(spec, muzero_config)
    return build_muzero_net(arch)


__all__ = ["ARCHITECTURE_KIND", "MuZeroNet", "MuZeroOutput", "build_muzero_net",
           "make_muzero_net", "muzero_architecture_for", "scale_latent"]
