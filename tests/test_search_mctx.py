"""Behaviour equal to mctx (the reference implementation of Gumbel MuZero and MuZero's PUCT):
the same tabulated random model searched by mctx and by ModelSearch gives the same root visit
counts, action and improved policy.

On masked roots (Connect-Four-shaped, a different mask per row, tests/golden/make_mctx_golden.py)
the comparison runs in CI against mctx's stored outputs, without JAX. The live comparisons with
mctx (JAX compiles: slow) run with `pytest -m slow` where mctx is installed."""
import json
import os

import numpy as np
import pytest

from azero.search import ModelSearch, SearchConfig
from golden import make_mctx_golden as golden

GOLDEN = json.loads(golden.GOLDEN_PATH.read_text())
CASES = {case["name"]: case for case in golden.CASES}


def ours_on_masked_roots(case: dict, gumbel=None):
    """ModelSearch on the golden problem of `case` (gumbel: the noise mctx drew, [B, A])."""
    logits, values, rewards = golden.model_tables()
    B, A = golden.B, golden.A

    def recurrent_fn(latents, actions):
        child = golden.child_of(latents[:, 0], actions)
        return (child[:, None], rewards[child], np.full(len(actions), case["discount"], np.float32),
                logits[child], values[child])

    config = SearchConfig(algorithm=case["algorithm"], num_simulations=case["sims"],
                          value_bounds=None, max_num_considered_actions=case["considered"])
    search = ModelSearch(A, (1,), config, B, latent_dtype=np.int64)
    roots = golden.ROOTS
    noise = None if gumbel is None else np.asarray(gumbel, np.float32)
    return search.run(roots[:, None], logits[roots], values[roots], recurrent_fn,
                      root_legal=golden.legal_mask(), add_noise=False, temperature=0.0,
                      root_noise=noise)


def assert_same_as_mctx(case: dict, expected: dict) -> None:
    out = ours_on_masked_roots(case, expected.get("gumbel"))
    legal = golden.legal_mask()
    np.testing.assert_array_equal(out.visit_counts, expected["visit_counts"])
    np.testing.assert_allclose(out.root_value, expected["root_value"], atol=1e-5)
    assert (out.visit_counts[~legal] == 0).all()
    if case["algorithm"] == "gumbel":
        np.testing.assert_array_equal(out.actions, expected["action"])
        np.testing.assert_allclose(out.policy_target, expected["action_weights"], atol=1e-5)
        assert (out.policy_target[~legal] == 0).all()


def test_the_golden_roots_are_masked_and_fully_visited():
    """The golden problem exercises what it is for: several illegal actions, different per row,
    and rows whose every legal root action was visited (where mctx still counts the illegal,
    unvisited ones at the mixed value when it rescales the completed Q)."""
    legal = golden.legal_mask()
    assert len({tuple(row) for row in legal}) == golden.B and (~legal).sum() >= 2 * golden.B
    full = 0
    for name, expected in GOLDEN["cases"].items():
        visits = np.asarray(expected["visit_counts"])
        assert (visits[~legal] == 0).all(), name
        full += ((visits > 0) == legal).all(axis=1)[~legal.all(axis=1)].sum()
    assert full >= 10


@pytest.mark.parametrize("name", list(GOLDEN["cases"]))
def test_equals_the_mctx_golden(name):
    assert_same_as_mctx(CASES[name], GOLDEN["cases"][name])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_equals_mctx_live_on_masked_roots(name):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    pytest.importorskip("jax")
    pytest.importorskip("mctx")
    expected = golden.run_mctx(CASES[name])
    assert_same_as_mctx(CASES[name], {k: np.asarray(v) for k, v in expected.items()})

A, B = 3, 8
NODES = 100003  # a node's child under action a: (node * A + a + 1) % NODES (no depth limit)


def tables(seed=0):
    n = NODES
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, A)).astype(np.float32)
    values = rng.uniform(-1, 1, size=n).astype(np.float32)
    return logits, values


def ours(algorithm, sims, logits, values, roots, noise=None, considered=16):
    def recurrent_fn(latents, actions):
        child = (latents[:, 0] * A + actions + 1) % NODES
        return child[:, None], np.zeros(len(actions), np.float32), None, logits[child], values[child]

    config = SearchConfig(algorithm=algorithm, num_simulations=sims, value_bounds=None,
                          max_num_considered_actions=considered)
    search = ModelSearch(A, (1,), config, B, latent_dtype=np.int64)
    return search.run(roots[:, None], logits[roots], values[roots], recurrent_fn, add_noise=False,
                      temperature=0.0, root_noise=noise)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm,sims,considered,dirichlet", [
    ("gumbel", 12, 16, False), ("gumbel", 40, 16, False), ("gumbel", 64, 2, False),
    ("puct", 12, 16, False), ("puct", 40, 16, False), ("puct", 64, 16, True)])
def test_same_visits_as_mctx(algorithm, sims, considered, dirichlet):
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    jax = pytest.importorskip("jax")
    mctx = pytest.importorskip("mctx")
    import jax.numpy as jnp

    logits, values = tables()
    roots = np.arange(B, dtype=np.int64) * 7 % 40  # a few different nodes near the top
    jl, jv = jnp.asarray(logits), jnp.asarray(values)

    def recurrent_fn(params, rng_key, action, embedding):
        child = (embedding * A + action + 1) % NODES
        out = mctx.RecurrentFnOutput(reward=jnp.zeros(B), discount=-jnp.ones(B),
                                     prior_logits=jl[child], value=jv[child])
        return out, child

    root = mctx.RootFnOutput(prior_logits=jl[roots], value=jv[roots], embedding=jnp.asarray(roots, jnp.int32))
    key = jax.random.PRNGKey(42)
    if algorithm == "gumbel":
        out = mctx.gumbel_muzero_policy(params=(), rng_key=key, root=root, recurrent_fn=recurrent_fn,
                                        num_simulations=sims, max_num_considered_actions=considered)
        # the gumbel noise mctx drew (same split of the same key)
        _, gumbel_rng = jax.random.split(key)
        noise = np.asarray(jax.random.gumbel(gumbel_rng, shape=(B, A), dtype=jnp.float32))
    else:
        fraction = 0.25 if dirichlet else 0.0
        out = mctx.muzero_policy(params=(), rng_key=key, root=root, recurrent_fn=recurrent_fn,
                                 num_simulations=sims, dirichlet_fraction=fraction)
        noise = None
        if dirichlet:  # the Dirichlet sample mctx drew; the core normalises it (a no-op here)
            _, dirichlet_rng, _ = jax.random.split(key, 3)
            noise = np.asarray(jax.random.dirichlet(dirichlet_rng, alpha=jnp.full([A], 0.3),
                                                    shape=(B,)))
    tree = out.search_tree
    mctx_visits = np.asarray(tree.summary().visit_counts)
    result = ours(algorithm, sims, logits, values, roots, noise, considered)
    np.testing.assert_array_equal(result.visit_counts, mctx_visits)
    np.testing.assert_allclose(result.root_value, np.asarray(tree.summary().value), atol=1e-5)
    if algorithm == "gumbel":
        np.testing.assert_array_equal(result.actions, np.asarray(out.action))
        np.testing.assert_allclose(result.policy_target, np.asarray(out.action_weights), atol=1e-5)
