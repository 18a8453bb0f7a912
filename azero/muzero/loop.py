"""MuZero in the training loop (azero.loop): the algorithm object of config.algorithm muzero.

The loop is AlphaZero's (self-play workers, trainer, candidates, gate, anchors, solver figures,
resume after kill -9); MuZero brings:
  * its trainer, MuZeroTrainer (K-step unrolls), whose checkpoints record the algorithm muzero, so
    the gate, anchors, `azero arena` / `play` / `gtp` / `bench solver` take them as MuZero players;
  * its replay, whole games in <run>/trajectories/ (TrajectoryWriter's atomic shards; resume
    reads them again: no pickle), sampled as K-step windows;
  * its self-play search, MuZeroSearch over the best network's model (azero/muzero/selfplay.py);
  * Reanalyze (muzero.reanalyze_fraction > 0): a worker process beside the trainer
    (azero/muzero/reanalyze_worker.py), handed the trainer's weights before each training chunk;
    the trainer's buffer reads the targets it refreshes (azero/muzero/reanalyze.py).
"""
from __future__ import annotations

from pathlib import Path

from ..alphazero import AlphaZero
from .replay import trajectory_dir


class MuZero(AlphaZero):
    name = "muzero"

    def trainer_class(self):
        from .train import MuZeroTrainer
        return MuZeroTrainer

    def architecture(self, config, spec) -> dict:
        from ..nets.muzero import muzero_architecture_for
        return muzero_architecture_for(spec, config.model, config.muzero)

    def replay_dir(self, run) -> Path:
        return trajectory_dir(run.root)

    def buffer(self, run, game, config):
        from .reanalyze import ReanalyzeBuffer
        from .reanalyze_worker import RefreshedTargets, reanalyze_dir
        mz = config.muzero
        store = (RefreshedTargets(reanalyze_dir(run.root) / "targets")
                 if mz.reanalyze_fraction > 0 else None)
        return ReanalyzeBuffer(self.replay_dir(run), game, config.replay.window_positions,
                               mz.unroll_steps, mz.td_steps, fraction=mz.reanalyze_fraction,
                               root_weight=config.selfplay.value_target_root_weight, store=store)

    def games(self, run, game, config, worker_id: int):
        from .selfplay import MuZeroGames
        return MuZeroGames(run, game, config, worker_id)

    def before_training(self, trainer, buffer, config, game):
        """The hand-off of the trainer's weights to the Reanalyze worker (None when
        muzero.reanalyze_fraction is 0)."""
        if config.muzero.reanalyze_fraction <= 0:
            return None
        from ..rundir import RunDir
        from .reanalyze_worker import NetworkHandOff
        return NetworkHandOff(trainer, buffer, RunDir.at(config.run_dir), config)

    def side_pool(self, run, config):
        """The Reanalyze worker (None when muzero.reanalyze_fraction is 0)."""
        if config.muzero.reanalyze_fraction <= 0:
            return None
        from .reanalyze_worker import reanalyze_pool
        return reanalyze_pool(run, config)

    def init_overrides(self, architecture: dict) -> dict:
        """Config keys (dotted) that make a config describe the MuZero net of `architecture`
        (for --init): the heads' sizes in model:, the rest in muzero:."""
        from ..nets.muzero import _ARCHITECTURE_KEYS, _MODEL_KEYS
        out = {f"model.{key}": architecture[key] for key in _MODEL_KEYS if key in architecture}
        out.update({f"muzero.{field}": architecture[key]
                    for field, key in _ARCHITECTURE_KEYS.items() if key in architecture})
        out["muzero.action_encoding"] = "game" if architecture.get("action_planes") else "learned"
        out["muzero.normalization"] = architecture.get("normalization", "batch")
        if architecture.get("projection_dim"):
            out["muzero.projection_dim"] = architecture["projection_dim"]
        return out


__all__ = ["MuZero"]
