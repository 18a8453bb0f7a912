"""The network as the search sees it: numpy states in, numpy logits/values out (the `Evaluator`
contract of azero/search.py)."""
from __future__ import annotations

import contextlib
from typing import Callable

import numpy as np
import torch
from torch import nn

from azero.search import Evaluator  # the one definition of the contract

from .resnet import fold_batchnorm
from .runtime import (autocast_dtype, inference_weight_dtype, resolve_device,
                      snapshot_autocast_dtype)



def make_evaluator(net: nn.Module, game, device: str | torch.device | None = None, *,
                   max_batch: int | None = None, amp: bool = True,
                   snapshot: bool = False, precision: str | None = None,
                   transform: Callable[[nn.Module], nn.Module] | None = None) -> Evaluator:
    """Wrap `net` as an Evaluator for `game`.

    evaluator(states [L, S] int64) -> (logits float32 [L, A], values float32 [L]); values are from the
    side to move's point of view (the net is trained that way). Features come from
    game.observation(states). One forward pass per call (or per `max_batch` rows), under
    torch.inference_mode, with bf16/fp16 autocast on cuda when `amp`. The net is put in eval mode for
    the call and its previous mode restored, so a trainer may share it.

    snapshot=True: evaluate a copy of the net's weights as they are now, prepared for inference
    (BatchNorm folded into the convolutions, and on a CPU the channels-last layout oneDNN's
    convolutions prefer: 1.5-2x faster on the 2-core test box); later changes to `net` are not
    seen, so make a new evaluator after loading new weights. The snapshot's weights are also
    cast to runtime.inference_weight_dtype(device, precision): bf16 where the CPU computes bf16
    in hardware (2.1x fp32's positions/s at batch 128 for Connect Four's 4x48 on the 2-core
    AVX512-BF16 box; decisive accuracy unchanged: BENCHMARKS.md) and on a CUDA GPU with bf16,
    unless precision or $AZERO_INFERENCE_PRECISION says fp32; cast weights run without
    autocast (runtime.snapshot_autocast_dtype). Inputs are cast to the weights' dtype, outputs
    returned as float32. transform (snapshots only; benchmarks try quantization and torch.compile
    through it) replaces the prepared module by transform(module).
    """
    device = resolve_device(device) if device is not None else next(net.parameters()).device
    num_actions = int(game.spec.num_actions)
    dtype = autocast_dtype(device) if amp else None
    layout, weights = torch.contiguous_format, None     # None: the net's own dtype
    if snapshot:
        net = fold_batchnorm(net)
        if device.type == "cpu":
            layout = torch.channels_last
        weights = inference_weight_dtype(device, precision if amp else "fp32")
        net = net.to(device=device, dtype=weights, memory_format=layout)
        dtype = snapshot_autocast_dtype(device, weights, amp)
        if transform is not None:
            net = transform(net)

    def evaluate(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        states = np.asarray(states)
        n = states.shape[0]
        if n == 0:
            return np.zeros((0, num_actions), np.float32), np.zeros((0,), np.float32)
        obs = np.ascontiguousarray(game.observation(states), dtype=np.float32)
        step = n if not max_batch else max_batch
        logits_out = np.empty((n, num_actions), np.float32)
        values_out = np.empty((n,), np.float32)
        was_training = net.training      # a snapshot is always in eval mode: nothing to switch
        if was_training:
            net.eval()
        try:
            with torch.inference_mode(), (torch.autocast(device.type, dtype=dtype)
                                          if dtype is not None else contextlib.nullcontext()):
                for start in range(0, n, step):
                    x = torch.from_numpy(obs[start:start + step]).to(
                        device, dtype=weights, non_blocking=True, memory_format=layout)
                    logits, values = net(x)
                    logits_out[start:start + step] = logits.float().cpu().numpy()
                    values_out[start:start + step] = values.float().cpu().numpy()
        finally:
            if was_training:
                net.train()
        return logits_out, values_out

    return evaluate
