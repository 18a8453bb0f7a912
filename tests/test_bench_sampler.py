"""The rules bench's random policy (`azero.bench.rules.sample_uniform_legal`): it picks only legal
actions, -1 where there is none, and uniformly among the legal ones, both where rejection sampling
finds one and where few actions are legal (the exact fallback)."""
import numpy as np

from azero.bench.rules import sample_uniform_legal


def _draw(mask_row, repeats, seed=3):
    mask = np.repeat(np.asarray(mask_row, dtype=np.bool_)[None], repeats, axis=0)
    out = np.empty(repeats, dtype=np.int64)
    sample_uniform_legal(mask, np.array([seed], dtype=np.uint64), out)
    return out


def _assert_uniform(picks, legal):
    """Every pick is legal and each legal action's count is within 5 standard deviations of
    len(picks) / len(legal)."""
    assert np.isin(picks, legal).all()
    counts = np.array([(picks == a).sum() for a in legal])
    p = 1.0 / len(legal)
    expected, sd = len(picks) * p, np.sqrt(len(picks) * p * (1 - p))
    assert (np.abs(counts - expected) < 5 * sd).all(), counts


def test_uniform_where_many_actions_are_legal():
    row = np.zeros(82, dtype=np.bool_)
    legal = np.arange(0, 82, 2)                       # 41 of 82: mostly rejection sampling
    row[legal] = True
    _assert_uniform(_draw(row, 40_000), legal)


def test_uniform_where_few_actions_are_legal():
    row = np.zeros(82, dtype=np.bool_)
    legal = np.array([0, 3, 40, 80, 81])              # 5 of 82: mostly the exact fallback
    row[legal] = True
    _assert_uniform(_draw(row, 30_000), legal)


def test_one_legal_action_and_none():
    row = np.zeros(82, dtype=np.bool_)
    row[81] = True
    assert (_draw(row, 500) == 81).all()
    assert (_draw(np.zeros(82, dtype=np.bool_), 50) == -1).all()


def test_rows_of_a_batch_are_sampled_independently():
    """Each row gets its own pick from its own mask (no row reads another's)."""
    rng = np.random.default_rng(0)
    mask = rng.random((2000, 82)) < rng.random((2000, 1)) * 0.5
    mask[::7] = False
    out = np.empty(len(mask), dtype=np.int64)
    sample_uniform_legal(mask, np.array([11], dtype=np.uint64), out)
    has_legal = mask.any(axis=1)
    assert (out[~has_legal] == -1).all()
    assert mask[np.flatnonzero(has_legal), out[has_legal]].all()
