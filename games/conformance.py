"""The conformance suite: one set of checks that every registered game passes (in the spirit of
OpenSpiel's RandomSimTest, pgx's api_test and AlphaZero.jl's test_game).

Every `check_*` function takes a `Game` (plus positions or a seed) and raises AssertionError with a
readable message on the first violation of the protocol in protocol.py. `run_all(game)` runs them
all; tests/test_games_conformance.py runs each of them for every name in `games.names()`.

Positions come from uniformly random batched playouts (`random_playouts`), which themselves check
the invariants of every step on the way: batched equals one-by-one, masks non-empty until terminal
and empty at terminal, move numbers, game length, terminal and truncated apart (a game is cut off
exactly at the move cap, never both), inputs never modified, and for a game with the fused
`step_with_info`, that it equals `step` followed by `legal_mask`, `terminal` and `result`.

About "zero-sum": the protocol holds one number per terminal state, `result`, from the side to
move's view, so the players' scores (result, -result) sum to zero by construction; what can go wrong
is the value itself, which must be -1, 0 or +1 at terminal states and 0 before.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .protocol import Game, IllegalActionError


@dataclass
class Playouts:
    """Positions visited by `random_playouts`, in visiting order (each game's last position, terminal
    or truncated, included)."""
    states: np.ndarray        # [N, S]
    terminal: np.ndarray      # [N] bool
    truncated: np.ndarray     # [N] bool: cut off by the move cap (never where terminal)
    lengths: np.ndarray       # [num_games] plies of each game, to its end or to the cap


def sample_legal(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """mask [B, A] bool -> [B] int64, a uniformly random legal action per row (0 for empty rows)."""
    scores = rng.random(mask.shape) + mask   # legal entries lie in [1, 2), illegal in [0, 1)
    return np.argmax(scores, axis=1).astype(np.int64)


def _pure(fn, *arrays):
    """Calls fn(*arrays) and asserts it left every input array unchanged."""
    before = [np.array(a, copy=True) for a in arrays]
    out = fn(*arrays)
    for i, (a, b) in enumerate(zip(arrays, before)):
        assert np.array_equal(a, b), f"{fn.__name__} modified its input argument {i}"
    return out


def _assert_states(game: Game, states: np.ndarray, n: int, what: str) -> None:
    spec = game.spec
    assert isinstance(states, np.ndarray), f"{what}: not an ndarray but {type(states)}"
    assert states.shape == (n, spec.state_size), \
        f"{what}: shape {states.shape}, expected {(n, spec.state_size)}"
    assert states.dtype == spec.state_dtype, \
        f"{what}: dtype {states.dtype}, expected {spec.state_dtype}"
    assert states.flags.c_contiguous, f"{what}: not C-contiguous"


def random_playouts(game: Game, seed: int = 0, num_games: int = 16,
                    one_by_one: bool = True) -> Playouts:
    """Plays `num_games` uniformly random games in lockstep through the batched API and checks each
    step, until every game is over or cut off by the move cap. With `one_by_one`, every batched
    step is compared with stepping each row alone."""
    spec = game.spec
    rng = np.random.default_rng(seed)
    states = _pure(game.initial_states, num_games)
    _assert_states(game, states, num_games, "initial_states")
    visited, visited_terminal, visited_truncated = [], [], []
    lengths = np.zeros(num_games, dtype=np.int64)
    fresh = np.ones(num_games, dtype=bool)     # rows not yet recorded at their end
    for ply in range(spec.max_game_length + 1):
        mask = _pure(game.legal_mask, states)
        terminal = _pure(game.terminal, states)
        truncated = _pure(game.truncated, states)
        result = _pure(game.result, states)
        to_play = _pure(game.to_play, states)
        move_number = _pure(game.move_number, states)
        visited.append(states[fresh])
        visited_terminal.append(terminal[fresh])
        visited_truncated.append(truncated[fresh])
        ended = terminal | truncated
        fresh = ~ended
        assert np.all(move_number[~ended] == ply), \
            f"seed {seed}: move_number {move_number} after {ply} plies"
        both = np.flatnonzero(terminal & truncated)
        assert len(both) == 0, (f"seed {seed}, ply {ply}, game {both[0] if len(both) else -1}: "
                                f"both terminal and truncated")
        cut = ~terminal & (move_number >= spec.max_game_length)
        assert np.array_equal(truncated, cut), (
            f"seed {seed}, ply {ply}: truncated {truncated} but the live games at the move cap "
            f"({spec.max_game_length} plies) are {cut}")
        assert np.all(np.isin(to_play, (0, 1))), f"seed {seed}: to_play {to_play}"
        nonempty = mask.any(axis=1)
        bad = np.flatnonzero(nonempty == terminal)
        assert len(bad) == 0, (
            f"seed {seed}, ply {ply}, game {bad[0]}: terminal={terminal[bad[0]]} but legal mask "
            f"{'non-empty' if nonempty[bad[0]] else 'empty'}:\n{game.render(states[bad[0]])}")
        assert np.all(result[~terminal] == 0), f"seed {seed}: non-terminal result {result}"
        assert np.all(np.isin(result[terminal], (-1.0, 0.0, 1.0))), \
            f"seed {seed}: terminal results {result[terminal]} not in {{-1, 0, 1}}"
        active = np.flatnonzero(~ended)
        if len(active) == 0:
            break
        assert ply < spec.max_game_length, \
            f"seed {seed}: a game is not cut off after max_game_length={spec.max_game_length} plies"
        lengths[active] = ply + 1
        actions = sample_legal(mask[active], rng)
        current = np.ascontiguousarray(states[active])
        stepped = _pure(game.step, current, actions)
        _assert_states(game, stepped, len(active), "step")
        assert np.array_equal(_pure(game.move_number, stepped), move_number[active] + 1), \
            f"seed {seed}: move_number did not advance by one at ply {ply}"
        if spec.alternating_turns:
            kept = np.flatnonzero(_pure(game.to_play, stepped) == to_play[active])
            assert len(kept) == 0, (
                f"seed {seed}, ply {ply}: spec.alternating_turns promises that every move passes "
                f"the turn, but player {to_play[active][kept[0]]} moves again after action "
                f"{actions[kept[0]]}:\n{game.render(current[kept[0]])}")
        if hasattr(game, "step_with_info"):    # optional: the fused step of games/kernel_game.py
            fused = _pure(game.step_with_info, current, actions)
            separate = (stepped, game.legal_mask(stepped), game.terminal(stepped),
                        game.result(stepped))
            for name, got, expected in zip(("states", "legal", "terminal", "result"), fused,
                                           separate):
                assert got.dtype == expected.dtype and np.array_equal(got, expected), (
                    f"seed {seed}, ply {ply}: step_with_info's {name} differs from step, "
                    f"legal_mask, terminal, result")
        if one_by_one:
            for j in range(len(active)):
                alone = game.step(current[j:j + 1], actions[j:j + 1])
                assert np.array_equal(alone[0], stepped[j]), (
                    f"seed {seed}, ply {ply}: stepping game {active[j]} alone differs from "
                    f"the batch:\n{game.render(current[j])}\naction {actions[j]}")
        states = states.copy()
        states[active] = stepped
    return Playouts(np.concatenate(visited), np.concatenate(visited_terminal),
                    np.concatenate(visited_truncated), lengths)


def subsample(playouts: Playouts, seed: int = 0, limit: int = 200) -> np.ndarray:
    """Up to `limit` live positions and `limit // 8` terminal ones and `limit // 8` truncated
    ones from `playouts`, as one C-contiguous batch [N, S] (live first, then terminal, then
    truncated)."""
    rng = np.random.default_rng(seed)
    live = np.flatnonzero(~playouts.terminal & ~playouts.truncated)
    live = np.sort(rng.choice(live, size=min(limit, len(live)), replace=False))
    chosen = [live]
    for kind in (playouts.terminal, playouts.truncated):
        rows = np.flatnonzero(kind)
        chosen.append(np.sort(rng.choice(rows, size=min(max(limit // 8, 1), len(rows)),
                                         replace=False)))
    return np.ascontiguousarray(playouts.states[np.concatenate(chosen)])


# ------------------------------------------------------------------------ the checks

def check_spec(game: Game) -> None:
    spec = game.spec
    assert isinstance(spec.name, str) and spec.name
    assert spec.num_actions > 0 and spec.state_size > 0 and spec.max_game_length > 0
    assert spec.num_players == 2
    assert all(isinstance(d, int) and d > 0 for d in spec.observation_shape)
    assert spec.num_symmetries >= 1
    perms = spec.action_permutations
    if perms is None:
        assert spec.num_symmetries == 1, "symmetries > 1 need action_permutations"
        return
    perms = np.asarray(perms)
    assert perms.shape == (spec.num_symmetries, spec.num_actions), \
        f"action_permutations shape {perms.shape}"
    assert np.issubdtype(perms.dtype, np.integer)
    assert np.array_equal(perms[0], np.arange(spec.num_actions)), "symmetry 0 must be the identity"
    for k in range(spec.num_symmetries):
        assert np.array_equal(np.sort(perms[k]), np.arange(spec.num_actions)), \
            f"action_permutations[{k}] is not a permutation"


def check_action_planes(game: Game) -> None:
    """spec.action_planes, where given: float [A, P, H, W] on the observation's board, one
    distinct drawing per action, and symmetry k draws action perm[k, a] as it transforms the
    drawing of a (checked through transform_observations, the planes set in its first P
    channels)."""
    spec = game.spec
    planes = spec.action_planes
    if planes is None:
        return
    planes = np.asarray(planes)
    A, C, H, W = spec.num_actions, *spec.observation_shape
    assert planes.ndim == 4 and planes.shape[0] == A and planes.shape[2:] == (H, W), \
        f"action_planes shape {planes.shape}, want [{A}, P, {H}, {W}]"
    assert planes.dtype == np.float32 and np.isfinite(planes).all()
    flat = planes.reshape(A, -1)
    assert len(np.unique(flat, axis=0)) == A, "two actions share their action planes"
    P = planes.shape[1]
    if spec.num_symmetries == 1 or P > C:
        return
    perms = np.asarray(spec.action_permutations)
    embedded = np.zeros((A, C, H, W), np.float32)
    embedded[:, :P] = planes
    for k in range(1, spec.num_symmetries):
        moved = game.transform_observations(embedded, np.full(A, k))
        assert np.array_equal(moved[:, :P], planes[perms[k]]), \
            f"symmetry {k}: the planes of perm[{k}, a] are not the transformed planes of a"


def check_initial_states(game: Game) -> None:
    for n in (1, 3):
        states = game.initial_states(n)
        _assert_states(game, states, n, f"initial_states({n})")
        assert np.all(states == states[0]), "initial states differ"
        assert not game.terminal(states).any()
        assert not game.truncated(states).any()
        assert game.legal_mask(states).any(axis=1).all()
        assert np.all(game.to_play(states) == 0), "player 0 moves first"
        assert np.all(game.move_number(states) == 0)
        assert np.all(game.result(states) == 0)
    assert game.initial_states(1) is not game.initial_states(1)


def check_shapes_and_dtypes(game: Game, states: np.ndarray, seed: int = 0) -> None:
    """Output shapes and dtypes of every batched function, for batches of len(states), 1 and 0."""
    spec = game.spec
    for batch in (states, states[:1], states[:0]):
        batch = np.ascontiguousarray(batch)
        b = len(batch)
        expect = {
            "legal_mask": ((b, spec.num_actions), np.bool_),
            "terminal": ((b,), np.bool_),
            "truncated": ((b,), np.bool_),
            "result": ((b,), np.float32),
            "to_play": ((b,), np.int8),
            "move_number": ((b,), np.int32),
            "observation": ((b,) + tuple(spec.observation_shape), np.float32),
        }
        for name, (shape, dtype) in expect.items():
            out = _pure(getattr(game, name), batch)
            assert isinstance(out, np.ndarray), f"{name} returned {type(out)}"
            assert out.shape == shape, f"{name}: shape {out.shape}, expected {shape}"
            assert out.dtype == dtype, f"{name}: dtype {out.dtype}, expected {np.dtype(dtype)}"
        obs = game.observation(batch)
        assert np.isfinite(obs).all(), "observation has non-finite values"
        for k in range(spec.num_symmetries):
            moved = _pure(game.transform_states, batch, k)
            _assert_states(game, moved, b, f"transform_states k={k}")
        ks = np.arange(b) % spec.num_symmetries
        tobs = _pure(game.transform_observations, obs, ks)
        assert tobs.shape == obs.shape and tobs.dtype == np.float32, "transform_observations"
        pol = np.full((b, spec.num_actions), 1.0 / spec.num_actions, dtype=np.float32)
        tpol = _pure(game.transform_policies, pol, ks)
        assert tpol.shape == pol.shape and tpol.dtype == np.float32, "transform_policies"
    empty = game.step(np.ascontiguousarray(states[:0]), np.zeros(0, dtype=np.int64))
    _assert_states(game, empty, 0, "step on an empty batch")


def check_terminal_stays_terminal(game: Game, terminal_states: np.ndarray) -> None:
    """Terminal states: empty mask, fixed result, and step raises for every action."""
    spec = game.spec
    assert len(terminal_states), "no terminal states to check"
    assert game.terminal(terminal_states).all()
    assert not game.legal_mask(terminal_states).any()
    result = game.result(terminal_states)
    assert np.array_equal(result, game.result(terminal_states.copy()))
    for state in terminal_states[:8]:
        for action in range(spec.num_actions):
            batch = state[None].copy()
            try:
                _pure(game.step, batch, np.array([action], dtype=np.int64))
            except IllegalActionError:
                continue
            raise AssertionError(f"step with action {action} on a finished game did not raise "
                                 f"IllegalActionError:\n{game.render(state)}")


def check_truncated(game: Game, truncated_states: np.ndarray, seed: int = 0) -> None:
    """States cut off by the move cap: live (not terminal), legal moves left, no result, and the
    game may go on: a legal move gives a state that is again truncated or over by the rules."""
    spec = game.spec
    if not len(truncated_states):
        return
    rng = np.random.default_rng(seed)
    assert game.truncated(truncated_states).all()
    assert not game.terminal(truncated_states).any(), "a truncated state is also terminal"
    assert np.all(game.move_number(truncated_states) >= spec.max_game_length)
    mask = game.legal_mask(truncated_states)
    assert mask.any(axis=1).all(), "a truncated state has no legal move (and is not terminal)"
    assert np.all(game.result(truncated_states) == 0), "a truncated state has a result"
    after = _pure(game.step, truncated_states, sample_legal(mask, rng))
    _assert_states(game, after, len(truncated_states), "step past the move cap")
    assert np.all(game.truncated(after) | game.terminal(after)), \
        "a move past the cap gave a state neither truncated nor terminal"
    assert not (game.truncated(after) & game.terminal(after)).any()


def _expect_illegal(game: Game, states: np.ndarray, actions: np.ndarray, action: int) -> None:
    try:
        _pure(game.step, states, actions)
    except IllegalActionError as e:
        assert str(action) in str(e), f"IllegalActionError does not name action {action}: {e}"
        return
    raise AssertionError(f"step did not raise IllegalActionError for action {action}:\n"
                         f"{game.render(states[int(np.argmax(actions == action))])}")


def check_illegal_actions(game: Game, states: np.ndarray, seed: int = 0) -> None:
    """Out-of-range and masked-out actions raise IllegalActionError naming the action, also when
    only one row of a batch is bad, and the input is left untouched."""
    spec = game.spec
    rng = np.random.default_rng(seed)
    live = states[~game.terminal(states)]
    assert len(live), "no live states to check"
    masks = game.legal_mask(live)
    for i in rng.choice(len(live), size=min(16, len(live)), replace=False):
        batch = np.ascontiguousarray(np.repeat(live[i:i + 1], 2, axis=0))
        good = int(sample_legal(masks[i:i + 1], rng)[0])
        bad_actions = [-1, spec.num_actions] + list(np.flatnonzero(~masks[i])[:3])
        for bad in bad_actions:
            _expect_illegal(game, batch, np.array([good, bad], dtype=np.int64), int(bad))


def check_symmetries(game: Game, states: np.ndarray, seed: int = 0) -> None:
    """Every symmetry k maps legal moves to legal moves and states, observations, policies and
    steps consistently, and keeps terminal / result / to_play / move_number."""
    spec = game.spec
    if spec.num_symmetries == 1:
        return
    perms = np.asarray(spec.action_permutations)
    rng = np.random.default_rng(seed)
    mask = game.legal_mask(states)
    obs = game.observation(states)
    n = len(states)
    for k in range(spec.num_symmetries):
        ks = np.full(n, k)
        moved = _pure(game.transform_states, states, k)
        moved_mask = game.legal_mask(moved)
        assert np.array_equal(moved_mask[:, perms[k]], mask), f"symmetry {k}: legal masks disagree"
        assert np.array_equal(game.transform_policies(mask.astype(np.float32), ks),
                              moved_mask.astype(np.float32)), f"symmetry {k}: policies disagree"
        assert np.array_equal(game.transform_observations(obs, ks), game.observation(moved)), \
            f"symmetry {k}: observation(transform_states(s)) != " \
            f"transform_observations(observation(s))"
        for f in (game.terminal, game.truncated, game.result, game.to_play, game.move_number):
            assert np.array_equal(f(moved), f(states)), f"symmetry {k} changes {f.__name__}"
        live = np.flatnonzero(~game.terminal(states))
        if len(live):
            actions = sample_legal(mask[live], rng)
            after = game.step(np.ascontiguousarray(states[live]), actions)
            moved_after = game.step(np.ascontiguousarray(moved[live]), perms[k][actions])
            assert np.array_equal(game.transform_states(after, k), moved_after), \
                f"symmetry {k} does not commute with step"
    # Mixed symmetries in one call, row by row.
    ks = rng.integers(0, spec.num_symmetries, size=n)
    pol = rng.random((n, spec.num_actions)).astype(np.float32)
    tpol = game.transform_policies(pol, ks)
    tobs = game.transform_observations(obs, ks)
    for i in range(n):
        assert np.array_equal(tpol[i, perms[ks[i]]], pol[i]), "transform_policies, mixed k"
        assert np.array_equal(tobs[i], game.transform_observations(obs[i:i + 1], ks[i:i + 1])[0])


def check_notation(game: Game, states: np.ndarray, seed: int = 0) -> None:
    """format -> parse round trip on every legal move; distinct moves format distinctly; garbage
    and illegal moves raise ValueError."""
    live = states[~game.terminal(states)]
    blocked = ~game.legal_mask(live).all(axis=1)      # positions with some illegal action
    for state in np.concatenate([live[blocked][:16], live[~blocked][:16]]):
        legal = np.flatnonzero(game.legal_mask(state[None])[0])
        texts = set()
        for action in legal:
            text = game.format_action(state, int(action))
            assert isinstance(text, str) and text.strip(), f"format_action({action}) = {text!r}"
            assert game.parse_action(state, text) == action, \
                f"parse_action(format_action({action}) = {text!r}) != {action}"
            texts.add(text)
        assert len(texts) == len(legal), "two legal actions format to the same text"
        for garbage in ("", "   ", "#?!", "not a move"):
            try:
                game.parse_action(state, garbage)
            except ValueError as e:
                assert str(e), "parse_action raised ValueError without a reason"
                continue
            raise AssertionError(f"parse_action accepted {garbage!r}")
        for action in np.flatnonzero(~game.legal_mask(state[None])[0])[:4]:
            try:
                text = game.format_action(state, int(action))
            except ValueError:
                continue    # a game may refuse to name an illegal action at all
            try:
                game.parse_action(state, text)
            except ValueError:
                continue
            raise AssertionError(
                f"parse_action accepted illegal move {text!r}:\n{game.render(state)}")


def check_render(game: Game, states: np.ndarray, seed: int = 0) -> None:
    for state in states[:8]:
        for color in (False, True):
            text = _pure(lambda s: game.render(s, color=color), state)
            assert isinstance(text, str) and text.strip(), "render returned nothing"
        text = game.render(state, last_action=0)
        assert isinstance(text, str) and text.strip()


def check_determinism(game: Game, states: np.ndarray, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    live = np.ascontiguousarray(states[~game.terminal(states)])
    if not len(live):
        return
    actions = sample_legal(game.legal_mask(live), rng)
    assert np.array_equal(game.step(live, actions), game.step(live.copy(), actions.copy()))
    assert np.array_equal(game.observation(live), game.observation(live.copy()))


# The checks run on a batch of positions; each takes (game, states [N, S], seed=0).
POSITION_CHECKS = (check_shapes_and_dtypes, check_illegal_actions, check_symmetries,
                   check_notation, check_render, check_determinism)


def run_all(game: Game, seeds: tuple[int, ...] = (0, 1, 2), num_games: int = 16) -> None:
    """Every check, on positions from random playouts with each seed."""
    check_spec(game)
    check_action_planes(game)
    check_initial_states(game)
    for seed in seeds:
        p = random_playouts(game, seed=seed, num_games=num_games)
        assert np.all(p.lengths <= game.spec.max_game_length)
        check_terminal_stays_terminal(game, p.states[p.terminal])
        check_truncated(game, p.states[p.truncated], seed=seed)
        states = subsample(p, seed)
        for check in POSITION_CHECKS:
            check(game, states, seed=seed)
