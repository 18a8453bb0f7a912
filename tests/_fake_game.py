"""A tiny game for unit tests of the learning stack (nets, replay, trainer, checkpoints), so they
need no real game: "drop three", Connect Four's rules on a 3x4 board with 3 in a row to win.
Implements the parts of games/protocol.py's Game those tests use, in plain numpy (slow but tiny).

State row (S = 16): 12 cells (row-major, row 0 = bottom; 0 empty, 1 = player 0, 2 = player 1),
to_play, move count, terminal flag, result for the side to move.
Symmetry 1 = left-right mirror (column c <-> 3 - c)."""
from __future__ import annotations

import numpy as np

from azero.games.protocol import GameSpec, IllegalActionError

ROWS, COLS, WIN = 3, 4, 3
CELLS = ROWS * COLS
TO_PLAY, MOVES, TERMINAL, RESULT = CELLS, CELLS + 1, CELLS + 2, CELLS + 3


def _lines() -> list[list[int]]:
    lines = []
    for r in range(ROWS):
        for c in range(COLS):
            for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
                cells = [(r + i * dr, c + i * dc) for i in range(WIN)]
                if all(0 <= rr < ROWS and 0 <= cc < COLS for rr, cc in cells):
                    lines.append([rr * COLS + cc for rr, cc in cells])
    return lines


LINES = np.array(_lines())


class DropThree:
    def __init__(self):
        self.spec = GameSpec(
            name="dropthree", num_actions=COLS, observation_shape=(3, ROWS, COLS), state_size=CELLS + 4,
            max_game_length=CELLS, num_symmetries=2,
            action_permutations=np.array([np.arange(COLS), np.arange(COLS)[::-1]], np.int64),
            board_shape=(ROWS, COLS))

    def initial_states(self, n):
        return np.zeros((n, self.spec.state_size), np.int64)

    def legal_mask(self, states):
        board = states[:, :CELLS].reshape(-1, ROWS, COLS)
        return (board[:, ROWS - 1, :] == 0) & (states[:, TERMINAL:TERMINAL + 1] == 0)

    def terminal(self, states):
        return states[:, TERMINAL] != 0

    def result(self, states):
        return states[:, RESULT].astype(np.float32)

    def to_play(self, states):
        return states[:, TO_PLAY].astype(np.int8)

    def move_number(self, states):
        return states[:, MOVES].astype(np.int32)

    def step(self, states, actions):
        out = states.copy()
        legal = self.legal_mask(states)
        for b, a in enumerate(np.asarray(actions)):
            if not legal[b, a]:
                raise IllegalActionError(f"illegal action {a} in position {states[b].tolist()}")
            col = out[b, :CELLS].reshape(ROWS, COLS)[:, a]
            row = int(np.argmin(col != 0))
            player = out[b, TO_PLAY]
            out[b, row * COLS + a] = player + 1
            out[b, MOVES] += 1
            out[b, TO_PLAY] = 1 - player
            won = np.any(np.all(out[b, LINES] == player + 1, axis=1))
            if won or out[b, MOVES] == CELLS:
                out[b, TERMINAL] = 1
                out[b, RESULT] = -1 if won else 0   # the side to move now is the loser
        return out

    def observation(self, states):
        board = states[:, :CELLS].reshape(-1, ROWS, COLS)
        me = (states[:, TO_PLAY] + 1)[:, None, None]
        obs = np.stack([board == me, (board != 0) & (board != me),
                        np.broadcast_to((states[:, TO_PLAY] == 0)[:, None, None], board.shape)], axis=1)
        return obs.astype(np.float32)

    def transform_states(self, states, k):
        if k == 0:
            return states.copy()
        out = states.copy()
        out[:, :CELLS] = states[:, :CELLS].reshape(-1, ROWS, COLS)[:, :, ::-1].reshape(-1, CELLS)
        return out

    def transform_observations(self, obs, k):
        k = np.asarray(k)
        return np.where((k == 1)[:, None, None, None], obs[..., ::-1], obs)

    def transform_policies(self, policies, k):
        k = np.asarray(k)
        return np.where((k == 1)[:, None], policies[:, ::-1], policies)


def random_games(game, n_games: int, rng: np.random.Generator):
    """Play n random games; returns per game (states [T, S], policy [T, A], value [T]) where the
    policy is uniform over legal moves and value the final result from each mover's view."""
    games = []
    for _ in range(n_games):
        s = game.initial_states(1)
        states, policies = [], []
        while not game.terminal(s)[0]:
            mask = game.legal_mask(s)[0]
            states.append(s[0])
            policies.append(mask / mask.sum())
            s = game.step(s, np.array([rng.choice(np.flatnonzero(mask))]))
        final = game.result(s)[0]        # from the side to move at the end
        last_mover = game.to_play(s)[0]
        movers = np.array([st[TO_PLAY] for st in states])
        value = np.where(movers == last_mover, final, -final).astype(np.float32)
        games.append((np.array(states), np.array(policies, np.float32), value))
    return games
