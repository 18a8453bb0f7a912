"""Bad inputs raise Python exceptions (TypeError for dtypes, ValueError for shapes and values,
IndexError for ids, RuntimeError for calls out of order) and leave the search usable."""
import numpy as np
import pytest

from azero import _mcts
from azero.search import BatchedSearch, SearchConfig
from fake_games import RandomTree, uniform_evaluator

A = 4


def core_with_roots(algorithm="puct", B=2):
    core = _mcts.Search(B, A, algorithm=algorithm)
    core.expand_roots(np.arange(B, dtype=np.int32), np.zeros(B, np.float32),
                      np.zeros((B, A), np.float32), np.ones((B, A), bool))
    return core


def test_constructor_arguments():
    with pytest.raises(ValueError):
        _mcts.Search(0, 4)
    with pytest.raises(ValueError):
        _mcts.Search(2, 0)
    with pytest.raises(ValueError):
        _mcts.Search(2, 4, algorithm="alphabeta")
    with pytest.raises(ValueError):
        _mcts.Search(2, 4, value_bounds=(1.0, -1.0))
    with pytest.raises(ValueError):
        _mcts.Search(2, 4, leaves_per_step=0)
    with pytest.raises(ValueError):
        SearchConfig(algorithm="minimax")


def test_dtypes_and_shapes():
    core = _mcts.Search(2, A)
    rows = np.arange(2, dtype=np.int32)
    good = dict(values=np.zeros(2, np.float32), logits=np.zeros((2, A), np.float32),
                legal=np.ones((2, A), bool))
    with pytest.raises(TypeError, match="rows must have dtype int32"):
        core.expand_roots(rows.astype(np.int64), **good)
    with pytest.raises(TypeError, match="logits"):
        core.expand_roots(rows, **{**good, "logits": good["logits"].astype(np.float64)})
    with pytest.raises(TypeError, match="legal"):
        core.expand_roots(rows, **{**good, "legal": good["legal"].astype(np.int8)})
    with pytest.raises(TypeError, match="numpy array"):
        core.expand_roots([0, 1], **good)
    with pytest.raises(ValueError, match="shape"):
        core.expand_roots(rows, **{**good, "logits": np.zeros((2, A + 1), np.float32)})
    with pytest.raises(ValueError, match="shape"):
        core.expand_roots(rows, **{**good, "values": np.zeros(3, np.float32)})
    with pytest.raises(IndexError):
        core.expand_roots(np.array([0, 5], np.int32), **good)
    with pytest.raises(ValueError, match="twice"):
        core.expand_roots(np.array([1, 1], np.int32), **good)
    # non-contiguous inputs are fine
    core.expand_roots(rows, good["values"], np.zeros((2, 2 * A), np.float32)[:, ::2], good["legal"])
    assert (core.num_nodes() == 1).all()


def test_bad_values():
    core = _mcts.Search(2, A)
    rows = np.arange(2, dtype=np.int32)
    logits = np.zeros((2, A), np.float32)
    legal = np.ones((2, A), bool)
    with pytest.raises(ValueError, match="not finite"):
        core.expand_roots(rows, np.array([0, np.nan], np.float32), logits, legal)
    bad = logits.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="logit"):
        core.expand_roots(rows, np.zeros(2, np.float32), bad, legal)
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="logit"):
        core.expand_roots(rows, np.zeros(2, np.float32), bad, legal)
    with pytest.raises(ValueError, match="no legal action"):
        core.expand_roots(rows, np.zeros(2, np.float32), logits, np.zeros((2, A), bool))
    with pytest.raises(ValueError, match="listed twice"):
        core.expand_roots(rows, np.zeros(2, np.float32), logits,
                          legal_actions=np.array([0, 1, 1], np.int32),
                          legal_offsets=np.array([0, 1, 3], np.int32))
    with pytest.raises(IndexError):
        core.expand_roots(rows, np.zeros(2, np.float32), logits,
                          legal_actions=np.array([0, 1, 9], np.int32),
                          legal_offsets=np.array([0, 1, 3], np.int32))
    with pytest.raises(ValueError, match="offsets"):
        core.expand_roots(rows, np.zeros(2, np.float32), logits,
                          legal_actions=np.array([0, 1, 2], np.int32),
                          legal_offsets=np.array([0, 2, 1], np.int32))
    # an illegal action's logit may be anything; -inf on a legal one just means prior 0
    ok = logits.copy()
    ok[0, 0] = np.nan
    ok[1, 1] = -np.inf
    legal[0, 0] = False
    core.expand_roots(rows, np.zeros(2, np.float32), ok, legal)
    assert core.children(1, 0)["priors"][1] == 0
    assert (core.num_nodes() == 1).all()  # nothing half-done by the failed calls


def test_calls_out_of_order_and_ids():
    core = _mcts.Search(2, A)
    with pytest.raises(ValueError, match="no root"):
        core.start(5)
    core = core_with_roots()
    with pytest.raises(RuntimeError):
        core.expand_backup(np.zeros(2, np.float32))
    core.start(3)
    leaves = core.select()
    with pytest.raises(RuntimeError):
        core.select()
    with pytest.raises(RuntimeError):
        core.advance(np.zeros(2, np.int32))
    with pytest.raises(ValueError, match="rows"):
        core.expand_backup(np.zeros(2, np.float32), np.zeros((3, A), np.float32))
    with pytest.raises(ValueError, match="shape"):
        core.expand_backup(np.zeros(3, np.float32), np.zeros((2, A), np.float32))
    L = leaves.shape[1]
    core.expand_backup(np.zeros(L, np.float32), np.zeros((L, A), np.float32), np.ones((L, A), bool))
    with pytest.raises(IndexError):
        core.reset(np.array([2], np.int32))
    with pytest.raises(IndexError):
        core.node(0, 99)
    with pytest.raises(IndexError):
        core.children(5, 0)
    with pytest.raises(IndexError):
        core.check_invariants(-1)
    with pytest.raises(ValueError):
        core.start(-1)
    with pytest.raises(ValueError, match="Dirichlet"):
        _mcts.Search(2, A, algorithm="gumbel").start(1, dirichlet=np.ones((2, A), np.float32))


def test_abort_drops_the_interrupted_step():
    core = core_with_roots()
    core.start(4)
    leaves = core.select()
    assert core.step_in_progress and leaves.shape[1] == 2
    core.abort()
    assert not core.step_in_progress
    assert (core.num_nodes() == 0).all()  # the trees with pending leaves were dropped
    assert core.select().shape[1] == 0    # and the search ended


def test_advance_errors():
    core = _mcts.Search(2, A)
    legal = np.array([[1, 1, 0, 1], [1, 1, 1, 1]], bool)
    core.expand_roots(np.arange(2, dtype=np.int32), np.zeros(2, np.float32),
                      np.zeros((2, A), np.float32), legal)
    with pytest.raises(IndexError):
        core.advance(np.array([0, A], np.int32))
    with pytest.raises(ValueError, match="not legal"):
        core.advance(np.array([2, 0], np.int32))
    assert (core.num_nodes() == 1).all()  # the failed calls changed nothing
    core.advance(np.array([2, 0], np.int32), np.array([False, True]))
    assert core.num_nodes().tolist() == [1, 0]


def test_evaluator_errors_propagate_and_the_search_recovers():
    game = RandomTree(5, 6)
    roots = game.roots(np.arange(3) + 1)
    roots = roots[~game.terminal(roots)]
    search = BatchedSearch(game, SearchConfig(num_simulations=10), len(roots))
    calls = []

    def flaky(states):
        calls.append(1)
        if len(calls) == 3:
            raise KeyError("evaluator failed")
        return game.evaluate(states)

    with pytest.raises(KeyError):
        search.run(roots, flaky)
    assert not search.core.step_in_progress
    out = search.run(roots, game.evaluate)
    assert (out.visit_counts.sum(axis=1) >= 10).all()

    def wrong_shape(states):
        return np.zeros((len(states), 4), np.float32), np.zeros(len(states), np.float32)

    with pytest.raises(ValueError, match="logits"):
        BatchedSearch(game, SearchConfig(), len(roots)).run(roots, wrong_shape)
    ended = game.roots(np.arange(2))
    while not game.terminal(ended).all():
        going = ~game.terminal(ended)
        ended[going] = game.step(ended[going], game.legal_mask(ended[going]).argmax(axis=1))
    with pytest.raises(ValueError, match="terminal root"):
        BatchedSearch(game, SearchConfig(), 2).run(ended, uniform_evaluator(5))


def test_python_face_argument_errors():
    game = RandomTree(5, 6)
    search = BatchedSearch(game, SearchConfig(num_simulations=4), 2)
    with pytest.raises(ValueError, match="states"):
        search.run(np.zeros((3, 3), np.int64), game.evaluate)
    with pytest.raises(ValueError, match="active"):
        search.run(game.roots([1, 2]), game.evaluate, active=np.ones(3, bool))
    with pytest.raises(ValueError, match="actions"):
        search.advance(np.zeros(3, np.int64))
    with pytest.raises(TypeError):
        search.advance(np.zeros(2, np.float64))
    with pytest.raises(IndexError):
        search.reset([0, 7])


def test_an_exponential_draw_of_zero_still_gives_finite_gumbel_noise():
    """numpy's float32 exponential returns exactly 0 about once in 7 million draws; -log(0) must
    not reach the core (it refuses non-finite noise), or self-play workers die now and then."""
    game = RandomTree(5, 6)
    roots = game.roots(np.arange(3) + 1)
    roots = roots[~game.terminal(roots)]
    search = BatchedSearch(game, SearchConfig(num_simulations=8), len(roots))

    class ZeroDraws:
        def __init__(self, rng):
            self.rng = rng

        def standard_exponential(self, size, dtype):
            out = self.rng.standard_exponential(size=size, dtype=dtype)
            out[0, :] = 0.0                        # every action of root 0
            return out

        def __getattr__(self, name):
            return getattr(self.rng, name)

    search.rng = ZeroDraws(search.rng)
    out = search.run(roots, game.evaluate)
    assert (out.visit_counts.sum(axis=1) >= 8).all()
