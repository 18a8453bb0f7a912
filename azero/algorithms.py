"""The training algorithms by name: `algorithm_for(config)` is the object of config.algorithm
that the loop (azero/loop.py), the self-play workers, the inference server and the Ray actors
ask for its trainer, its network's architecture, its replay, how its self-play workers search and
store games, and a step before each training chunk. AlphaZero's is azero/alphazero.py; MuZero's
(azero/muzero/loop.py) derives from it. This registry sits above both, so neither imports it.
"""
from __future__ import annotations

from azero.config import Config


def algorithm_for(config: Config):
    """The algorithm object of config.algorithm (azero.alphazero.AlphaZero's face)."""
    if config.algorithm == "muzero":
        from azero.muzero.loop import MuZero
        return MuZero()
    from azero.alphazero import AlphaZero
    return AlphaZero()


__all__ = ["algorithm_for"]
