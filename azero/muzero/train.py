"""MuZero training: the K-step unrolled loss and its trainer.

For a window (azero.muzero.replay.MuZeroBatch) starting at observation o_t with actions
a_t .. a_{t+K-1}:

    s_0 = h(o_t);  s_k = g(scale_gradient(s_{k-1}, 1/2), a_{t+k-1}) (+ reward r_k);  f(s_k) -> p_k, v_k
    loss = Σ_k scale_gradient(l_k, 1 if k = 0 else 1/K),
    l_k = CE(π_{t+k}, p_k) + value_loss_weight ℓ(z_{t+k}, v_k)
          + [k >= 1] (reward_loss_weight ℓ(u_{t+k}, r_k) + consistency_loss_weight c_k)

each term masked per sample (MuZeroBatch's masks) and averaged over the batch. The two gradient
scalings are the paper's (appendix G): the unrolled steps' gradients are divided by K so the
total gradient does not grow with the unroll, and the gradient flowing back into each dynamics
step's latent input is halved. (The paper's pseudocode halves it after each recurrent step, so
its first dynamics call gets the full gradient; we follow the text, "at the start of the
dynamics function", for every step.) scale_gradient leaves forward values alone: the reported
losses are the unscaled sums.

ℓ is the squared error for scalar heads (tanh) and the cross-entropy against the two-hot target
over the support for categorical ones. The consistency term (EfficientZero, off by default) is
the negative cosine similarity between the projected+predicted s_k and the projection of
h(o_{t+k}) with its gradient stopped, on steps that are real positions.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..nets.muzero import MuZeroNet, MuZeroOutput, make_muzero_net
from ..train import Trainer, policy_cross_entropy, step_stats
from .replay import MuZeroBatch


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x in the forward pass; its gradient multiplied by `scale` in the backward pass."""
    return x * scale + x.detach() * (1.0 - scale)


def unroll(net: MuZeroNet, obs: torch.Tensor, actions: torch.Tensor,
           dynamics_gradient_scale: float = 0.5) -> list[MuZeroOutput]:
    """obs [B, C, H, W], actions int64 [B, K] -> K + 1 outputs: initial_inference(obs), then
    recurrent_inference on the previous latent (its gradient scaled by dynamics_gradient_scale
    at the dynamics' entry) and actions[:, k]."""
    outputs = [net.initial_inference(obs)]
    for k in range(actions.shape[1]):
        latent = scale_gradient(outputs[-1].latent, dynamics_gradient_scale)
        outputs.append(net.recurrent_inference(latent, actions[:, k]))
    return outputs


def _scalar_loss(net: MuZeroNet, scalar: torch.Tensor, logits: torch.Tensor | None,
                 target: torch.Tensor) -> torch.Tensor:
    """Per-sample [B] loss of a value/reward prediction against scalar targets [B]."""
    if logits is None:
        return (scalar.float() - target) ** 2
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return -(net.support.scalar_to_probs(target) * log_probs).sum(-1)


def unrolled_loss(net: MuZeroNet, batch: dict[str, torch.Tensor], *,
                  value_loss_weight: float = 1.0, reward_loss_weight: float = 1.0,
                  consistency_loss_weight: float = 0.0, dynamics_gradient_scale: float = 0.5,
                  step_gradient_scale: float | None = None
                  ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one batch (MuZeroBatch fields as tensors on the net's device) and its parts.
    step_gradient_scale: the unrolled steps' gradient factor (None: 1/K, the paper's)."""
    actions = batch["actions"]
    K = actions.shape[1]
    step_scale = 1.0 / K if step_gradient_scale is None else step_gradient_scale
    outputs = unroll(net, batch["obs"], actions, dynamics_gradient_scale)
    B = actions.shape[0]
    parts = {name: torch.zeros((), device=actions.device)
             for name in ("policy_loss", "policy_entropy", "value_loss", "reward_loss",
                         "consistency_loss")}
    total = torch.zeros((), device=actions.device)
    for k, out in enumerate(outputs):
        # policy targets are zero rows where policy_mask is 0: they add nothing (mean over B)
        policy = policy_cross_entropy(out.policy_logits, batch["policy"][:, k])
        value = (_scalar_loss(net, out.value, out.value_logits, batch["value"][:, k])
                 * batch["value_mask"][:, k]).sum() / B
        step = policy + value_loss_weight * value
        parts["policy_loss"] = parts["policy_loss"] + policy.detach()
        target = batch["policy"][:, k]
        # the targets' entropy: policy loss - entropy = KL(target || net), 0 when learnt
        parts["policy_entropy"] = parts["policy_entropy"] - (
            torch.xlogy(target, target).sum() / B)
        parts["value_loss"] = parts["value_loss"] + value.detach()
        if k > 0:
            reward = (_scalar_loss(net, out.reward, out.reward_logits, batch["reward"][:, k])
                      * batch["reward_mask"][:, k]).sum() / B
            step = step + reward_loss_weight * reward
            parts["reward_loss"] = parts["reward_loss"] + reward.detach()
            if consistency_loss_weight > 0:
                with torch.no_grad():
                    target = net.project(net.representation(batch["future_obs"][:, k - 1]),
                                         with_predictor=False)
                online = net.project(out.latent, with_predictor=True)
                similarity = F.cosine_similarity(online.float(), target.float(), dim=-1)
                consistency = -(similarity * batch["inside_mask"][:, k]).sum() / B
                step = step + consistency_loss_weight * consistency
                parts["consistency_loss"] = parts["consistency_loss"] + consistency.detach()
            step = scale_gradient(step, step_scale)
        total = total + step
    stats = {"loss": total.detach(), "policy_loss": parts["policy_loss"] / (K + 1),
             "policy_kl": (parts["policy_loss"] - parts["policy_entropy"]) / (K + 1),
             "value_loss": parts["value_loss"] / (K + 1), "reward_loss": parts["reward_loss"] / K}
    if consistency_loss_weight > 0:
        stats["consistency_loss"] = parts["consistency_loss"] / K
    return total, stats


class MuZeroTrainer(Trainer):
    """Trainer (optimizer, LR schedule, amp, counters, checkpoints: azero.train.Trainer) for a
    MuZeroNet on K-step windows.

        trainer = MuZeroTrainer.create(config, game)    # or .from_checkpoint(path, config)
        buffer = TrajectoryBuffer(trajectory_dir(run), game, config.replay.window_positions,
                                  config.muzero.unroll_steps, config.muzero.td_steps)
        trainer.train_steps(buffer, trainer.steps_owed(buffer.positions_seen), rng)
        trainer.save(path)      # a checkpoint whose algorithm is "muzero"
    """

    def __init__(self, net: MuZeroNet, config, device=None):
        if not isinstance(net, MuZeroNet):
            raise TypeError(f"MuZeroTrainer trains a MuZeroNet, not a {type(net).__name__}")
        if config.muzero.consistency_loss_weight > 0 and net.projector is None:
            raise ValueError("muzero.consistency_loss_weight > 0 needs a net with a projection "
                             "head (built with it on)")
        super().__init__(net, config, device)
        self.mz = config.muzero

    @classmethod
    def create(cls, config, game, device=None) -> "MuZeroTrainer":
        """A fresh MuZero net for `game` (config.model heads, config.muzero sizes) and its trainer."""
        return cls(make_muzero_net(game.spec, config.model, config.muzero), config, device)

    def _tensors(self, batch: MuZeroBatch) -> dict[str, torch.Tensor]:
        """The batch's fields on the device (arrays, or pinned tensors from host_batch)."""
        out = {}
        for name, value in batch._asdict().items():
            if value is None:
                continue
            dtype = torch.long if name == "actions" else torch.float32
            t = torch.as_tensor(value, dtype=dtype).to(self.device, non_blocking=True)
            if name == "obs":
                t = t.contiguous(memory_format=self._layout)
            out[name] = t
        return out

    def _train_step(self, batch: MuZeroBatch, check_finite: bool) -> dict[str, Any]:
        """One optimizer step on a MuZeroBatch; returns the losses (means per unrolled step) as
        0-d device tensors and lr (Trainer.train_step and train_steps read them)."""
        tensors = self._tensors(batch)
        if self.mz.consistency_loss_weight > 0 and "future_obs" not in tensors:
            raise ValueError("the consistency loss needs future_obs in the batch "
                             "(sample(..., future_observations=True))")
        lr = self._set_lr()
        self.net.train()
        with self._autocast():
            loss, stats = unrolled_loss(
                self.net, tensors, value_loss_weight=self.cfg.value_loss_weight,
                reward_loss_weight=self.mz.reward_loss_weight,
                consistency_loss_weight=self.mz.consistency_loss_weight)
        grad_norm = self._optimize(loss, int(tensors["obs"].shape[0]), check_finite)
        return step_stats(stats, lr, grad_norm)

    def sample_batch(self, buffer, rng: np.random.Generator) -> MuZeroBatch:
        """train.batch_size K-step windows from a TrajectoryBuffer (with the observations of the
        unrolled steps when the consistency loss is on); Trainer.train_steps draws through it."""
        return buffer.sample(self.cfg.batch_size, rng,
                             future_observations=self.mz.consistency_loss_weight > 0)


__all__ = ["MuZeroTrainer", "scale_gradient", "unroll", "unrolled_loss"]
