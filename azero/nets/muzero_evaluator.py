"""A MuZero network as the model search sees it: the adapter between azero.search.ModelSearch and
a net with MuZeroNet's inference API (azero/nets/muzero.py):

    net.initial_inference(obs float32 [N, C, H, W]) -> (latent [N, *L], policy_logits [N, A],
        value [N], ...)                     representation + prediction on a real observation
    net.recurrent_inference(latent [N, *L], actions int64 [N]) -> (next latent, policy_logits,
        value [N] (side to move at the next latent), reward [N] (for the mover), ...)
    net.latent_shape                        L, the shape of one latent

MuZeroEvaluator wraps the net: `initial(states)` for the roots, `recurrent(latents, actions)` as
ModelSearch's recurrent_fn, and `__call__(states)` as an AlphaZero Evaluator (the prediction on
the real observation: the raw policy). Latents stay torch tensors on the net's device (the search
keeps them in a TorchNodeStore there); only logits, values and rewards go to the host, in one copy
per call. MuZeroSearch is ModelSearch with BatchedSearch's face, `run(states, evaluator, ...)`
over real game states, so a player or a self-play loop drives either the same way.

Signs (protocol v2): values from the side to move at each latent, rewards for the mover, and the
search backs up with discount -1 per edge: the model has no to_play, so a two-player game must
promise `spec.alternating_turns` (every move passes the turn); a one-player game gets +1.
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from azero.search import ModelSearch, SearchConfig, SearchOutput

from .resnet import fold_batchnorm
from .runtime import inference_weight_dtype, resolve_device, snapshot_autocast_dtype


class MuZeroEvaluator:
    """net: a MuZeroNet (or any module with its inference API and `latent_shape`); game: the
    Game whose observations it reads. device None: where the net's parameters are. snapshot:
    evaluate a copy of the weights as they are now (later training of `net` is not seen), its
    BatchNorms folded into the convolutions (resnet.fold_batchnorm: 1.15x self-play
    positions/s in bf16 on the AVX512-BF16 CPU); the copy's weights, its inputs and the latents
    the search stores take
    runtime.inference_weight_dtype(device, precision) (bf16 where the CPU computes it in
    hardware or the GPU has it, as the AlphaZero evaluator's snapshot, then without autocast;
    amp=False keeps fp32)."""

    def __init__(self, net: nn.Module, game, device: str | torch.device | None = None, *,
                 amp: bool = True, snapshot: bool = False, precision: str | None = None):
        spec = game.spec
        if spec.num_players == 2 and not spec.alternating_turns:
            raise ValueError(f"{spec.name}: MuZero's model has no to_play, so its search flips "
                             f"the sign at every move; this game does not promise "
                             f"alternating_turns (a player may move twice)")
        self.device = (resolve_device(device) if device is not None
                       else next(net.parameters()).device)
        self.latent_dtype = torch.float32    # the node store's dtype, and the inputs'
        if snapshot:
            net = fold_batchnorm(net).to(self.device)
            self.latent_dtype = inference_weight_dtype(self.device, precision if amp else "fp32")
            net = net.to(self.latent_dtype)
        self.net = net
        self.game = game
        self.num_actions = int(spec.num_actions)
        self.latent_shape = tuple(int(d) for d in net.latent_shape)
        self.discount = -1.0 if spec.num_players == 2 else 1.0
        self._autocast = snapshot_autocast_dtype(self.device, self.latent_dtype, amp)

    @contextlib.contextmanager
    def _inference(self):
        """inference_mode, autocast where the device has it, the net in eval mode (restored)."""
        was_training = self.net.training
        if was_training:
            self.net.eval()
        try:
            with torch.inference_mode(), (
                    torch.autocast(self.device.type, dtype=self._autocast)
                    if self._autocast is not None else contextlib.nullcontext()):
                yield
        finally:
            if was_training:
                self.net.train()

    def _host(self, *columns: torch.Tensor) -> list[np.ndarray]:
        """float32 numpy copies of [N, k] / [N] tensors, in ONE device-to-host copy."""
        parts = [c.float().reshape(len(c), -1) for c in columns]
        host = torch.cat(parts, dim=1).cpu().numpy()
        out, start = [], 0
        for c, p in zip(columns, parts):
            width = p.shape[1]
            out.append(host[:, start:start + width].reshape(tuple(c.shape)))
            start += width
        return out

    def initial(self, states: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """states [N, S] (real positions) -> (latents float32 [N, *L] on the device, logits
        float32 [N, A], values float32 [N] for the side to move)."""
        obs = torch.from_numpy(np.ascontiguousarray(self.game.observation(states), np.float32))
        with self._inference():
            out = self.net.initial_inference(obs.to(self.device, dtype=self.latent_dtype))
            logits, values = self._host(out.policy_logits, out.value)
            return out.latent.to(self.latent_dtype), logits, values

    def recurrent(self, latents: torch.Tensor, actions: np.ndarray) -> tuple:
        """ModelSearch's recurrent_fn: latents [L, *latent_shape] on the device, actions int
        [L] -> (next latents [L, *L], rewards float32 [L] for the mover, None (the search's
        discount), logits float32 [L, A], values float32 [L] for the side to move next)."""
        actions = torch.from_numpy(np.asarray(actions, np.int64)).to(self.device)
        with self._inference():
            out = self.net.recurrent_inference(latents, actions)
            logits, values, rewards = self._host(out.policy_logits, out.value, out.reward)
            return out.latent.to(self.latent_dtype), rewards, None, logits, values

    def __call__(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The AlphaZero Evaluator contract over real states: (logits [N, A], values [N]) of
        representation + prediction (the raw policy)."""
        if len(states) == 0:
            return np.zeros((0, self.num_actions), np.float32), np.zeros(0, np.float32)
        _, logits, values = self.initial(states)
        return logits, values


class MuZeroSearch:
    """ModelSearch over real game states, with BatchedSearch's face: `run(states, evaluator)`
    computes the roots (representation + prediction on the REAL observation, the legal mask of
    the real game, at the root only), then searches the model below them. advance / reset keep
    or drop trees as BatchedSearch's do; a kept root takes the real observation's evaluation at
    the next run (ModelSearch.run)."""

    def __init__(self, evaluator: MuZeroEvaluator, config: SearchConfig, batch_size: int,
                 seed: int = 0):
        self.evaluator = evaluator
        self.game = evaluator.game
        self.model = ModelSearch(evaluator.num_actions, evaluator.latent_shape, config,
                                 batch_size, seed=seed, latent_dtype=evaluator.latent_dtype,
                                 discount=evaluator.discount, device=evaluator.device)
        self.batch_size = batch_size

    @property
    def config(self) -> SearchConfig:
        return self.model.config

    @config.setter
    def config(self, config: SearchConfig) -> None:
        """Only num_simulations may change after construction (the core holds the rest)."""
        self.model.config = config

    def run(self, states, evaluator: MuZeroEvaluator | None = None, *, add_noise: bool = True,
            temperature: float = 1.0, active=None, root_noise=None) -> SearchOutput:
        """states [B, S] real positions (non-terminal where active); evaluator: the one given at
        construction (accepted for BatchedSearch's signature; another is refused)."""
        ev = self.evaluator
        if evaluator is not None and evaluator is not ev:
            raise ValueError("MuZeroSearch searches the model of the evaluator it was built with")
        B, A, game = self.batch_size, ev.num_actions, self.game
        states = np.asarray(states)
        if states.shape != (B, game.spec.state_size):
            raise ValueError(f"states must have shape ({B}, {game.spec.state_size}), "
                             f"got {states.shape}")
        active = self.model._active(active)
        rows = np.flatnonzero(active)
        # [B, ...] root arguments; rows not active stay zero (the search skips them)
        latents = torch.zeros((B,) + ev.latent_shape, dtype=ev.latent_dtype, device=ev.device)
        logits = np.zeros((B, A), np.float32)
        values = np.zeros(B, np.float32)
        legal = np.zeros((B, A), bool)
        if len(rows):
            roots = states[rows]
            ended = game.terminal(roots)
            if ended.any():
                raise ValueError(f"terminal root states in rows {rows[ended].tolist()}")
            root_latents, logits[rows], values[rows] = ev.initial(roots)
            latents[torch.from_numpy(rows).to(ev.device)] = root_latents
            legal[rows] = game.legal_mask(roots)
        return self.model.run(latents, logits, values, ev.recurrent, root_legal=legal,
                              add_noise=add_noise, temperature=temperature, active=active,
                              root_noise=root_noise)

    def advance(self, actions, active=None) -> None:
        self.model.advance(actions, active)

    def reset(self, rows=None) -> None:
        self.model.reset(rows)


__all__ = ["MuZeroEvaluator", "MuZeroSearch"]
