"""The Python face of the C++ batched MCTS (`azero._mcts`).

CONTRACT (other modules are written against it; keep these names and meanings):

    Evaluator = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
        states [L, S] (game state rows) -> (logits float32 [L, A], values float32 [L])
        values are from the point of view of the side to move in each state, in [-1, 1].
        Logits are raw; the search masks them to the legal actions itself.
        Never called with terminal states (the search scores those from game.result).

    @dataclass(frozen=True) SearchConfig:
        algorithm: str = "gumbel"          # "gumbel" | "puct"
        num_simulations: int = 32
        # PUCT (AlphaZero pseudocode defaults)
        pb_c_base: float = 19652.0
        pb_c_init: float = 1.25
        dirichlet_alpha: float = 0.3
        dirichlet_fraction: float = 0.25   # 0 disables root noise
        # Gumbel (Danihelka et al. 2022 / mctx defaults)
        max_num_considered_actions: int = 16
        gumbel_scale: float = 1.0
        c_visit: float = 50.0
        c_scale: float = 0.1
        # several leaves per tree per step with virtual loss (single-game play at high sims)
        leaves_per_step: int = 1
        virtual_loss: float = 1.0
        reuse_tree: bool = True

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
"""
