"""Small deterministic games (Game protocol, plain numpy) and evaluators for the search tests.

Bandit: one move, then the game is over; arm values known, so the best arm is known.
RandomTree: a pseudo-random game tree (hash of the move path), varying legal actions per node,
terminal positions at varying depths with results -1 / 0 / +1: a stand-in for real rules.
Both are two-player games unless `num_players=1`.
TurnTree: a RandomTree whose side to move comes from the state, where a player sometimes moves twice.
DropThree: Connect Four's rules on a 3x4 board, 3 in a row to win, with a mirror symmetry: a real
little game for the learning stack's tests (nets, replay, trainer, checkpoints).
  State row (S = 16): 12 cells (row-major, row 0 = bottom; 0 empty, 1 = player 0, 2 = player 1),
  to_play, move count, terminal flag, result for the side to move.
  Symmetry 1 = left-right mirror (column c <-> 3 - c).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from azero.games.protocol import GameSpec, IllegalActionError

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix(x) -> np.ndarray:
    """splitmix64 finaliser, elementwise over uint64 (wrapping arithmetic)."""
    x = np.asarray(x).astype(np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


def unit(h) -> np.ndarray:
    """uint64 hash -> float64 in [0, 1)."""
    return (np.asarray(h) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class _Base:
    spec: GameSpec

    def to_play(self, states):
        return (self.move_number(states) % self.spec.num_players).astype(np.int8)

    def observation(self, states):
        return states.astype(np.float32).reshape(len(states), *self.spec.observation_shape)

    def transform_states(self, states, k):
        return states.copy()

    def transform_observations(self, obs, k):
        return obs.copy()

    def transform_policies(self, policies, k):
        return policies.copy()

    def parse_action(self, state, text):
        return int(text)

    def format_action(self, state, action):
        return str(action)

    def render(self, state, last_action=None, color=False):
        return str(state.tolist())

    def step(self, states, actions):
        actions = np.asarray(actions).astype(np.int64)
        legal = self.legal_mask(states)
        bad = (actions < 0) | (actions >= self.spec.num_actions)
        bad |= ~legal[np.arange(len(states)), np.clip(actions, 0, self.spec.num_actions - 1)]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise IllegalActionError(f"action {actions[i]} illegal in {states[i].tolist()}")
        return self._step(states, actions)


class Bandit(_Base):
    """One-ply game. State [3]: (problem index, pulled arm or -1, move number). Problem p has arm
    values values[p] (mover's view) and legal arms legal[p]. After the pull, the side to move is
    the other player (two-player), whose result is -values[p, arm]."""

    def __init__(self, values, legal=None, num_players: int = 2):
        self.values = np.asarray(values, np.float64)
        P, A = self.values.shape
        self.legal = np.ones((P, A), bool) if legal is None else np.asarray(legal, bool)
        self.spec = GameSpec(name="bandit", num_actions=A, observation_shape=(3,), state_size=3,
                             max_game_length=1, num_players=num_players)

    def initial_states(self, n):
        s = np.zeros((n, 3), np.int64)
        s[:, 0] = np.arange(n) % len(self.values)
        s[:, 1] = -1
        return s

    def roots(self, problems):
        s = np.zeros((len(problems), 3), np.int64)
        s[:, 0] = problems
        s[:, 1] = -1
        return s

    def _step(self, states, actions):
        out = states.copy()
        out[:, 1] = actions
        out[:, 2] += 1
        return out

    def legal_mask(self, states):
        return self.legal[states[:, 0]] & (states[:, 1] < 0)[:, None]

    def terminal(self, states):
        return states[:, 1] >= 0

    def move_number(self, states):
        return states[:, 2].astype(np.int32)

    def result(self, states):
        arm = np.maximum(states[:, 1], 0)
        v = self.values[states[:, 0], arm]
        sign = -1.0 if self.spec.num_players == 2 else 1.0
        return np.where(states[:, 1] >= 0, sign * v, 0.0).astype(np.float32)


class RandomTree(_Base):
    """A pseudo-random game tree. State [3]: (key, depth, seed). Legal actions, terminal flags,
    results and the fake evaluator's outputs are hashes of the key, which hashes the move path."""

    def __init__(self, num_actions: int = 5, max_depth: int = 6, terminal_rate: float = 0.15,
                 num_players: int = 2, legal_rate: float = 0.7):
        self.max_depth = max_depth
        self.terminal_rate = terminal_rate
        self.legal_rate = legal_rate
        self.spec = GameSpec(name="randomtree", num_actions=num_actions, observation_shape=(3,),
                             state_size=3, max_game_length=max_depth, num_players=num_players)

    def initial_states(self, n):
        return self.roots(np.arange(n))

    def roots(self, seeds):
        seeds = np.asarray(seeds, np.int64)
        s = np.zeros((len(seeds), 3), np.int64)
        s[:, 0] = mix(seeds.astype(np.uint64) + np.uint64(12345)).view(np.int64)
        s[:, 2] = seeds
        return s

    def _key(self, states):
        return states[:, 0].view(np.uint64) if states[:, 0].flags.c_contiguous else \
            states[:, 0].copy().view(np.uint64)

    def _step(self, states, actions):
        out = states.copy()
        key = self._key(np.ascontiguousarray(states))
        with np.errstate(over="ignore"):
            out[:, 0] = mix(key * np.uint64(1000003) + actions.astype(np.uint64) + np.uint64(1)).view(np.int64)
        out[:, 1] += 1
        return out

    def terminal(self, states):
        key = self._key(np.ascontiguousarray(states))
        depth = states[:, 1]
        early = (depth >= 1) & (unit(mix(key ^ np.uint64(0xABCDEF))) < self.terminal_rate)
        return (depth >= self.max_depth) | early

    def legal_mask(self, states):
        A = self.spec.num_actions
        key = self._key(np.ascontiguousarray(states))
        h = mix(key[:, None] ^ (np.arange(1, A + 1, dtype=np.uint64)[None, :] * np.uint64(0x9E3779B97F4A7C15)))
        legal = unit(h) < self.legal_rate
        always = (mix(key ^ np.uint64(77)) % np.uint64(A)).astype(np.int64)
        legal[np.arange(len(states)), always] = True
        return legal & ~self.terminal(states)[:, None]

    def move_number(self, states):
        return states[:, 1].astype(np.int32)

    def result(self, states):
        key = self._key(np.ascontiguousarray(states))
        r = (mix(key ^ np.uint64(999)) % np.uint64(3)).astype(np.float32) - 1.0
        return np.where(self.terminal(states), r, 0.0).astype(np.float32)

    def evaluate(self, states):
        """A deterministic fake evaluator: logits in [-2, 2], values in [-0.9, 0.9] from hashes."""
        A = self.spec.num_actions
        key = self._key(np.ascontiguousarray(states))
        h = mix(key[:, None] ^ (np.arange(1, A + 1, dtype=np.uint64)[None, :] * np.uint64(0xD1B54A32D192ED03)))
        logits = (unit(h) * 4.0 - 2.0).astype(np.float32)
        values = (unit(mix(key ^ np.uint64(4242))) * 1.8 - 0.9).astype(np.float32)
        return logits, values


class TurnTree(RandomTree):
    """RandomTree where a player sometimes moves twice in a row (as after a capture in checkers or
    a chain in Dots and Boxes): after each move the mover keeps the turn when a hash of the new key
    is below `repeat_rate`. State [4]: RandomTree's (key, depth, seed) and the side to move, which
    `to_play` reads; results and evaluations are from that side's view."""

    def __init__(self, num_actions: int = 5, max_depth: int = 6, terminal_rate: float = 0.15,
                 legal_rate: float = 0.7, repeat_rate: float = 0.4):
        super().__init__(num_actions, max_depth, terminal_rate, num_players=2,
                         legal_rate=legal_rate)
        self.repeat_rate = repeat_rate
        self.spec = dataclasses.replace(self.spec, name="turntree", observation_shape=(4,),
                                        state_size=4)

    def roots(self, seeds):
        tree = super().roots(seeds)
        return np.concatenate([tree, np.zeros((len(tree), 1), np.int64)], axis=1)

    def _step(self, states, actions):
        out = super()._step(states, actions)
        again = unit(mix(self._key(out) ^ np.uint64(0x5EED))) < self.repeat_rate
        out[:, 3] = np.where(again, states[:, 3], 1 - states[:, 3])
        return out

    def to_play(self, states):
        return states[:, 3].astype(np.int8)


def uniform_evaluator(num_actions: int):
    """Zero logits (uniform priors) and zero values."""
    def evaluate(states):
        n = len(states)
        return np.zeros((n, num_actions), np.float32), np.zeros(n, np.float32)
    return evaluate


class CountingEvaluator:
    """Wraps an evaluator; records the batch size of every call."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[int] = []

    def __call__(self, states):
        self.calls.append(len(states))
        return self.inner(states)


# ------------------------------------------------------------------ DropThree

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


class SmallTicTacToe:
    """Tic-tac-toe (the full Game protocol) whose states are `dtype` rows (uint8 by default, any
    integer dtype), with a move cap `max_game_length` below 9 plies so that games get truncated:
    for the replay's "any width and dtype" and the truncation tests.
    State row [12]: cells 0..8 (row-major; 0 empty, 1 player 0, 2 player 1), ply, over (0/1),
    result for the side to move (0 none or draw, 1 win, 2 loss). Symmetry 1 = left-right mirror.
    """
    MIRROR = np.array([2, 1, 0, 5, 4, 3, 8, 7, 6], np.int64)
    LINES3 = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8],
                       [0, 4, 8], [2, 4, 6]])

    def __init__(self, dtype=np.uint8, max_game_length: int = 6):
        self.spec = GameSpec(name="smalltictactoe", num_actions=9, observation_shape=(2, 3, 3),
                             state_size=12, max_game_length=max_game_length,
                             state_dtype=np.dtype(dtype), num_symmetries=2,
                             action_permutations=np.stack([np.arange(9), self.MIRROR]))

    def initial_states(self, n):
        return np.zeros((n, 12), self.spec.state_dtype)

    def _rows(self, states):
        states = np.asarray(states)
        if states.dtype != self.spec.state_dtype or states.ndim != 2 or states.shape[1] != 12:
            raise ValueError(f"states are [B, 12] {self.spec.state_dtype}, got {states.dtype} "
                             f"{states.shape}")
        return states

    def legal_mask(self, states):
        states = self._rows(states)
        return (states[:, :9] == 0) & (states[:, 10:11] == 0)

    def terminal(self, states):
        return self._rows(states)[:, 10] != 0

    def truncated(self, states):
        states = self._rows(states)
        return (states[:, 10] == 0) & (states[:, 9] >= self.spec.max_game_length)

    def result(self, states):
        return np.array([0.0, 1.0, -1.0], np.float32)[self._rows(states)[:, 11]]

    def to_play(self, states):
        return (self._rows(states)[:, 9] % 2).astype(np.int8)

    def move_number(self, states):
        return self._rows(states)[:, 9].astype(np.int32)

    def step(self, states, actions):
        states, actions = self._rows(states), np.asarray(actions, np.int64)
        legal = self.legal_mask(states)
        for b, a in enumerate(actions):
            if not (0 <= a < 9 and legal[b, a]):
                raise IllegalActionError(f"action {a} illegal in {states[b].tolist()}")
        out = states.copy()
        rows = np.arange(len(states))
        mover = out[:, 9] % 2 + 1
        out[rows, actions] = mover
        out[:, 9] += 1
        won = np.all(out[:, self.LINES3] == mover[:, None, None], axis=2).any(axis=1)
        full = np.all(out[:, :9] != 0, axis=1)
        out[:, 10] = won | full
        out[:, 11] = np.where(won, 2, 0)            # the side to move now lost
        return out

    def observation(self, states):
        states = self._rows(states)
        me = (states[:, 9] % 2 + 1)[:, None]
        cells = states[:, :9]
        return np.stack([cells == me, (cells != 0) & (cells != me)], axis=1).astype(
            np.float32).reshape(len(states), 2, 3, 3)

    def transform_states(self, states, k):
        out = self._rows(states).copy()
        if k == 1:
            out[:, :9] = out[:, self.MIRROR]
        return out

    def transform_observations(self, obs, k):
        return np.where((np.asarray(k) == 1)[:, None, None, None], obs[..., ::-1], obs)

    def transform_policies(self, policies, k):
        return np.where((np.asarray(k) == 1)[:, None], policies[:, self.MIRROR], policies)

    def parse_action(self, state, text):
        t = text.strip()
        if not (len(t) == 1 and t.isdigit() and t != "9"):
            raise ValueError(f"{text!r}: a cell is 0..8")
        if not self.legal_mask(state[None])[0, int(t)]:
            raise IllegalActionError(f"cell {t} is taken or the game is over")
        return int(t)

    def format_action(self, state, action):
        return str(int(action))

    def render(self, state, last_action=None, color=False):
        return "\n".join("".join(".XO"[c] for c in state[r * 3:r * 3 + 3]) for r in range(3))
