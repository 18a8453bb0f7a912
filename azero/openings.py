"""Random openings: uniformly random legal moves from the start position, for varied games in
self-play (azero/selfplay.py) and in matches (azero/arena.py). One implementation for both.
"""
from __future__ import annotations

import numpy as np

from azero.players.random_player import random_legal_actions

# Redraws of openings that ended the game, per opening asked for, before giving up (a length whose
# openings nearly always end the game would otherwise spin forever).
REDRAWS_PER_OPENING = 100


class OpeningsEndGames(RuntimeError):
    """Random openings of the asked lengths keep ending (or cutting off) the game."""


def play_random_openings(game, lengths, rng: np.random.Generator, *,
                         redraws_per_opening: int | None = None
                         ) -> tuple[np.ndarray, list[list[int]]]:
    """Row i plays lengths[i] uniformly random legal moves from the initial position, all rows in
    lockstep (one legal_mask and one step call per ply). An opening after which the game is over
    or cut off (terminal or truncated) is drawn again from the start, at most
    `redraws_per_opening` (default REDRAWS_PER_OPENING) x len(lengths) times in all, then
    OpeningsEndGames. Returns (states [N, S] after the openings, still live; the moves of each).
    """
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if len(lengths) and lengths.min() < 0:
        raise ValueError(f"opening lengths must be >= 0, got {lengths.min()}")
    per_opening = REDRAWS_PER_OPENING if redraws_per_opening is None else redraws_per_opening
    redraws_left = per_opening * len(lengths)
    states = game.initial_states(len(lengths))
    lines: list[list[int]] = [[] for _ in lengths]
    played = np.zeros(len(lengths), np.int64)
    while True:
        going = np.flatnonzero(played < lengths)
        if going.size == 0:
            return states, lines
        actions = random_legal_actions(game.legal_mask(states[going]), rng)
        states[going] = game.step(states[going], actions)
        played[going] += 1
        for i, b in enumerate(going):
            lines[b].append(int(actions[i]))
        after = states[going]
        over = going[game.terminal(after) | game.truncated(after)]
        if over.size:
            redraws_left -= over.size
            if redraws_left < 0:
                raise OpeningsEndGames(
                    f"random openings of up to {lengths.max()} moves keep ending "
                    f"{game.spec.name} games")
            states[over] = game.initial_states(over.size)
            played[over] = 0
            for b in over:
                lines[b].clear()
