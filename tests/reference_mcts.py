"""A small pure-Python MCTS, one tree, one simulation at a time: the reference the C++ search is
checked against. Written for clarity, not speed: nodes are objects, children a dict, every choice
an argmax over the legal actions in increasing order (ties go to the lowest action).

Semantics (the same as csrc/, which follows the AlphaZero pseudocode and mctx):
  * A node stores visits and value_sum from the point of view of its side to move; the root and
    every new leaf start with one visit worth the evaluator's value (terminal: game.result).
  * Backing up through the edge into a node: G_parent = reward + discount * G_child. Over a
    game's rules reward is 0 and the discount is the sign from the players: +1 where
    game.to_play(child) == game.to_play(parent) (the mover moves again; every edge of a one-player
    game), -1 where the turn passes, terminal children included (their result is from the side to
    move at the child). An edge's Q is the mean of those G_parent.
  * PUCT: argmax Qn(a) + sqrt(N) * c(N) * P(a) / (1 + n(a)), c(N) = c_init + log((N + c_base + 1) /
    c_base); Qn normalises Q to [0, 1] by fixed bounds, or by min/max over the node's value and its
    visited children's Q, or (tree_min_max) by the MuZero pseudocode's MinMaxStats: the running
    min/max of every edge Q after each backup in this search, starting from value_bounds if given,
    Q unnormalised while max <= min; unvisited children have Qn = 0.
  * Gumbel (mctx gumbel_muzero_policy): completed Q (mixed value for unvisited children), rescaled
    by min/max over all A actions (illegal ones count as unvisited, as in mctx), sigma = (c_visit + max n) * c_scale * q. Root: Sequential Halving over gumbel +
    log prior + sigma among the children with the scheduled visit count. Interior: argmax
    softmax(log prior + sigma) - n / (1 + sum n). Improved policy: softmax(log prior + sigma).
Priors are softmax(logits) over the legal actions, computed in float32 like the C++ core.
"""
from __future__ import annotations

import math

import numpy as np

FLT_MIN = float(np.finfo(np.float32).tiny)


def considered_visits(max_num_considered: int, num_simulations: int) -> list[int]:
    """Sequential Halving's visit schedule (mctx seq_halving.get_sequence_of_considered_visits)."""
    if max_num_considered <= 1:
        return list(range(num_simulations))
    log2max = int(math.ceil(math.log2(max_num_considered)))
    sequence, visits, m = [], [0] * max_num_considered, max_num_considered
    while len(sequence) < num_simulations:
        extra = max(1, int(num_simulations / (log2max * m)))
        for _ in range(extra):
            sequence.extend(visits[:m])
            for i in range(m):
                visits[i] += 1
        m = max(2, m // 2)
    return sequence[:num_simulations]


def exp_nonpositive(x) -> np.float32:
    """csrc/softmax.h's expf for x <= 0, step by step in float32 (bit-exact with the C++)."""
    f = np.float32
    x = f(x)
    xc = f(-87.0) if x < f(-87.0) else x
    t = xc * f(1.44269504088896341)
    n = (t + f(12582912.0)) - f(12582912.0)
    r = xc - n * f(0.693359375)
    r = r - n * f(-2.12194440e-4)
    p = f(1.9875691500e-4)
    for c in (1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1):
        p = p * r + f(c)
    p = (p * (r * r) + r) + f(1.0)
    scale = np.array([(int(n) + 127) << 23], np.int32).view(np.float32)[0]
    return f(0.0) if x < f(-87.0) else p * scale


def softmax_priors(logits: np.ndarray, legal: np.ndarray) -> dict[int, float]:
    """{action: prior} over the legal actions, float32 arithmetic as in the C++ core."""
    actions = [int(a) for a in np.flatnonzero(legal)]
    logits = np.asarray(logits, np.float32)
    m = max(logits[a] for a in actions)
    e = [exp_nonpositive(logits[a] - m) for a in actions]
    lanes = [0.0, 0.0, 0.0, 0.0]
    for i, v in enumerate(e):
        lanes[i % 4] += float(v)
    inv = np.float32(1.0 / ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])))
    return {a: float(np.float32(v * inv)) for a, v in zip(actions, e)}


class Node:
    def __init__(self, state, reward: float = 0.0, discount: float = -1.0):
        self.state = state
        self.reward = reward
        self.discount = discount
        self.terminal = False
        self.priors: dict[int, float] = {}
        self.children: dict[int, "Node"] = {}   # visited children, in the order of first visit
        self.visits = 0
        self.value_sum = 0.0
        self.raw_value = 0.0
        self.q_sum = 0.0                          # sum of values backed up into the parent's view

    def value(self) -> float:
        return self.value_sum / self.visits


class ReferenceMCTS:
    def __init__(self, game, evaluator, *, algorithm="puct", num_simulations=32,
                 pb_c_base=19652.0, pb_c_init=1.25, value_bounds=(-1.0, 1.0),
                 max_num_considered_actions=16, c_visit=50.0, c_scale=0.1, tree_min_max=False):
        self.game = game
        self.evaluator = evaluator
        self.algorithm = algorithm
        self.num_simulations = num_simulations
        self.pb_c_base, self.pb_c_init = pb_c_base, pb_c_init
        self.value_bounds = value_bounds
        self.m = max_num_considered_actions
        self.c_visit, self.c_scale = c_visit, c_scale
        self.tree_min_max = tree_min_max

    # -- evaluation ----------------------------------------------------------------------------

    def _evaluate(self, node: Node) -> float:
        s = node.state[None]
        if self.game.terminal(s)[0]:
            node.terminal = True
            node.raw_value = float(np.float32(self.game.result(s)[0]))
            return node.raw_value
        logits, values = self.evaluator(s)
        node.priors = softmax_priors(logits[0], self.game.legal_mask(s)[0])
        node.raw_value = float(np.float32(values[0]))
        return node.raw_value

    # -- search --------------------------------------------------------------------------------

    def run(self, root_state, *, gumbel=None, dirichlet=None, dirichlet_fraction=0.25, kept=None):
        """gumbel [A] noise (Gumbel), dirichlet [A] Gamma samples (PUCT), as given to the core.
        kept: a child Node of the previous run's root, whose state is root_state, searched on
        (tree reuse; PUCT without noise only)."""
        A = self.game.spec.num_actions
        if kept is not None:
            if self.algorithm != "puct" or dirichlet is not None:
                raise ValueError("the reference reuses trees for PUCT without noise only")
            root = kept
        else:
            root = Node(root_state)
            v = self._evaluate(root)
            root.visits, root.value_sum = 1, v
        if dirichlet is not None and dirichlet_fraction > 0:
            total = 0.0
            for a in root.priors:
                total += float(np.float32(dirichlet[a]))
            for a in root.priors:
                eta = float(np.float32(dirichlet[a])) / total if total > 0 else 1.0 / len(root.priors)
                root.priors[a] = float(np.float32(
                    (1.0 - dirichlet_fraction) * root.priors[a] + dirichlet_fraction * eta))
        self.root = root
        self.q_min, self.q_max = (math.inf, -math.inf) if self.value_bounds is None else \
            (float(self.value_bounds[0]), float(self.value_bounds[1]))
        stack = [root]                       # a kept tree's edge Qs seed the tree-wide min/max
        while stack:
            for child in stack.pop().children.values():
                self.q_min = min(self.q_min, child.q_sum / child.visits)
                self.q_max = max(self.q_max, child.q_sum / child.visits)
                stack.append(child)
        self.gumbel = np.zeros(A, np.float32) if gumbel is None else np.asarray(gumbel, np.float32)
        self.root_score = {a: float(self.gumbel[a]) + math.log(max(np.float32(p), FLT_MIN))
                           for a, p in root.priors.items()}
        self.table = considered_visits(min(self.m, len(root.priors)), self.num_simulations) \
            if self.algorithm == "gumbel" else None
        for sim in range(self.num_simulations):
            self._simulate(sim)
        return self._outputs()

    def _simulate(self, sim: int) -> None:
        node, path = self.root, [self.root]
        while True:
            if node.terminal:
                self._backup(path, node.raw_value)
                return
            a = self._select(node, sim)
            if a in node.children:
                node = node.children[a]
                path.append(node)
                continue
            child_state = self.game.step(node.state[None], np.array([a]))[0]
            players = self.game.to_play(np.stack([node.state, child_state]))
            child = Node(child_state, reward=0.0, discount=1.0 if players[0] == players[1] else -1.0)
            node.children[a] = child
            path.append(child)
            self._backup(path, self._evaluate(child))
            return

    def _backup(self, path, value: float) -> None:
        leaf = path[-1]
        leaf.visits += 1
        leaf.value_sum += value
        for child, parent in zip(reversed(path[1:]), reversed(path[:-1])):
            value = float(np.float32(child.reward)) + float(np.float32(child.discount)) * value
            child.q_sum += value
            self.q_min = min(self.q_min, child.q_sum / child.visits)
            self.q_max = max(self.q_max, child.q_sum / child.visits)
            parent.visits += 1
            parent.value_sum += value

    def _select(self, node: Node, sim: int) -> int:
        if self.algorithm == "puct":
            return self._select_puct(node)
        if node is self.root:
            return self._select_gumbel_root(node, sim)
        return self._select_gumbel_interior(node)

    @staticmethod
    def _argmax(scores: dict[int, float]) -> int:
        best, best_score = None, -math.inf
        for a in sorted(scores):
            if best is None or scores[a] > best_score:
                best, best_score = a, scores[a]
        return best

    def _select_puct(self, node: Node) -> int:
        N = float(node.visits)
        pb_c = self.pb_c_init + math.log((N + self.pb_c_base + 1.0) / self.pb_c_base)
        c = math.sqrt(N) * pb_c
        qs = {a: ch.q_sum / ch.visits for a, ch in node.children.items()}
        if self.tree_min_max:
            spread = self.q_max > self.q_min
            lo, denom = (self.q_min, self.q_max - self.q_min) if spread else (0.0, 1.0)
        elif self.value_bounds is not None:
            lo, denom = self.value_bounds[0], self.value_bounds[1] - self.value_bounds[0]
        else:
            v = node.value()
            lo, hi = min([v] + list(qs.values())), max([v] + list(qs.values()))
            denom = max(hi - lo, 1e-8)
        scores = {}
        for a, p in node.priors.items():
            if a in node.children:
                n = node.children[a].visits
                scores[a] = (qs[a] - lo) / denom + c * p / (n + 1)
            else:
                scores[a] = 0.0 + c * p / 1.0
        return self._argmax(scores)

    def _completed(self, node: Node):
        """(sigma per action, sum of child visits) of mctx's qtransform_completed_by_mix_value."""
        sum_n = max_n = 0
        sum_p = sum_pq = 0.0
        qs = {}
        for a, ch in node.children.items():          # in order of first visit, as the C++ prefix
            q = ch.q_sum / ch.visits
            p = max(float(np.float32(node.priors[a])), FLT_MIN)
            qs[a] = q
            sum_n += ch.visits
            max_n = max(max_n, ch.visits)
            sum_p += p
            sum_pq += p * q
        mixed = node.raw_value if not qs else (node.raw_value + sum_n * (sum_pq / sum_p)) / (sum_n + 1)
        completed = {a: qs.get(a, mixed) for a in node.priors}
        # min/max over all A actions (mctx): every action without a visit, illegal ones included,
        # counts as the mixed value
        every = list(completed.values()) + ([mixed] if len(qs) < self.game.spec.num_actions else [])
        lo, hi = min(every), max(every)
        denom = max(hi - lo, 1e-8)
        scale = (self.c_visit + max_n) * self.c_scale
        return {a: scale * ((q - lo) / denom) for a, q in completed.items()}, sum_n

    def _select_gumbel_interior(self, node: Node) -> int:
        sigma, sum_n = self._completed(node)
        top = max(sigma.values())
        w = {a: node.priors[a] * math.exp(sigma[a] - top) for a in node.priors}
        visited_mass = 0.0
        z = 0.0
        for a in node.children:
            visited_mass += node.priors[a]
            z += w[a]
        if len(node.children) < len(node.priors):
            unvisited = next(a for a in node.priors if a not in node.children)
            z += max(0.0, 1.0 - visited_mass) * math.exp(sigma[unvisited] - top)
        scores = {}
        for a in node.priors:
            n = node.children[a].visits if a in node.children else 0
            scores[a] = w[a] / z - n / (1.0 + sum_n)
        return self._argmax(scores)

    def _select_gumbel_root(self, node: Node, sim: int) -> int:
        sigma, _ = self._completed(node)
        considered = self.table[min(sim, self.num_simulations - 1)]
        scores, fallback = {}, {}
        for a in node.priors:
            n = node.children[a].visits if a in node.children else 0
            s = max(-1e9, self.root_score[a] + sigma[a])
            fallback[a] = s
            if n == considered:
                scores[a] = s
        return self._argmax(scores or fallback)

    # -- results -------------------------------------------------------------------------------

    def _outputs(self) -> dict:
        A = self.game.spec.num_actions
        root = self.root
        visits = np.zeros(A, np.int32)
        q = np.full(A, np.nan)
        for a, ch in root.children.items():
            visits[a] = ch.visits
            q[a] = ch.q_sum / ch.visits
        out = dict(visit_counts=visits, root_q=q, root_value=root.value(), action=-1)
        if self.algorithm == "puct":
            if visits.sum() == 0:  # no simulations: the (noisy) priors
                out["policy"] = np.zeros(A)
                for a, p in root.priors.items():
                    out["policy"][a] = p
            else:
                out["policy"] = visits / visits.sum()
            return out
        sigma, _ = self._completed(root)
        top = max(sigma.values())
        w = {a: root.priors[a] * math.exp(sigma[a] - top) for a in root.priors}
        z = sum(w.values())
        policy = np.zeros(A)
        for a in w:
            policy[a] = w[a] / z
        most = int(visits.max())
        scores = {a: max(-1e9, self.root_score[a] + sigma[a]) for a in root.priors if visits[a] == most}
        out["policy"] = policy
        out["action"] = self._argmax(scores)
        return out
