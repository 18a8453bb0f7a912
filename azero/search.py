"""The Python face of the C++ batched MCTS (`azero._mcts`).

CONTRACT (other modules are written against it; keep these names and meanings):

    Evaluator = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
        states [L, S] (game state rows) -> (logits float32 [L, A], values float32 [L])
        values are from the point of view of the side to move in each state, in [-1, 1].
        Logits are raw; the search masks them to the legal actions itself.
        Never called with terminal states (the search scores those from game.result).

    SearchConfig: a frozen dataclass of the selection rule and its paper defaults, defined in
        azero/config.py: it IS a config's `search` section (its fields are documented and range-
        checked there; a bad value raises ConfigError naming the key, search.<field>):
        algorithm "gumbel" | "puct", num_simulations, PUCT's pb_c_base / pb_c_init / Dirichlet
        noise, Gumbel's max_num_considered_actions / gumbel_scale / c_visit / c_scale,
        leaves_per_step + virtual_loss, reuse_tree, value_bounds, tree_min_max.

    class BatchedSearch:
        def __init__(self, game, config: SearchConfig, batch_size: int, seed: int = 0): ...
        def run(self, states, evaluator, *, add_noise=True, temperature=1.0, active=None) -> SearchOutput
            states [B, S] non-terminal roots (rows with active[b] == False are skipped and may be
            anything). add_noise: Dirichlet (PUCT) / Gumbel noise (Gumbel; without it Gumbel picks
            deterministically). temperature: PUCT action sampling from visit counts (0 = argmax).
            One evaluator call per simulation step for the whole batch.
        def advance(self, actions, active=None) -> None
            After the move actions[b] was played in row b: keep the child's subtree as the next root
            (if config.reuse_tree), else drop the tree. Rows with active False are untouched.
        def reset(self, rows=None) -> None
            Drop the trees of the given rows (all rows if None), e.g. when a new game starts there.

    @dataclass SearchOutput:
        actions: np.ndarray         # int32 [B] the move to play
        visit_counts: np.ndarray    # int32 [B, A] root child visits
        policy_target: np.ndarray   # float32 [B, A] training target: normalised visits (PUCT) or
                                    # the completed-Q improved policy (Gumbel)
        root_value: np.ndarray      # float32 [B] search value of the root, side to move's view
        root_q: np.ndarray          # float32 [B, A] Q of each root child (side to move), NaN if unvisited

ADDITIONS (beyond the contract):

    SearchConfig.value_bounds = (-1.0, 1.0)
        PUCT normalises Q to [0, 1] by these fixed bounds, unvisited children counting as the lower
        bound (the AlphaZero pseudocode, mctx `qtransform_by_min_max`). None: by the parent's value
        and its children's Q (mctx `qtransform_by_parent_and_siblings`), for values without known
        bounds. Gumbel always uses mctx's completed-Q transform.
    SearchConfig.tree_min_max = False
        True (PUCT): by the running min/max of the Qs backed up anywhere in the tree during this
        search (the MuZero pseudocode's MinMaxStats; a kept tree's edge Qs seed it, and
        value_bounds, when given, are its starting bounds as the pseudocode's KnownBounds).
    SearchOutput rows that were not active hold action -1, zero visits / policy, NaN values.
    run(..., root_noise=None): float32 [B, A] noise to use instead of drawing it (Gumbel: gumbel
        samples, already scaled; PUCT: Gamma(alpha) samples, normalised over each root's legal
        actions by the core). For reproducing a search exactly (tests, comparisons with mctx).
    A tree whose stored root differs from the state passed to `run` is rebuilt (safety net for
        callers that forget `advance`/`reset`).
    run(..., add_noise=bool [B]): root noise in some rows only (KataGo's cheap searches have
        none). run(..., simulations=int [B]) (BatchedSearch): each row's own budget in the same
        batched search (KataGo's playout cap randomisation); a row whose budget is spent adds
        no leaf, so a search costs max(simulations) evaluator calls as before, on fewer rows
        once the cheap rows are done. Gumbel's Sequential Halving follows each row's budget
        (with fewer simulations than max_num_considered_actions it considers one action per
        simulation, as mctx's schedule does).
    SearchConfig.forced_playouts_k > 0 (PUCT): KataGo's forced playouts and policy target
        pruning in the rows searched with noise (self-play's training searches; players search
        without noise and are unaffected): see csrc/search.h (SearchParams, outputs). Their
        policy_target is the pruned visit distribution, PUCT samples their action from it, and
        visit_counts stay the raw visits.
    With tree reuse, Gumbel's Sequential Halving counts only this search's visits; Q, the
        improved policy and visit_counts use the whole kept subtree.
    ModelSearch: the same search over a learned model (MuZero); see below. make_core(): the C++
        trees alone.

SEMANTICS (tests/reference_mcts.py is the executable specification; tests/test_search_mctx.py
checks equality with mctx, on masked roots in CI through mctx's stored outputs):
    Values are stored for the side to move at each node; backing up through the edge into a node,
    G_parent = reward + discount * G_node. Over a game's rules reward is 0 and the discount is the
    sign from the players: +1 where game.to_play is the same at parent and child (a player who
    moves again; every edge of a one-player game), -1 where the turn passes. The root and every
    new leaf count one visit worth their evaluation (terminal leaves: game.result, never the
    evaluator). Ties between equal scores go to the lowest action.
    PUCT: argmax Qn(a) + sqrt(N) (c_init + log((N + c_base + 1) / c_base)) P(a) / (1 + n(a)).
    Gumbel: mctx's gumbel_muzero_policy: Gumbel-top-k + Sequential Halving at the root, completed Q
    (mixed value for unvisited children), sigma = (c_visit + max n) c_scale q, deterministic
    interior selection argmax softmax(logits + sigma) - n / (1 + sum n), policy target
    softmax(logits + sigma), action argmax gumbel + logits + sigma among the most visited. The
    rescaling of the completed Q to [0, 1] takes its min and max over all A actions as mctx does:
    every action without a visit, illegal ones included, counts at the mixed value.
    One difference from mctx, on purpose: PUCT's Dirichlet noise is Dirichlet over the root's
    legal actions (the AlphaZero pseudocode draws it over the legal moves); mctx's muzero_policy
    draws it over all A actions, mixes it into the softmax of the unmasked logits and masks after,
    so on a masked root its noisy priors differ from ours (equal where every action is legal).

HOW A SIMULATION STEP RUNS (both classes):

    parents, actions, new = core.select(True)  # C++, GIL released: int32 [3, L], L <= B * leaves
    leaves = step_leaves(game, nodes.take(parents, axis=0), actions)  # the rules (fused
                                               # step_with_info), or the model's dynamics
    nodes[new] = leaves.children               # node data [B * N, ...]: row * N + node id
                                               # (a NumpyNodeStore, or for latents on the
                                               # model's device a TorchNodeStore)
    logits, values = evaluator(leaves.children)  # ONE call for the whole batch
    core.expand_backup(values, logits, leaves.legal, terminal=..., rewards=..., discounts=...)

`core` is `azero._mcts.Search` (see its docstrings: `help(azero._mcts.Search)`); `select()`
without `True` gives (row, parent, action, new) ids instead of flat indices. Node ids are per
tree, root 0; `advance` renumbers a kept subtree and returns the (row, new, old) ids so the node
data can follow. Roots of empty trees are evaluated first with `core.expand_roots`.

MUZERO (learned model): `ModelSearch(num_actions, latent_shape, config, batch_size,
device=None)` stores a latent per node instead of a game state: in a numpy array (device None),
or in a torch tensor on `device` (the network's: latents never leave it during a search; only
int64 node ids go to the device and logits / values / rewards to the host); `run(root_latents,
root_logits, root_values, recurrent_fn, root_legal=...)` calls `recurrent_fn(latents [L, ...],
actions int32 [L]) -> (next_latents, rewards [L], discounts [L] or None, logits [L, A],
values [L])` once per step (latents numpy or torch as the store; the rest numpy or torch).
azero/nets/muzero_evaluator.py adapts a MuZeroNet to it (MuZeroEvaluator, and MuZeroSearch:
ModelSearch run from real game states, with BatchedSearch's face).
Illegal actions are masked at the root only (every action is legal inside the model, as in
MuZero). The root arguments count at every run: after `advance` the kept root gets the real
observation's latent, value and priors, and subtrees under actions illegal there are dropped.
Rewards are from the point of view of the player who acted, values from the side to move at the
new node, and Q = reward + discount * value: for two-player games pass discount -gamma
(-1 by default); for one-player games +gamma. Use `SearchConfig(value_bounds=None)` for values on
an unknown scale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from azero import _mcts
from azero.config import SearchConfig  # the search settings ARE the config's search section

Evaluator = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray]"]

# recurrent_fn(latents [L, ...], actions int32 [L]) ->
#   (next_latents [L, ...], rewards [L], discounts [L] | None, logits [L, A], values [L])
RecurrentFn = Callable[[np.ndarray, np.ndarray], tuple]


@dataclass
class SearchOutput:
    actions: np.ndarray         # int32 [B] the move to play
    visit_counts: np.ndarray    # int32 [B, A] root child visits
    policy_target: np.ndarray   # float32 [B, A] training target: normalised visits (PUCT) or
                                # the completed-Q improved policy (Gumbel)
    root_value: np.ndarray      # float32 [B] search value of the root, side to move's view
    root_q: np.ndarray          # float32 [B, A] Q of each root child (side to move), NaN if unvisited


def make_core(num_actions: int, config: SearchConfig, batch_size: int,
              discount: float = -1.0) -> "_mcts.Search":
    """The C++ trees for `config` (the low-level API; BatchedSearch and ModelSearch wrap it)."""
    return _mcts.Search(
        batch_size, num_actions, algorithm=config.algorithm, pb_c_base=config.pb_c_base,
        pb_c_init=config.pb_c_init, value_bounds=config.value_bounds,
        max_num_considered_actions=config.max_num_considered_actions, c_visit=config.c_visit,
        c_scale=config.c_scale, leaves_per_step=config.leaves_per_step,
        virtual_loss=config.virtual_loss, discount=discount, tree_min_max=config.tree_min_max,
        forced_playouts_k=config.forced_playouts_k)


class NumpyNodeStore:
    """Node data in a numpy array `data` [B, N, *shape] (N: the core's node capacity): game states,
    or latents of a model evaluated on the host. Ids are the core's: flat ids row * N + node
    (select(True)), or (rows, node ids) pairs (advance, refresh_roots)."""

    def __init__(self, batch_size: int, capacity: int, shape: tuple[int, ...], dtype):
        self.data = np.zeros((batch_size, capacity) + tuple(shape), dtype)

    def grow(self, capacity: int) -> None:
        if capacity != self.data.shape[1]:
            shape = self.data.shape[:1] + (capacity,) + self.data.shape[2:]
            grown = np.zeros(shape, self.data.dtype)
            grown[:, :self.data.shape[1]] = self.data
            self.data = grown

    def flat(self) -> np.ndarray:
        return self.data.reshape((-1,) + self.data.shape[2:])    # a view [B * N, *shape]

    def batch(self, values, name: str) -> np.ndarray:
        """values as node data of this store, checked to be [B, *shape]."""
        values = np.ascontiguousarray(values, dtype=self.data.dtype)
        expected = self.data.shape[:1] + self.data.shape[2:]
        if values.shape != expected:
            raise ValueError(f"{name} must have shape {expected}, got {values.shape}")
        return values

    @staticmethod
    def take(flat: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return flat.take(ids, axis=0)

    @staticmethod
    def put(flat: np.ndarray, ids: np.ndarray, values) -> None:
        flat[ids] = values

    def move(self, rows: np.ndarray, new: np.ndarray, old: np.ndarray) -> None:
        """Node new[k] of row rows[k] takes the data of node old[k] (a kept subtree renumbered)."""
        self.data[rows, new] = self.data[rows, old]

    def set_roots(self, rows: np.ndarray, values) -> None:
        """Node 0 of each listed row takes values[row] (values [B, *shape], from `batch`)."""
        self.data[rows, 0] = values[rows]


class TorchNodeStore:
    """Node data in a torch tensor `data` [B, N, *shape] on `device`: a model's latents stay where
    the model runs (on a GPU only int64 ids travel to the device during a search, never latents
    to the host). Same methods as NumpyNodeStore; ids come as numpy arrays from the core."""

    def __init__(self, batch_size: int, capacity: int, shape: tuple[int, ...], dtype, device):
        import torch                      # only a torch store needs torch
        self._torch = torch
        if not isinstance(dtype, torch.dtype):
            dtype = torch.from_numpy(np.zeros(0, dtype)).dtype
        self.device = torch.device(device)
        self.data = torch.zeros((batch_size, capacity) + tuple(shape), dtype=dtype,
                                device=self.device)

    def _ids(self, ids: np.ndarray):
        return self._torch.from_numpy(np.asarray(ids, np.int64)).to(self.device)

    def grow(self, capacity: int) -> None:
        if capacity != self.data.shape[1]:
            old = self.data
            self.data = self._torch.zeros(old.shape[:1] + (capacity,) + old.shape[2:],
                                          dtype=old.dtype, device=self.device)
            self.data[:, :old.shape[1]] = old

    def flat(self):
        return self.data.view((-1,) + tuple(self.data.shape[2:]))  # a view [B * N, *shape]

    def batch(self, values, name: str):
        values = self._torch.as_tensor(values, dtype=self.data.dtype, device=self.device)
        expected = tuple(self.data.shape[:1] + self.data.shape[2:])
        if tuple(values.shape) != expected:
            raise ValueError(f"{name} must have shape {expected}, got {tuple(values.shape)}")
        return values

    def take(self, flat, ids: np.ndarray):
        return flat.index_select(0, self._ids(ids))

    def put(self, flat, ids: np.ndarray, values) -> None:
        flat.index_copy_(0, self._ids(ids), self._torch.as_tensor(
            values, dtype=flat.dtype, device=self.device))

    def move(self, rows: np.ndarray, new: np.ndarray, old: np.ndarray) -> None:
        N, flat, rows = self.data.shape[1], self.flat(), np.asarray(rows, np.int64)
        moved = flat.index_select(0, self._ids(rows * N + old))    # a copy: old and new overlap
        flat.index_copy_(0, self._ids(rows * N + new), moved)

    def set_roots(self, rows: np.ndarray, values) -> None:
        ids = self._ids(rows)
        self.flat().index_copy_(0, ids * self.data.shape[1], values.index_select(0, ids))


def _host_float32(values) -> np.ndarray:
    """A recurrent_fn's rewards / discounts / logits / values as float32 numpy (torch tensors,
    on any device, are copied to the host: the core reads host memory)."""
    if hasattr(values, "detach"):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, np.float32)


class _TreeSearch:
    """What both faces share: the core, node data [B, N, ...], noise, outputs, reuse."""

    def __init__(self, num_actions: int, config: SearchConfig, batch_size: int, seed: int,
                 node_shape: tuple[int, ...], node_dtype, discount: float, device=None):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.config = config
        self.batch_size = batch_size
        self.num_actions = num_actions
        self.rng = np.random.default_rng(seed)
        self.core = make_core(num_actions, config, batch_size, discount)
        # Node data, row b node n: [B, node_capacity, *node_shape], grown with the core.
        capacity = self.core.node_capacity
        self.store = (NumpyNodeStore(batch_size, capacity, node_shape, node_dtype) if device is None
                      else TorchNodeStore(batch_size, capacity, node_shape, node_dtype, device))

    @property
    def nodes(self):
        """The node data [B, N, *node_shape]: a numpy array, or a torch tensor (TorchNodeStore)."""
        return self.store.data

    # -- pieces of run() ------------------------------------------------------------------------

    def _active(self, active) -> np.ndarray:
        if active is None:
            return np.ones(self.batch_size, dtype=bool)
        active = np.asarray(active, dtype=bool)
        if active.shape != (self.batch_size,):
            raise ValueError(f"active must have shape ({self.batch_size},), got {active.shape}")
        return active

    def _grow_nodes(self) -> None:
        self.store.grow(self.core.node_capacity)   # node data stays exactly [B, capacity, ...]

    def _noise_rows(self, add_noise) -> np.ndarray:
        """add_noise (a bool, or bool [B] per row) as bool [B]."""
        noisy = np.asarray(add_noise, dtype=bool)
        if noisy.ndim == 0:
            return np.full(self.batch_size, bool(noisy))
        if noisy.shape != (self.batch_size,):
            raise ValueError(f"add_noise must be a bool or have shape ({self.batch_size},), "
                             f"got {noisy.shape}")
        return noisy

    def _simulations(self, simulations) -> np.ndarray | None:
        """Per-row budgets as int32 [B] (None: config.num_simulations for every row)."""
        if simulations is None:
            return None
        sims = np.asarray(simulations)
        if sims.shape != (self.batch_size,) or not np.issubdtype(sims.dtype, np.integer):
            raise ValueError(f"simulations must be integers of shape ({self.batch_size},), got "
                             f"{sims.dtype} {sims.shape}")
        if (sims < 0).any():
            raise ValueError(f"simulations must be >= 0, got {int(sims.min())}")
        return np.ascontiguousarray(sims, dtype=np.int32)

    def _start(self, active: np.ndarray, add_noise, root_noise=None,
               simulations=None) -> np.ndarray:
        """Starts the core's search; returns bool [B], the rows with forced playouts (and so a
        pruned policy target): the noisy active rows when config.forced_playouts_k > 0."""
        c, shape = self.config, (self.batch_size, self.num_actions)
        noisy = self._noise_rows(add_noise)
        forced = noisy & active if c.forced_playouts_k > 0 else np.zeros(self.batch_size, bool)
        sims = self._simulations(simulations)
        noise_rows = None if noisy.all() else noisy
        add_noise = bool(noisy.any())
        gumbel = dirichlet = None
        if root_noise is not None:
            noise_rows = None       # the given noise applies to every row
            noise = np.ascontiguousarray(root_noise, dtype=np.float32)
            if noise.shape != shape:
                raise ValueError(f"root_noise must have shape {shape}, got {noise.shape}")
            if c.algorithm == "gumbel":
                gumbel = noise
            else:
                dirichlet = noise
            add_noise = False
        if add_noise and c.algorithm == "gumbel" and c.gumbel_scale > 0:
            # Gumbel(0, 1) = -log(Exponential(1)). A float32 exponential draw is exactly 0 about
            # once in 7 million (measured; a search of 128 Go games draws 10^4, so self-play met
            # one every half hour): clamp it so that the log stays finite.
            gumbel = self.rng.standard_exponential(size=shape, dtype=np.float32)
            np.maximum(gumbel, np.finfo(np.float32).tiny, out=gumbel)
            np.log(gumbel, out=gumbel)
            gumbel *= np.float32(-c.gumbel_scale)
        if add_noise and c.algorithm == "puct" and c.dirichlet_fraction > 0:
            # Gamma(alpha) samples; the core normalises them over each root's legal actions,
            # which makes them Dirichlet(alpha) over those actions (all-zero rows, possible
            # through float32 underflow at tiny alpha, become uniform noise).
            dirichlet = self.rng.standard_gamma(c.dirichlet_alpha, size=shape, dtype=np.float32)
        self.core.start(c.num_simulations, active, gumbel=gumbel, dirichlet=dirichlet,
                        dirichlet_fraction=c.dirichlet_fraction, simulations=sims,
                        noise_rows=noise_rows, forced_rows=forced if forced.any() else None)
        self._grow_nodes()
        return forced

    def _outputs(self, active: np.ndarray, temperature: float,
                 forced: np.ndarray | None = None) -> SearchOutput:
        actions, visits, policy, root_value, root_q = self.core.outputs()
        if self.config.algorithm == "puct":
            actions = self._sample_puct(visits, policy, active, temperature, forced)
        return SearchOutput(actions=actions, visit_counts=visits, policy_target=policy,
                            root_value=root_value, root_q=root_q)

    def _sample_puct(self, visits, policy, active, temperature, forced=None) -> np.ndarray:
        """Action ~ visits^(1/T) (argmax, lowest action on ties, at T == 0). Rows with forced
        playouts (bool [B]) sample from their pruned policy target instead, as KataGo plays
        from the pruned visits: a forced exploratory visit is not a reason to play a move."""
        weights = visits.astype(np.float64)
        if forced is not None and forced.any():
            weights[forced] = policy[forced]
        empty = weights.sum(axis=1) == 0
        if empty.any():  # no simulations: fall back to the (noisy) priors
            weights[empty] = policy[empty]
            weights[weights.sum(axis=1) == 0] = 1.0  # inactive rows, answered -1 below
        if temperature <= 0:
            actions = np.argmax(weights, axis=1)
        else:
            if temperature != 1.0:
                with np.errstate(divide="ignore"):
                    logw = np.log(weights) / temperature
                weights = np.exp(logw - logw.max(axis=1, keepdims=True))
            cdf = np.cumsum(weights, axis=1)
            u = self.rng.random(self.batch_size) * cdf[:, -1]
            # the first action whose cdf step exceeds u: never one without weight
            actions = np.minimum((cdf <= u[:, None]).sum(axis=1), self.num_actions - 1)
        actions = actions.astype(np.int32)
        actions[~active] = -1
        return actions

    def _drop_stale_roots(self, roots: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Rows (int) that need a root evaluation: active rows without a tree, or whose stored
        root differs from `roots`."""
        has_tree = self.core.num_nodes() > 0
        stale = has_tree & active
        if stale.any():
            stored = self.nodes[:, 0].reshape(self.batch_size, -1)
            given = roots.reshape(self.batch_size, -1)
            stale &= np.any(stored != given, axis=1)
            if stale.any():
                self.core.reset(np.flatnonzero(stale).astype(np.int32))
                has_tree &= ~stale
        return np.flatnonzero(active & ~has_tree)

    def _simulate(self, expand: Callable) -> None:
        """The simulation loop; `expand(nodes, parents, actions, new)` computes the leaves' data
        (parents and new index `nodes`, the node data as [B * N, ...]), stores it and calls
        core.expand_backup."""
        core, select = self.core, self.core.select
        nodes = self.store.flat()               # a view [B * N, ...]; N == node_capacity
        try:
            while True:
                leaves = select(True)
                if leaves.shape[1] == 0:
                    break
                expand(nodes, *leaves)
        except BaseException:
            if core.step_in_progress:
                core.abort()
            raise

    # -- tree reuse -----------------------------------------------------------------------------

    def advance(self, actions, active=None) -> None:
        active = self._active(active)
        actions = np.asarray(actions)
        if actions.shape != (self.batch_size,):
            raise ValueError(f"actions must have shape ({self.batch_size},), got {actions.shape}")
        if not np.issubdtype(actions.dtype, np.integer):
            raise TypeError(f"actions must be integers, got {actions.dtype}")
        if not self.config.reuse_tree:
            self.core.reset(np.flatnonzero(active).astype(np.int32))
            return
        if np.any(actions[active] < 0) or np.any(actions[active] >= self.num_actions):
            bad = actions[active][(actions[active] < 0) | (actions[active] >= self.num_actions)]
            raise IndexError(f"action {int(bad[0])} out of range [0, {self.num_actions})")
        rows, new, old = self.core.advance(actions.astype(np.int32), active)
        if len(rows):
            self.store.move(rows, new, old)

    def reset(self, rows=None) -> None:
        if rows is None:
            self.core.reset(None)
            return
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if rows.size and (rows.min() < 0 or rows.max() >= self.batch_size):
            raise IndexError(f"rows out of range [0, {self.batch_size})")
        self.core.reset(rows.astype(np.int32).reshape(-1))


class LeafStep(NamedTuple):
    """The rules' half of expanding L leaves (`step_leaves`)."""
    children: np.ndarray    # [L, S] state_dtype: the new leaves' states
    legal: np.ndarray       # bool [L, A]: their legal actions (all False where terminal)
    terminal: np.ndarray    # bool [L]
    result: np.ndarray      # float32 [L]: game.result, side to move at the child (0 if not terminal)
    discounts: np.ndarray   # float32 [L]: the sign of the backup through each edge: +1 where the
                            # side to move at the child is the parent's (it moves again), else -1


def step_leaves(game, parents: np.ndarray, actions: np.ndarray, fused: bool = True) -> LeafStep:
    """parents [L, S] states, actions int32 [L] -> LeafStep. The one place where the search steps
    the rules (`azero bench rules` times this function, so its figure is the search's path): the
    fused `game.step_with_info` when the game has it, else (or with fused=False, the bench's
    baseline) step + legal_mask + terminal + result. The backup signs come from the game: -1 for
    every edge where its spec promises `alternating_turns` (the conformance suite checks the
    promise; it spares two `to_play` reads per expansion), else from `game.to_play` of parent and
    child (+1 where the mover moves again)."""
    step_with_info = getattr(game, "step_with_info", None) if fused else None
    if step_with_info is not None:
        children, legal, terminal, result = step_with_info(parents, actions)
    else:
        children = game.step(parents, actions)
        legal, terminal = game.legal_mask(children), game.terminal(children)
        result = np.asarray(game.result(children), np.float32)
    if game.spec.alternating_turns:     # the rules promise it (checked by games/conformance.py)
        discounts = np.full(len(children), -1.0, np.float32)
    else:
        same_player = game.to_play(children) == game.to_play(parents)
        discounts = np.where(same_player, np.float32(1.0), np.float32(-1.0))
    return LeafStep(children, legal, terminal, result, discounts)


class BatchedSearch(_TreeSearch):
    """B independent searches over a game's rules, one evaluator call per simulation step."""

    def __init__(self, game, config: SearchConfig, batch_size: int, seed: int = 0):
        spec = game.spec
        # Every expansion passes its edges' discounts (step_leaves: +1 where the mover moves
        # again, -1 where the turn passes), so the core's default discount is never used.
        super().__init__(spec.num_actions, config, batch_size, seed, (spec.state_size,),
                         spec.state_dtype, discount=-1.0)
        self.game = game

    def run(self, states, evaluator: Evaluator, *, add_noise=True,
            temperature: float = 1.0, active=None, root_noise=None,
            simulations=None) -> SearchOutput:
        """See the module docstring. root_noise float32 [B, A]: use this noise instead of
        drawing it (Gumbel: gumbel samples, already scaled; PUCT: Gamma(alpha) samples).
        add_noise: a bool, or bool [B] per row. simulations: int [B], each row's own budget
        (None: config.num_simulations); see the module docstring's ADDITIONS."""
        game, B = self.game, self.batch_size
        states = np.ascontiguousarray(states, dtype=game.spec.state_dtype)
        if states.shape != (B, game.spec.state_size):
            raise ValueError(f"states must have shape ({B}, {game.spec.state_size}), got {states.shape}")
        active = self._active(active)
        new_roots = self._drop_stale_roots(states, active)
        if len(new_roots):
            roots = states[new_roots]
            if game.terminal(roots).any():
                raise ValueError(f"terminal root states in rows {new_roots[game.terminal(roots)].tolist()}")
            logits, values = evaluator(roots)
            self.core.expand_roots(new_roots.astype(np.int32), np.asarray(values, np.float32),
                                   np.asarray(logits, np.float32), game.legal_mask(roots))
            self.nodes[new_roots, 0] = roots
        forced = self._start(active, add_noise, root_noise, simulations)
        self._simulate(self._expander(evaluator))
        return self._outputs(active, temperature, forced)

    def _expander(self, evaluator: Evaluator) -> Callable:
        game, core = self.game, self.core
        expand_backup = core.expand_backup
        f32 = np.float32

        def expand(nodes, parents, actions, new):
            children, legal, terminal, result, discounts = step_leaves(
                game, nodes.take(parents, axis=0), actions)
            nodes[new] = children
            if not terminal.any():
                logits, values = evaluator(children)
                expand_backup(np.asarray(values, f32), np.asarray(logits, f32), legal,
                              discounts=discounts)
                return
            values = result.copy()           # terminal leaves: the result, never the evaluator
            live = ~terminal
            logits = live_legal = None
            if live.any():
                logits, live_values = evaluator(children[live])
                values[live] = live_values
                logits, live_legal = np.asarray(logits, f32), legal[live]
            expand_backup(values, logits, live_legal, terminal=terminal, discounts=discounts)

        return expand


class ModelSearch(_TreeSearch):
    """B independent searches over a learned model (MuZero): nodes hold latents, the dynamics
    gives rewards, every action is legal below the root.

    device None: latents live in a numpy array [B, N, *latent_shape] (fakes, tests, a model run on
    the host), latent_dtype a numpy dtype. device "cpu" / "cuda:0" / torch.device: in a torch
    tensor there (TorchNodeStore), latent_dtype a numpy or torch dtype; recurrent_fn then takes
    and returns latents as torch tensors on that device, and root_latents may be one."""

    def __init__(self, num_actions: int, latent_shape: tuple[int, ...], config: SearchConfig,
                 batch_size: int, seed: int = 0, latent_dtype=np.float32, discount: float = -1.0,
                 device=None):
        super().__init__(num_actions, config, batch_size, seed, tuple(latent_shape), latent_dtype,
                         discount, device=device)

    def run(self, root_latents, root_logits, root_values, recurrent_fn: RecurrentFn, *,
            root_legal=None, add_noise: bool = True, temperature: float = 1.0,
            active=None, root_noise=None) -> SearchOutput:
        """root_latents [B, *latent_shape], root_logits float32 [B, A], root_values float32 [B]:
        the representation and prediction networks on the real observation; root_legal bool
        [B, A] (None: all legal). Every active root takes these, also in a row that kept a tree
        through `advance` (as in MuZero): there the root's latent, value and priors are replaced,
        the subtrees under root actions now illegal are dropped, and the rest is reused.
        recurrent_fn's rewards, discounts, logits and values may be numpy or torch (copied to the
        host for the core); its latents are stored as the store's kind (module docstring)."""
        B, A, store = self.batch_size, self.num_actions, self.store
        root_latents = store.batch(root_latents, "root_latents")
        root_logits = _host_float32(root_logits)
        root_values = _host_float32(root_values)
        if root_logits.shape != (B, A) or root_values.shape != (B,):
            raise ValueError(f"root_logits must have shape {(B, A)} and root_values {(B,)}, got "
                             f"{root_logits.shape} and {root_values.shape}")
        if root_legal is not None:
            root_legal = np.asarray(root_legal, bool)
            if root_legal.shape != (B, A):
                raise ValueError(f"root_legal must have shape {(B, A)}, got {root_legal.shape}")
        active = self._active(active)
        rows = np.flatnonzero(active)
        if len(rows):
            kept_rows, new, old = self.core.refresh_roots(
                rows.astype(np.int32), root_values[rows], np.ascontiguousarray(root_logits[rows]),
                None if root_legal is None else np.ascontiguousarray(root_legal[rows]))
            if len(kept_rows):
                store.move(kept_rows, new, old)
            store.set_roots(rows, root_latents)
        forced = self._start(active, add_noise, root_noise)
        expand_backup, take, put = self.core.expand_backup, store.take, store.put

        def expand(nodes, parents, actions, new):
            latents, rewards, discounts, logits, values = recurrent_fn(take(nodes, parents),
                                                                       actions)
            put(nodes, new, latents)
            expand_backup(_host_float32(values), _host_float32(logits),
                          rewards=_host_float32(rewards),
                          discounts=None if discounts is None else _host_float32(discounts))

        self._simulate(expand)
        return self._outputs(active, temperature, forced)
