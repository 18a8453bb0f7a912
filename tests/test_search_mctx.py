"""Behaviour equal to mctx (the reference implementation of Gumbel MuZero and MuZero's PUCT):
the same tabulated random model searched by mctx and by ModelSearch gives the same root visit
counts, action and improved policy. Slow (JAX compiles): run with `pytest -m slow`."""
import os

import numpy as np
import pytest

from azero.search import ModelSearch, SearchConfig

pytestmark = pytest.mark.slow

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
