"""AlphaZero policy-value ResNet.

    obs [N, C, H, W] -> conv3x3 stem -> `blocks` x residual(conv-BN-ReLU-conv-BN + skip, ReLU)
        policy head: conv1x1 -> BN -> ReLU -> flatten -> linear -> logits [N, A]
        value head:  conv1x1 -> BN -> ReLU -> flatten -> linear -> ReLU -> linear -> tanh -> [N]
        ownership head (optional, Go): conv1x1 -> tanh -> [N, H, W], +1 = side to move owns the point
        opponent policy head (optional; KataGo's auxiliary target): the policy head's shape ->
                     logits [N, A] of the next position's search policy (the opponent's reply);
                     trained only, never searched with

The whole shape of the network is one plain dict (`architecture`), stored in checkpoints so that
`build_net(architecture)` rebuilds it without pickling any class.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

ARCHITECTURE_KIND = "resnet"


class ResidualBlock(nn.Module):
    """conv3x3-norm-ReLU-conv3x3-norm + the input, ReLU. `norm(channels)` makes the two norm
    layers (kept as bn1 / bn2 whatever they are, so the state dicts' names never change):
    BatchNorm2d by default; MuZero's nets may take a per-sample one (muzero.normalization)."""

    def __init__(self, channels: int, norm=nn.BatchNorm2d):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = norm(channels)
        # Each block starts as the identity (Goyal et al. 2017): deep nets train from step one.
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(x + y)


class PolicyValueNet(nn.Module):
    """forward(obs [N, C, H, W] float32) -> (policy logits [N, A], value [N] in [-1, 1]).
    With `ownership=True`, `forward_all` also returns ownership [N, H, W] in [-1, 1]; with
    `opponent_policy=True`, `forward_all(..., opponent_policy=True)` the opponent-reply logits.
    The architecture dict holds "opponent_policy" only when it is True, so the dicts (and
    checkpoints) of nets without that head are those of the code before it."""

    def __init__(self, observation_shape: tuple[int, int, int] | list[int], num_actions: int, *,
                 blocks: int = 5, channels: int = 64, policy_channels: int = 2,
                 value_channels: int = 1, value_hidden: int = 64, ownership: bool = False,
                 opponent_policy: bool = False):
        super().__init__()
        if len(observation_shape) != 3:
            raise ValueError(f"observation_shape must be (C, H, W), got {tuple(observation_shape)}")
        in_channels, height, width = (int(d) for d in observation_shape)
        self.architecture: dict[str, Any] = {
            "kind": ARCHITECTURE_KIND,
            "observation_shape": [in_channels, height, width],
            "num_actions": int(num_actions),
            "blocks": int(blocks),
            "channels": int(channels),
            "policy_channels": int(policy_channels),
            "value_channels": int(value_channels),
            "value_hidden": int(value_hidden),
            "ownership": bool(ownership),
        }
        if opponent_policy:
            self.architecture["opponent_policy"] = True
        area = height * width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True))
        self.trunk = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.policy_head = nn.Sequential(
            nn.Conv2d(channels, policy_channels, 1, bias=False),
            nn.BatchNorm2d(policy_channels), nn.ReLU(inplace=True), nn.Flatten(),
            nn.Linear(policy_channels * area, num_actions))
        self.value_head = nn.Sequential(
            nn.Conv2d(channels, value_channels, 1, bias=False),
            nn.BatchNorm2d(value_channels), nn.ReLU(inplace=True), nn.Flatten(),
            nn.Linear(value_channels * area, value_hidden), nn.ReLU(inplace=True),
            nn.Linear(value_hidden, 1))
        self.ownership_head = nn.Conv2d(channels, 1, 1) if ownership else None
        self.opponent_policy_head = nn.Sequential(
            nn.Conv2d(channels, policy_channels, 1, bias=False),
            nn.BatchNorm2d(policy_channels), nn.ReLU(inplace=True), nn.Flatten(),
            nn.Linear(policy_channels * area, num_actions)) if opponent_policy else None

    @property
    def num_actions(self) -> int:
        return self.architecture["num_actions"]

    def forward_all(self, obs: torch.Tensor, *, ownership_logits: bool = False,
                    opponent_policy: bool = False) -> tuple:
        """obs [N, C, H, W] -> (logits [N, A], value [N], ownership [N, H, W] or None).
        ownership_logits: return the ownership head's pre-tanh output z instead of tanh(z)
        (for a numerically safe loss: (1 + tanh z) / 2 = sigmoid(2 z)).
        opponent_policy: a fourth element, the opponent-reply logits [N, A] (None without that
        head); the head runs only when asked."""
        x = self.trunk(self.stem(obs))
        logits = self.policy_head(x)
        value = torch.tanh(self.value_head(x)).squeeze(-1)
        ownership = None
        if self.ownership_head is not None:
            ownership = self.ownership_head(x).squeeze(1)
            if not ownership_logits:
                ownership = torch.tanh(ownership)
        if opponent_policy:
            opponent = None if self.opponent_policy_head is None else self.opponent_policy_head(x)
            return logits, value, ownership, opponent
        return logits, value, ownership

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, value, _ = self.forward_all(obs)
        return logits, value


def fold_batchnorm(net: nn.Module) -> nn.Module:
    """An eval-mode copy of `net` with every BatchNorm2d folded into the Conv2d before it: the
    pairs inside an nn.Sequential and those of each ResidualBlock (every pair of the nets built
    here and in muzero.py; a per-sample norm, muzero.normalization "layer", stays as it is).
    The same function of the input, to float rounding, while `net`'s running statistics stay as
    they are now: fewer passes over the activations, which on a CPU is most of a small net's
    time. The copy is for inference only (training it would be wrong)."""
    fused = copy.deepcopy(net).eval()

    def fold(seq: nn.Sequential) -> nn.Sequential:
        mods, out = list(seq), []
        while mods:
            m = mods.pop(0)
            if isinstance(m, nn.Conv2d) and mods and isinstance(mods[0], nn.BatchNorm2d):
                m = fuse_conv_bn_eval(m, mods.pop(0))
            out.append(m)
        return nn.Sequential(*out)

    def fold_within(module: nn.Module) -> None:
        # Children first, so that a Sequential is rebuilt from children already folded (a
        # Sequential nested in another is folded where it sits).
        for name, child in list(module.named_children()):
            fold_within(child)
            if isinstance(child, nn.Sequential):
                setattr(module, name, fold(child))
        if isinstance(module, ResidualBlock) and isinstance(module.bn1, nn.BatchNorm2d):
            module.conv1, module.bn1 = fuse_conv_bn_eval(module.conv1, module.bn1), nn.Identity()
            module.conv2, module.bn2 = fuse_conv_bn_eval(module.conv2, module.bn2), nn.Identity()

    fold_within(fused)
    return fused.requires_grad_(False)


# config.ModelConfig field -> its key in the architecture dict (the rest of that dict comes from
# the game: observation_shape, num_actions).
_ARCHITECTURE_KEYS = {"kind": "kind", "blocks": "blocks", "channels": "channels",
                      "policy_channels": "policy_channels", "value_channels": "value_channels",
                      "value_hidden": "value_hidden", "ownership_head": "ownership",
                      "opponent_policy_head": "opponent_policy"}
# Keys an architecture dict holds only when True (older dicts, without them, stay valid).
_ONLY_WHEN_TRUE = ("opponent_policy",)


def architecture_for(spec, model_config) -> dict[str, Any]:
    """The architecture dict of the net `model_config` (config.ModelConfig) describes for a game."""
    arch = {
        "observation_shape": [int(d) for d in spec.observation_shape],
        "num_actions": int(spec.num_actions),
        **{key: getattr(model_config, field) for field, key in _ARCHITECTURE_KEYS.items()},
    }
    for key in _ONLY_WHEN_TRUE:
        if not arch[key]:
            del arch[key]
    return arch


def model_settings_of(architecture: dict[str, Any]) -> dict[str, Any]:
    """The config.ModelConfig fields that describe `architecture`: the inverse of architecture_for
    (for a run that starts from a trained network's weights)."""
    return {field: architecture.get(key, False if key in _ONLY_WHEN_TRUE else None)
            for field, key in _ARCHITECTURE_KEYS.items()
            if key in architecture or key in _ONLY_WHEN_TRUE}


def build_net(architecture: dict[str, Any]) -> PolicyValueNet:
    """Rebuild a net from its architecture dict. Raises ValueError on a dict it cannot build."""
    arch = dict(architecture)
    kind = arch.pop("kind", None)
    if kind != ARCHITECTURE_KIND:
        raise ValueError(f"unknown network kind {kind!r} (this version builds {ARCHITECTURE_KIND!r})")
    try:
        observation_shape = arch.pop("observation_shape")
        num_actions = arch.pop("num_actions")
        return PolicyValueNet(observation_shape, num_actions, **arch)
    except (KeyError, TypeError) as e:
        raise ValueError(f"bad architecture {architecture!r}: {e}") from None


def make_net(spec, model_config) -> PolicyValueNet:
    """A fresh net for a game (GameSpec) and a config.ModelConfig."""
    return build_net(architecture_for(spec, model_config))
