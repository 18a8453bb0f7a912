"""Small deterministic games (Game protocol, plain numpy) and evaluators for the search tests.

Bandit: one move, then the game is over; arm values known, so the best arm is known.
RandomTree: a pseudo-random game tree (hash of the move path), varying legal actions per node,
terminal positions at varying depths with results -1 / 0 / +1: a stand-in for real rules.
Both are two-player games unless `num_players=1`.
"""
from __future__ import annotations

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
