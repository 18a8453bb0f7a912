"""MuZero self-play: how a worker (azero.workers.selfplay_worker) searches and stores its games
when config.algorithm is muzero.

The worker loop is the AlphaZero one (network reloads, pauses, records, the same SelfPlay with
its random openings, temperature and resignation); only two things differ:
  * the search is MuZeroSearch over the best network's learned model: the root from the real
    position (representation + prediction on its observation, the real game's legal mask), the
    dynamics network below it. A MuZeroSearch is bound to one network, so a new best brings a new
    search (the games go on; their trees start afresh);
  * a finished game is stored whole as a trajectory (azero.muzero.replay.TrajectoryWriter: atomic
    shards in <run>/trajectories/): every searched position and the final one, the moves, the
    rewards (0 but the last move's: the result for its mover), to_play, the search policies and
    root values. A resigned game ends as if lost by the resigner on its last move; a truncated one
    has no rewards and is flagged (no absorbing targets after it).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from .replay import TrajectoryWriter, outcome_rewards, trajectory_dir


class MuZeroGames:
    """A MuZero worker's search and storage (azero.selfplay.AlphaZeroGames's face)."""

    def __init__(self, run, game, config, worker_id: int):
        self.game = game
        self.search_config = config.search
        self._writer_args = (run, worker_id, config.selfplay.games_per_shard)

    @functools.cached_property
    def writer(self) -> TrajectoryWriter:
        """The trajectory shard writer, made on first use (a Ray actor, run None, never uses it)."""
        run, worker_id, games_per_shard = self._writer_args
        return TrajectoryWriter(trajectory_dir(run.root), worker=worker_id,
                                games_per_shard=games_per_shard)

    def evaluator(self, net, device):
        """A MuZeroEvaluator of a snapshot of the best network's weights."""
        from ..nets.muzero_evaluator import MuZeroEvaluator
        return MuZeroEvaluator(net, self.game, device, snapshot=True)

    def search_factory(self, evaluator):
        """SelfPlay's make_search(batch_size, seed): a MuZeroSearch over `evaluator`'s model."""
        return muzero_search_factory(evaluator, self.search_config)

    def add_game(self, g, generation: int) -> Path | None:
        """Queue a finished game (azero.selfplay.FinishedGame) as a trajectory; the shard's path
        when one was written."""
        return self.writer.add_trajectory(*trajectory_of(self.game, g))


def muzero_search_factory(evaluator, search_config):
    """SelfPlay's make_search(batch_size, seed) for a MuZeroEvaluator: a MuZeroSearch over its
    learned model with `search_config`."""
    from ..nets.muzero_evaluator import MuZeroSearch
    return lambda batch_size, seed: MuZeroSearch(evaluator, search_config, batch_size, seed=seed)


def trajectory_of(game, g) -> tuple:
    """TrajectoryWriter.add_trajectory's arguments for a finished game: (states [T+1, S] with
    the final position, actions [T], rewards [T], to_play [T+1], policy [T, A], root_value [T],
    truncated)."""
    actions = np.asarray(g.actions, np.int64)
    final = game.step(np.asarray(g.states[-1:]), actions[-1:])          # [1, S]
    states = np.concatenate([g.states, final])
    to_play = np.asarray(game.to_play(states), np.int64)
    if g.truncated or g.result_first_player is None:
        rewards = np.zeros(len(actions), np.float32)                     # no result: no reward
    else:
        # the result for the side to move at the final position (the player after the last move)
        final_result = g.result_first_player if to_play[-1] == 0 else -g.result_first_player
        rewards = outcome_rewards(to_play, final_result)
    return (states, actions, rewards, to_play, g.policy_targets, g.root_values,
            bool(g.truncated))


__all__ = ["MuZeroGames", "muzero_search_factory", "trajectory_of"]
