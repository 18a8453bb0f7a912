"""Neural networks: the AlphaZero policy-value ResNet, its numpy-facing evaluator, device/threads."""
from .evaluator import Evaluator, make_evaluator
from .resnet import (PolicyValueNet, ResidualBlock, architecture_for, build_net, make_net,
                     model_settings_of)
from .runtime import autocast_dtype, available_cpus, resolve_device, set_torch_threads

__all__ = [
    "Evaluator", "PolicyValueNet", "ResidualBlock", "architecture_for", "autocast_dtype",
    "available_cpus", "build_net", "make_evaluator", "make_net", "model_settings_of",
    "resolve_device", "set_torch_threads",
]
