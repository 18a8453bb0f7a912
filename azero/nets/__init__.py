"""Neural networks: the AlphaZero policy-value ResNet, the MuZero nets, the numpy-facing
evaluator, device/threads."""
from .evaluator import Evaluator, make_evaluator
from .muzero import MuZeroNet, MuZeroOutput, build_muzero_net, make_muzero_net
from .resnet import PolicyValueNet, ResidualBlock, architecture_for, make_net, model_settings_of
from .resnet import build_net as _build_resnet
from .runtime import autocast_dtype, available_cpus, resolve_device, set_torch_threads


def build_net(architecture: dict):
    """Rebuild a net from its architecture dict (checkpoints store it): kind "resnet" (the
    AlphaZero PolicyValueNet) or "muzero" (MuZeroNet). ValueError on a dict it cannot build."""
    if isinstance(architecture, dict) and architecture.get("kind") == "muzero":
        return build_muzero_net(architecture)
    return _build_resnet(architecture)


__all__ = [
    "Evaluator", "MuZeroNet", "MuZeroOutput", "PolicyValueNet", "ResidualBlock", "architecture_for",
    "autocast_dtype", "available_cpus", "build_net", "make_evaluator", "make_muzero_net", "make_net",
    "model_settings_of",
    "resolve_device", "set_torch_threads",
]
