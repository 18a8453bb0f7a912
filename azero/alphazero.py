"""AlphaZero in the training loop (azero/loop.py): the algorithm object of config.algorithm
alphazero, and the base of MuZero's (azero/muzero/loop.py). azero.algorithms.algorithm_for picks
the one a config names.
"""
from __future__ import annotations

from pathlib import Path

from azero.config import Config
from azero.rundir import RunDir


class AlphaZero:
    """What the loop asks of a training algorithm (config.algorithm): its trainer, its network's
    architecture, its replay, how its self-play workers search and store games, a step run
    before each training chunk, and processes beside the trainer. MuZero's is
    azero.muzero.loop.MuZero."""
    name = "alphazero"

    def trainer_class(self):
        """A Trainer class: create(config, game, device), from_checkpoint(path, config), ..."""
        from azero.train import Trainer
        return Trainer

    def architecture(self, config: Config, spec) -> dict:
        """The architecture dict of the network config describes (what --init must match)."""
        from azero.nets import architecture_for
        return architecture_for(spec, config.model)

    def replay_dir(self, run: RunDir) -> Path:
        """Where the self-play workers write their shards."""
        return run.replay

    def buffer(self, run: RunDir, game, config: Config):
        """The trainer's replay over the workers' files."""
        from azero.replay import ReplayBuffer
        return ReplayBuffer(self.replay_dir(run), game, config.replay.window_positions)

    def games(self, run: RunDir, game, config: Config, worker_id: int):
        """A self-play worker's search and storage (azero.selfplay.AlphaZeroGames)."""
        from azero.selfplay import AlphaZeroGames
        return AlphaZeroGames(run, game, config, worker_id)

    def init_overrides(self, architecture: dict) -> dict:
        """Config keys (dotted) that make a config describe the network of `architecture`
        (`azero selfplay --init`)."""
        from azero.nets import model_settings_of
        return {f"model.{key}": value for key, value in model_settings_of(architecture).items()}

    def before_training(self, trainer, buffer, config: Config, game):
        """None, or a callable(steps) run before each chunk of `steps` optimizer steps in the
        trainer's process, returning figures (a dict) for that chunk's metrics record."""
        return None

    def side_pool(self, run: RunDir, config: Config):
        """None, or a WorkerPool (azero/pool.py) of processes that work beside the trainer and
        the self-play workers, started, checked and stopped with them."""
        return None


__all__ = ["AlphaZero"]
