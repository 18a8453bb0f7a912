"""Golden outputs of mctx on masked roots, for the CI test that checks ModelSearch against them
without JAX (tests/test_search_mctx.py::test_equals_the_mctx_golden).

    pip install mctx                        # mctx 0.0.71 with jax 0.10.2 made the committed file
    python tests/golden/make_mctx_golden.py # rewrites tests/golden/mctx_masked_roots.json

The problems: B = 8 roots of a Connect-Four-shaped model (A = 7 actions) with a different legal
mask per row (full columns: from all 7 legal down to 1), several illegal actions in most rows, so
that searches visit every legal root action while illegal ones stay unvisited (where mctx's
completed-Q rescaling counts them at the mixed value). The model is a table over NODES nodes,
the child of node n under action a being (n * A + a + 1) % NODES (no depth limit); logits, values
and rewards are hashes of the node id (tests/fake_games.py mix), so the test rebuilds the same
model without storing it. Gumbel cases store the Gumbel noise mctx drew (JAX's RNG), which the
test hands to ModelSearch as root_noise.

Importable: PROBLEM (masks, roots, model tables), CASES, run_mctx(case) -> outputs of one case.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: fake_games
from fake_games import mix, unit  # noqa: E402

GOLDEN_PATH = Path(__file__).with_name("mctx_masked_roots.json")

A = 7
NODES = 4099
# Legal root actions per row (Connect Four columns that are not full).
LEGAL_COLUMNS = [
    [0, 1, 2, 3, 4, 5, 6],
    [0, 1, 2, 4, 5, 6],
    [2, 3, 4, 6],
    [2, 4],
    [6],
    [0, 3, 6],
    [0],
    [1, 2, 3, 4, 5],
]
B = len(LEGAL_COLUMNS)
ROOTS = np.array([5, 17, 29, 101, 256, 333, 1024, 2048], np.int64)   # node ids [B]

# Each case: mctx's policy and its arguments. "gumbel": gumbel_muzero_policy (gumbel_scale 1 or 0);
# "puct": muzero_policy without Dirichlet noise (its default qtransform_by_parent_and_siblings,
# our value_bounds=None). discount: of every model edge (-1: two players; 0.95: one player).
CASES = [
    dict(name="gumbel-4", algorithm="gumbel", sims=4, considered=16, gumbel_scale=1.0, discount=-1.0),
    dict(name="gumbel-6-m4", algorithm="gumbel", sims=6, considered=4, gumbel_scale=1.0, discount=-1.0),
    dict(name="gumbel-8-one-player", algorithm="gumbel", sims=8, considered=16, gumbel_scale=1.0,
         discount=0.95),
    dict(name="gumbel-16", algorithm="gumbel", sims=16, considered=16, gumbel_scale=1.0, discount=-1.0),
    dict(name="gumbel-48", algorithm="gumbel", sims=48, considered=16, gumbel_scale=1.0, discount=-1.0),
    dict(name="gumbel-32-m4", algorithm="gumbel", sims=32, considered=4, gumbel_scale=1.0, discount=-1.0),
    dict(name="gumbel-24-noiseless", algorithm="gumbel", sims=24, considered=16, gumbel_scale=0.0,
         discount=-1.0),
    dict(name="gumbel-40-one-player", algorithm="gumbel", sims=40, considered=8, gumbel_scale=1.0,
         discount=0.95),
    dict(name="puct-12", algorithm="puct", sims=12, considered=16, gumbel_scale=0.0, discount=-1.0),
    dict(name="puct-48-one-player", algorithm="puct", sims=48, considered=16, gumbel_scale=0.0,
         discount=0.95),
]


def legal_mask() -> np.ndarray:
    """bool [B, A]"""
    legal = np.zeros((B, A), bool)
    for b, cols in enumerate(LEGAL_COLUMNS):
        legal[b, cols] = True
    return legal


def model_tables():
    """(logits float32 [NODES, A] in [-2, 2], values float32 [NODES] in [-0.9, 0.9], rewards
    float32 [NODES] in [-0.3, 0.3]: the reward of the edge into a node)."""
    ids = np.arange(NODES, dtype=np.uint64)
    h = mix(ids[:, None] * np.uint64(A + 1) + np.arange(A, dtype=np.uint64)[None, :] + np.uint64(7))
    logits = (unit(h) * 4.0 - 2.0).astype(np.float32)
    values = (unit(mix(ids ^ np.uint64(0x5EED))) * 1.8 - 0.9).astype(np.float32)
    rewards = (unit(mix(ids ^ np.uint64(0xBEEF))) * 0.6 - 0.3).astype(np.float32)
    return logits, values, rewards


def child_of(nodes, actions):
    return (nodes * A + actions + 1) % NODES


def run_mctx(case: dict, seed: int = 42) -> dict:
    """mctx's outputs for one case: visit_counts int [B, A], root_value [B], and for Gumbel
    action [B], action_weights [B, A], gumbel [B, A] (the noise drawn)."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import jax.numpy as jnp
    import mctx

    logits, values, rewards = (jnp.asarray(t) for t in model_tables())
    discount = jnp.full(B, case["discount"], jnp.float32)

    def recurrent_fn(params, rng_key, action, embedding):
        child = child_of(embedding, action)
        return mctx.RecurrentFnOutput(reward=rewards[child], discount=discount,
                                      prior_logits=logits[child], value=values[child]), child

    roots = jnp.asarray(ROOTS, jnp.int32)
    root = mctx.RootFnOutput(prior_logits=logits[roots], value=values[roots], embedding=roots)
    invalid = jnp.asarray(~legal_mask())
    key = jax.random.PRNGKey(seed)
    out = {}
    if case["algorithm"] == "gumbel":
        policy = mctx.gumbel_muzero_policy(
            params=(), rng_key=key, root=root, recurrent_fn=recurrent_fn,
            num_simulations=case["sims"], invalid_actions=invalid,
            max_num_considered_actions=case["considered"], gumbel_scale=case["gumbel_scale"])
        _, gumbel_rng = jax.random.split(key)  # the split gumbel_muzero_policy makes
        out["gumbel"] = np.asarray(case["gumbel_scale"] * jax.random.gumbel(
            gumbel_rng, shape=(B, A), dtype=jnp.float32))
        out["action"] = np.asarray(policy.action)
        out["action_weights"] = np.asarray(policy.action_weights)
    else:
        policy = mctx.muzero_policy(params=(), rng_key=key, root=root, recurrent_fn=recurrent_fn,
                                    num_simulations=case["sims"], invalid_actions=invalid,
                                    dirichlet_fraction=0.0)
    summary = policy.search_tree.summary()
    out["visit_counts"] = np.asarray(summary.visit_counts)
    out["root_value"] = np.asarray(summary.value)
    return out


def to_json(golden: dict) -> str:
    """JSON with one line per array row (diffs stay readable)."""
    lines = ["{", f' "mctx": "{golden["mctx"]}",', f' "jax": "{golden["jax"]}",', ' "cases": {']
    for i, (name, arrays) in enumerate(golden["cases"].items()):
        lines.append(f'  "{name}": {{')
        for j, (key, value) in enumerate(arrays.items()):
            rows = value if isinstance(value[0], list) else [value]
            body = ",\n    ".join(json.dumps(r) for r in rows)
            body = f"[\n    {body}\n   ]" if rows is value else body
            lines.append(f'   "{key}": {body}' + ("," if j + 1 < len(arrays) else ""))
        lines.append("  }" + ("," if i + 1 < len(golden["cases"]) else ""))
    lines += [" }", "}", ""]
    return "\n".join(lines)


def main() -> None:
    import jax
    import mctx
    golden = {"mctx": mctx.__version__, "jax": jax.__version__, "cases": {}}
    for case in CASES:
        out = run_mctx(case)
        golden["cases"][case["name"]] = {k: v.tolist() for k, v in out.items()}
    GOLDEN_PATH.write_text(to_json(golden))
    print(f"wrote {GOLDEN_PATH} ({len(CASES)} cases, mctx {mctx.__version__}, jax {jax.__version__})")


if __name__ == "__main__":
    main()
