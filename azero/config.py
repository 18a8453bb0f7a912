"""Run configuration: typed dataclasses loaded from YAML, with `--set key=value` dotted overrides.

    cfg = load_config("connect4", ["search.num_simulations=32", "train.lr=1e-3"])
    cfg.search                        # an azero.search.SearchConfig (the search takes it as is)
    Config.from_dict(cfg.to_dict())   # round trip through plain types (stored in checkpoints)

A config file may start with `extends: <name or path>`: the file is then the named config with the
listed keys replaced (nested sections merge key by key), so tiny test configs state only what
differs. Every problem raises `ConfigError` naming the dotted key: unknown keys (with a did-you-mean),
wrong types, values out of range.

Where bundled configs live: the YAML files are kept once, in `configs/` at the top of the source tree
(as DESIGN.md lays out). pyproject.toml maps the data package `azero.configs` onto that folder
(package-dir), so a built wheel installs them as `<site-packages>/azero/configs/*.yaml`. The loader
therefore looks in `azero/configs/` next to this module (installed wheel) and then in `configs/` one
level above the package (source checkout and editable install). No copies anywhere.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import numbers
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

import yaml

_PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIRS: tuple[Path, ...] = (_PACKAGE_DIR / "configs", _PACKAGE_DIR.parent / "configs")


class ConfigError(ValueError):
    """A bad config value; the message starts with the dotted key it concerns."""


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False) -> dict:
    """Field metadata: inclusive bounds (lower bound exclusive if lo_open)."""
    return {"lo": lo, "hi": hi, "lo_open": lo_open}


def _f(default: Any, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
       doc: str = "") -> Any:
    kw: dict[str, Any] = {"metadata": {**_range(lo, hi, lo_open=lo_open), "doc": doc}}
    if isinstance(default, (list, dict)):
        kw["default_factory"] = (lambda d=default: type(d)(d))
    else:
        kw["default"] = default
    return field(**kw)


# ----------------------------------------------------------------------------------------------
# Sections. Defaults are generic (papers' values where they exist); configs/<game>.yaml tunes them.
# ----------------------------------------------------------------------------------------------

@dataclass
class ModelConfig:
    kind: Literal["resnet", "muzero"] = _f(
        "resnet", doc="resnet: AlphaZero's policy-value net; muzero: MuZero's three networks "
        "(sizes in muzero:, heads here); must agree with the top-level algorithm")
    blocks: int = _f(5, 0, doc="residual blocks")
    channels: int = _f(64, 1, doc="trunk width")
    policy_channels: int = _f(2, 1, doc="1x1 conv channels of the policy head (AlphaZero: 2)")
    value_channels: int = _f(1, 1, doc="1x1 conv channels of the value head (AlphaZero: 1)")
    value_hidden: int = _f(64, 1, doc="hidden units of the value head (AlphaZero: 256)")
    ownership_head: bool = False     # per-board-point ownership output (Go, KataGo-style)
    opponent_policy_head: bool = _f(False, doc="KataGo's auxiliary opponent-reply target: a "
                                    "second policy head predicting the next position's search "
                                    "policy (the opponent's reply), trained with "
                                    "train.opponent_policy_loss_weight, never used in search")


@dataclass(frozen=True)
class SearchConfig:
    """The search settings: this section of a config, and what `azero.search.BatchedSearch` and
    `ModelSearch` take (`azero.search.SearchConfig` is this class). Defaults are the papers'.
    However it is made (from a config or in code), a bad value raises ConfigError naming its
    key, e.g. "search.num_simulations: must be >= 0, got -1"."""
    algorithm: Literal["gumbel", "puct"] = "gumbel"
    num_simulations: int = _f(32, 0, doc="simulations per move (0: no search, the network's "
                              "policy alone, with the root noise)")
    # PUCT (AlphaZero pseudocode defaults)
    pb_c_base: float = _f(19652.0, 0, lo_open=True, doc="PUCT: exploration c(N) = pb_c_init + "
                          "log((N + pb_c_base + 1) / pb_c_base)")
    pb_c_init: float = _f(1.25, 0, doc="PUCT: see pb_c_base")
    dirichlet_alpha: float = _f(0.3, 0, lo_open=True, doc="PUCT: root noise Dirichlet(alpha)")
    dirichlet_fraction: float = _f(0.25, 0, 1, doc="PUCT: share of the root priors replaced by "
                                   "the noise; 0 disables it")
    # Gumbel (Danihelka et al. 2022 / mctx defaults)
    max_num_considered_actions: int = _f(16, 1, doc="Gumbel: root actions Sequential Halving "
                                         "starts from")
    gumbel_scale: float = _f(1.0, 0, doc="Gumbel: scale of the root's Gumbel noise")
    c_visit: float = _f(50.0, 0, doc="Gumbel: sigma = (c_visit + max visits) c_scale q")
    c_scale: float = _f(0.1, 0, doc="Gumbel: see c_visit")
    leaves_per_step: int = _f(1, 1, doc="leaves per tree per simulation step, with virtual loss "
                              "(single-game play at high simulation counts)")
    virtual_loss: float = _f(1.0, 0, doc="visits a pending leaf's path counts as lost")
    reuse_tree: bool = True          # keep the subtree of the move played for the next search
    value_bounds: tuple[float, float] | None = _f(
        (-1.0, 1.0), doc="PUCT Q normalisation: [min, max] fixed bounds (AlphaZero), or null = by "
        "parent and siblings (mctx, for values on an unknown scale)")
    tree_min_max: bool = _f(False, doc="PUCT: normalise Q by the running min/max over the whole "
                            "tree (MuZero's MinMaxStats), starting from value_bounds if set")
    forced_playouts_k: float = _f(0.0, 0, doc="PUCT: KataGo's forced playouts (k = 2 there; 0 = "
                                  "off): in searches with root noise (self-play's training "
                                  "searches), a root child c with N(c) < sqrt(k P(c) sum N) is "
                                  "visited first, and the policy target is pruned of those "
                                  "visits (KataGo's policy target pruning; csrc/search.h). Not "
                                  "with gumbel, whose improved policy target needs no pruning")

    def __post_init__(self) -> None:
        _check_fields(self, "search.")
        if self.value_bounds is not None and self.value_bounds[0] >= self.value_bounds[1]:
            raise ConfigError(f"search.value_bounds: must be [min, max] with min < max or null, "
                              f"got {list(self.value_bounds)}")
        if self.tree_min_max and self.algorithm != "puct":
            raise ConfigError("search.tree_min_max: normalises PUCT's Q; Gumbel rescales "
                              "completed Q per node (set search.algorithm=puct)")
        if self.forced_playouts_k > 0 and self.algorithm != "puct":
            raise ConfigError("search.forced_playouts_k: forced playouts and policy target "
                              "pruning are for PUCT; Gumbel's improved policy target is built "
                              "from the children's Q values, not their visit counts, so it "
                              "needs no pruning (set it to 0 or search.algorithm=puct)")


@dataclass
class SelfPlayConfig:
    """The self-play settings: this section of a config, and what `azero.selfplay.SelfPlay` takes
    (one worker plays games_per_worker games in lockstep). However it is made, a bad value raises
    ConfigError naming its key (selfplay.<field>)."""
    workers: int = _f(1, 1, doc="self-play processes")
    games_per_worker: int = _f(128, 1, doc="games played in lockstep by one worker (one batched search)")
    threads_per_worker: int | None = _f(None, 1, doc="torch threads per worker; null = cores / workers")
    temperature_moves: int = _f(8, 0, doc="plies at the start of a game whose move is sampled")
    temperature: float = _f(1.0, 0, doc="sampling temperature for those plies (PUCT); 0 = argmax")
    add_noise: bool = True           # Dirichlet (PUCT) / Gumbel root noise in self-play
    max_moves: int | None = _f(None, 1, doc="truncate games after this many plies (below the "
                               "game's own cap); null = the game's cap only")
    truncated_value_target: Literal["search", "drop"] = _f(
        "search", doc="value target of a truncated game's positions (cut off by the game's cap "
        "or max_moves; never a draw): search = the search's root value; drop = leave the game "
        "out of training (its record is still written)")
    resign_threshold: float | None = _f(None, -1, 0, doc="resign when root value < this; null = never")
    resign_consecutive: int = _f(2, 1, doc="... for this many own moves in a row")
    resign_playout_fraction: float = _f(0.1, 0, 1, doc="games that ignore resignation, to measure false resigns")
    value_target_root_weight: float = _f(0.0, 0, 1, doc="value target (1-w) z + w q: z the result, "
                                         "q the search's root value (0: AlphaZero's z); MuZero mixes it "
                                         "into its outcome or n-step targets the same way")
    random_opening_fraction: float = _f(0.0, 0, 1, doc="share of games opened with random moves "
                                        "(not recorded as training positions)")
    random_opening_max_moves: int = _f(0, 0, doc="such an opening has 1..this many uniformly random moves")
    playout_cap_fraction: float = _f(0.0, 0, 1, doc="KataGo's playout cap randomisation (0 = "
                                     "off; KataGo: 0.25): each move is a full search "
                                     "(search.num_simulations, root noise, temperature) with this "
                                     "probability, else a cheap one (playout_cap_cheap_simulations, "
                                     "no root noise, the most visited / Gumbel's chosen move); "
                                     "only full-search positions become training data")
    playout_cap_cheap_simulations: int = _f(8, 0, doc="simulations of a cheap search under "
                                            "playout_cap_fraction (KataGo: 100 against 600)")
    score_value_weight: float = _f(0.0, 0, 1, doc="score-weighted value (games with a score, "
                                   "Go; 0 = off): in games ended by the rules the result z "
                                   "becomes (1 - w) z + w tanh(final margin / "
                                   "score_value_scale), from each position's side to move "
                                   "(KataGo's score utility)")
    score_value_scale: float = _f(10.0, 0, lo_open=True, doc="points of margin that count "
                                  "tanh(1) = 0.76 under score_value_weight")
    games_per_shard: int = _f(64, 1, doc="finished games collected before a replay shard is written")
    checkpoint_poll_seconds: float = _f(10.0, 0, doc="how often workers look for a new best checkpoint")
    inference_server: bool = _f(False, doc="one inference server process (on the driver, "
                                "train.device) holds the best network and batches the leaf "
                                "evaluations of every worker into one forward pass; workers "
                                "hold no network (azero/inference_server.py). Pays with one "
                                "GPU and many CPU workers")
    inference_server_max_batch: int = _f(2048, 1, doc="rows the server evaluates in one "
                                         "forward pass at most (it takes every request ready, "
                                         "up to this)")
    inference_server_wait_ms: float = _f(0.0, 0, doc="after the first request, wait up to this "
                                         "long for more before evaluating (0: take what is "
                                         "ready)")
    inference_groups: int = _f(2, 1, doc="with inference_server: a worker splits its "
                               "games_per_worker games into this many groups, each searched in "
                               "its own thread, so that one group's batch is in flight while "
                               "another's tree work runs")
    inference_server_endpoint: str | None = _f(None, doc="set by the loop for its workers, not "
                                               "by hand: HOST:PORT/KEY of the run's inference "
                                               "server (null otherwise)")

    def __post_init__(self) -> None:
        _check_fields(self, "selfplay.")


@dataclass
class RulesConfig:
    komi: float | None = _f(None, doc="Go: points added to White's area (null: the rules' "
                            "default, 7; 7.5 rules out draws)")


@dataclass
class ReplayConfig:
    window_positions: int = _f(100_000, 1, doc="train on the newest this-many positions")
    min_positions_to_train: int = _f(4096, 0, doc="no training before this many positions exist")


@dataclass
class TrainConfig:
    batch_size: int = _f(256, 1)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = _f(2e-3, 0, lo_open=True)
    momentum: float = _f(0.9, 0, 1, doc="SGD only")
    nesterov: bool = True            # SGD only
    weight_decay: float = _f(1e-4, 0, doc="on conv/linear weights only (not biases, not BN)")
    lr_schedule: Literal["constant", "cosine", "step"] = "cosine"
    warmup_steps: int = _f(200, 0, doc="linear warmup from 0")
    total_steps: int = _f(20_000, 1, doc="cosine: steps to decay over (then held at the floor)")
    lr_final_fraction: float = _f(0.1, 0, 1, doc="cosine: lr floor as a fraction of lr")
    lr_milestones: list[int] = _f([], doc="step: steps at which lr is multiplied by lr_gamma")
    lr_gamma: float = _f(0.1, 0, lo_open=True)
    value_loss_weight: float = _f(1.0, 0)
    ownership_loss_weight: float = _f(1.0, 0, doc="only with model.ownership_head")
    opponent_policy_loss_weight: float = _f(0.15, 0, doc="weight of the opponent-reply policy "
                                            "loss, only with model.opponent_policy_head "
                                            "(KataGo: 0.15)")
    grad_clip_norm: float | None = _f(10.0, 0, lo_open=True, doc="null = no clipping")
    train_samples_per_position: float = _f(4.0, 0, lo_open=True,
                                           doc="training samples drawn per self-play position generated")
    max_selfplay_lead: float | None = _f(0.5, 0, doc="self-play pauses while it is ahead of the "
                                         "trainer (positions not yet paid for at "
                                         "train_samples_per_position) by more than this share of "
                                         "replay.window_positions; null = never pause")
    checkpoint_every_steps: int = _f(500, 1, doc="write a candidate checkpoint this often")
    keep_checkpoints: int = _f(10, 1, doc="candidate checkpoints kept on disk")
    device: str = "auto"             # auto | cpu | cuda | cuda:N
    amp: bool = True                 # bf16 autocast on a GPU with bf16 or a CPU with native bf16
    threads: int | None = _f(None, 1, doc="torch threads of the trainer; null = torch's default")
    prefetch_batches: int = _f(2, 0, doc="batches a background thread samples (replay gather, "
                               "symmetries, observations; pinned on a GPU) ahead of the optimizer "
                               "step, within each training chunk; 0 = sample in series with the "
                               "steps. Same batches either way (azero/prefetch.py)")

    def __post_init__(self) -> None:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", self.device):
            raise ConfigError(f"train.device: must be auto, cpu, cuda or cuda:N, got {self.device!r}")


@dataclass
class GateConfig:
    enabled: bool = True             # false: every candidate becomes best (AlphaZero's "latest")
    background: bool = _f(True, doc="judge candidates (gate match, then a promoted network's "
                          "solver figures and anchor matches) in a child process beside the "
                          "trainer, which trains on and applies each verdict when it arrives "
                          "(azero/gate_runner.py); false: the trainer waits for each gate")
    games: int = _f(100, 2)
    num_simulations: int | None = _f(None, 1, doc="null = search.num_simulations")
    threshold: float = _f(0.55, 0, 1, doc="score a candidate needs to replace best (AlphaGo Zero: 0.55)")
    opening_plies: int = _f(2, 0, doc="random plies before each game pair, for varied openings")
    sprt_elo0: float = 0.0
    sprt_elo1: float = 50.0
    sprt_alpha: float = _f(0.05, 0, 1, lo_open=True)
    sprt_beta: float = _f(0.05, 0, 1, lo_open=True)
    anchors: list[str] = _f([], doc="fixed opponents (player specs: random, mcts-rollout:N, "
                            "gnugo:level=N, gtp:CMD) each newly promoted network plays, for an "
                            "Elo progression against references that do not move")
    anchor_games: int = _f(20, 2, doc="games against each anchor (colour-swapped pairs)")


@dataclass
class PlayConfig:
    num_simulations: int | None = _f(None, 1, doc="simulations a move when the network plays for "
                                     "a user (azero play, gtp, uci, arena; a GTP clock or UCI "
                                     "limit may lower it; --sims overrides it); null = "
                                     "search.num_simulations. Self-play, gates and anchor "
                                     "matches keep their own")

    def __post_init__(self) -> None:
        _check_fields(self, "play.")


@dataclass
class MuZeroConfig:
    """MuZero's network sizes and unrolled training (the `muzero:` section; used by runs with
    --algo muzero). The policy/value/reward heads take their sizes from `model:`."""
    latent_channels: int = _f(64, 1, doc="channels L of the latent state [L, H, W]")
    representation_blocks: int = _f(3, 0, doc="residual blocks of the representation h")
    dynamics_blocks: int = _f(3, 0, doc="residual blocks of the dynamics g")
    prediction_blocks: int = _f(1, 0, doc="residual blocks of the prediction f before its heads")
    reward_hidden: int = _f(64, 1, doc="hidden units of the reward head")
    value_head: Literal["scalar", "categorical"] = _f(
        "scalar", doc="value and reward heads: scalar (tanh, MSE; board-game results in [-1, 1]) "
        "or categorical (over a support with the h(x) transform, cross-entropy; the paper's Atari)")
    support_size: int = _f(20, 1, doc="categorical: 2n + 1 support points")
    support_max: float = _f(1.0, 0, lo_open=True, doc="categorical: largest |value| (or |reward|) "
                            "the support represents")
    action_encoding: Literal["game", "learned"] = _f(
        "game", doc="how the dynamics reads an action: game = the game's action planes "
        "(GameSpec.action_planes: the board cells a move touches, as MiniZero and LightZero encode "
        "board-game actions) where the game has them, else learned; learned = a learned plane per "
        "action")
    unroll_steps: int = _f(5, 1, doc="K: dynamics steps unrolled per training sample (paper: 5)")
    td_steps: int | None = _f(None, 1, doc="n-step value targets bootstrapped from the search's "
                              "root value n plies later; null = the game's outcome (the paper's "
                              "board games)")
    reward_loss_weight: float = _f(1.0, 0, doc="weight of the reward loss")
    consistency_loss_weight: float = _f(0.0, 0, doc="EfficientZero's latent consistency loss "
                                        "(0 = off, the paper's MuZero)")
    projection_dim: int = _f(256, 1, doc="width of the consistency projector (only when "
                             "consistency_loss_weight > 0)")
    normalization: Literal["batch", "layer"] = _f(
        "batch", doc="the norm after each convolution of the three networks: batch "
        "(BatchNorm) or layer (each sample over its own channels and board: the same function "
        "in training and in the search; see azero/nets/muzero.py)")
    reanalyze_fraction: float = _f(0.0, 0, 1, doc="Reanalyze: share of the training windows whose "
                                   "policy and value targets come from a fresh search of the newest "
                                   "network over stored games, by a worker process beside the "
                                   "trainer (azero/muzero/reanalyze_worker.py); 0 = off")

    def __post_init__(self) -> None:
        _check_fields(self, "muzero.")


@dataclass
class LogConfig:
    tensorboard: bool = True
    every_steps: int = _f(50, 1, doc="trainer scalars are logged this often")
    progress: bool = True            # tqdm progress bars


ALGORITHMS = ("alphazero", "muzero")
# The network kind each algorithm trains (ModelConfig.kind).
MODEL_KIND_OF = {"alphazero": "resnet", "muzero": "muzero"}


@dataclass
class Config:
    game: str
    run_dir: str = ""                # "" = runs/<game>
    seed: int = 0
    # alphazero: the policy-value net searched over the rules; muzero: a learned model searched
    # (azero/muzero/), trained on K-step windows of whole games
    algorithm: Literal["alphazero", "muzero"] = "alphazero"
    rules: RulesConfig = field(default_factory=RulesConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    muzero: MuZeroConfig = field(default_factory=MuZeroConfig)
    play: PlayConfig = field(default_factory=PlayConfig)
    log: LogConfig = field(default_factory=LogConfig)

    def __post_init__(self) -> None:
        if not self.run_dir:
            self.run_dir = f"runs/{self.game}"
        if self.model.kind != MODEL_KIND_OF[self.algorithm]:
            raise ConfigError(f"model.kind: {self.model.kind!r} is not the network of algorithm "
                              f"{self.algorithm!r} (set model.kind={MODEL_KIND_OF[self.algorithm]})")
        _check_katago_switches(self)
        if self.gate.sprt_elo1 <= self.gate.sprt_elo0:
            raise ConfigError(f"gate.sprt_elo1: must be greater than gate.sprt_elo0 "
                              f"({self.gate.sprt_elo1} <= {self.gate.sprt_elo0})")
        if self.train.lr_milestones != sorted(self.train.lr_milestones):
            raise ConfigError(f"train.lr_milestones: must be increasing, got {self.train.lr_milestones}")

    def make_game(self):
        """The game with the rule options of `rules` (unset ones at the game's defaults).
        Raises ConfigError naming the key for an option the game lacks or a bad value."""
        from azero.games import make
        options = {k: v for k, v in dataclasses.asdict(self.rules).items() if v is not None}
        if not options:
            return make(self.game)
        try:
            return make(self.game, **options)
        except TypeError:
            raise ConfigError(f"rules.{next(iter(options))}: {self.game} has no such rule "
                              f"(leave it null)") from None
        except ValueError as e:
            raise ConfigError(f"rules.{next(iter(options))}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of str/int/float/bool/None/list (safe for YAML and weights_only checkpoints)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        return _build(cls, data, "")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _check_katago_switches(config: "Config") -> None:
    """ConfigError naming the key where a KataGo sample-efficiency switch cannot apply."""
    sp = config.selfplay
    if sp.playout_cap_fraction > 0:
        if config.algorithm == "muzero":
            raise ConfigError("selfplay.playout_cap_fraction: MuZero trains on whole trajectories "
                              "with a target at every ply; playout cap randomisation is for "
                              "algorithm alphazero (set it to 0)")
        if sp.playout_cap_cheap_simulations > config.search.num_simulations:
            raise ConfigError(f"selfplay.playout_cap_cheap_simulations: "
                              f"{sp.playout_cap_cheap_simulations} is more than a full search's "
                              f"search.num_simulations ({config.search.num_simulations})")
    if sp.score_value_weight > 0 and config.algorithm == "muzero":
        raise ConfigError("selfplay.score_value_weight: MuZero's value targets come from the "
                          "game's rewards, not the score (set it to 0)")
    if config.model.opponent_policy_head and config.model.kind != "resnet":
        raise ConfigError("model.opponent_policy_head: only the resnet policy-value net has one "
                          f"(model.kind is {config.model.kind!r})")


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------

def bundled_config_names() -> list[str]:
    names: set[str] = set()
    for d in CONFIG_DIRS:
        if d.is_dir():
            names.update(p.stem for p in d.glob("*.yaml"))
    return sorted(names)


def find_config(name_or_path: str | Path) -> Path:
    """A path to an existing file, or the name of a bundled config (`connect4`, `connect4.yaml`)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    stem = p.name[:-5] if p.name.endswith(".yaml") else p.name
    if p.parent == Path(".") or str(p.parent) == "":
        for d in CONFIG_DIRS:
            candidate = d / f"{stem}.yaml"
            if candidate.is_file():
                return candidate
    known = bundled_config_names()
    hint = difflib.get_close_matches(stem, known, n=1)
    raise ConfigError(f"config {str(name_or_path)!r}: no such file or bundled config"
                      + (f"; did you mean {hint[0]!r}?" if hint else "")
                      + f" (bundled: {', '.join(known) or 'none'})")


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"extends: cycle through {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config {path}: not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping at the top level, got {type(data).__name__}")
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    base_path = Path(base_name)
    if not base_path.is_absolute() and (path.parent / base_path).is_file():
        base_path = path.parent / base_path
    else:
        base_path = find_config(base_name)
    return _merge(_read_yaml(base_path, seen + (path,)), data)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """'train.lr=0.001' -> (['train', 'lr'], 0.001). The value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. train.lr=0.001")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"{key}: cannot parse value {raw!r}: {e}") from None
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Returns a copy of `data` with each dotted override set (keys are checked later, by _build)."""
    data = _merge({}, data)
    for text in overrides:
        parts, value = parse_override(text)
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parts[:i + 1])}: is a value, not a section "
                                  f"(cannot set {'.'.join(parts)})")
            node = child
        if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
            value = _merge(node[parts[-1]], value)
        node[parts[-1]] = value
    return data


def load_config(path_or_name: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Load a config file (or bundled config name), apply `key=value` overrides, validate."""
    data = _read_yaml(find_config(path_or_name))
    return Config.from_dict(apply_overrides(data, overrides))


# ----------------------------------------------------------------------------------------------
# Validation: dict -> dataclass, checking keys, types and ranges.
# ----------------------------------------------------------------------------------------------

def _all_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        if dataclasses.is_dataclass(t):
            keys += _all_keys(t, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _build(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            full = f"{prefix}{key}"
            candidates = _all_keys(Config)
            hint = (difflib.get_close_matches(full, candidates, n=1, cutoff=0.6)
                    or difflib.get_close_matches(str(key), names, n=1, cutoff=0.6))
            if hint and "." not in hint[0] and prefix:
                hint = [f"{prefix}{hint[0]}"]
            raise ConfigError(f"{full}: unknown key" + (f"; did you mean {hint[0]!r}?" if hint else
                              f" (valid keys here: {', '.join(names)})"))
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        t = hints[f.name]
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: missing (required)")
            continue
        value = data[f.name]
        if dataclasses.is_dataclass(t):
            kwargs[f.name] = _build(t, {} if value is None else value, f"{key}.")
        else:
            value = _check_type(key, value, t)
            _check_range(key, value, f.metadata)
            kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # pragma: no cover - defensive
        raise ConfigError(f"{where}: {e}") from None


def _check_fields(obj: Any, prefix: str) -> None:
    """Checks (and normalises, as _build does) the types and ranges of a frozen dataclass's fields
    in its __post_init__, so that one made in code is held to its config section's rules; errors
    name the key as `prefix` + field name."""
    for f in dataclasses.fields(obj):
        key = f"{prefix}{f.name}"
        value = _check_type(key, getattr(obj, f.name), _type_hints(type(obj))[f.name])
        _check_range(key, value, f.metadata)
        object.__setattr__(obj, f.name, value)


@functools.lru_cache(maxsize=None)
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _plain(value: Any) -> Any:
    """dataclasses.asdict output with tuples (fixed-length fields) as lists: plain YAML types."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _type_name(t: Any) -> str:
    origin = typing.get_origin(t)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(t))
    if origin in (typing.Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(t))
    if origin is list:
        return f"list of {_type_name(typing.get_args(t)[0])}"
    if origin is tuple:
        return "[" + ", ".join(_type_name(a) for a in typing.get_args(t)) + "]"
    return getattr(t, "__name__", str(t))


def _check_type(key: str, value: Any, t: Any) -> Any:
    origin = typing.get_origin(t)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(t)
        if value is None and type(None) in args:
            return None
        alternatives = [a for a in args if a is not type(None)]
        if len(alternatives) == 1:       # Optional[X]: X's own, more precise message
            try:
                return _check_type(key, value, alternatives[0])
            except ConfigError as e:
                raise ConfigError(f"{e} (or null)") from None
        for a in alternatives:
            try:
                return _check_type(key, value, a)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {_type_name(t)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(t)
        if value in choices:
            return value
        hint = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        raise ConfigError(f"{key}: must be one of {', '.join(map(repr, choices))}, got {value!r}"
                          + (f"; did you mean {hint[0]!r}?" if hint else ""))
    if origin is list:
        (item_t,) = typing.get_args(t)
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            value = [value]
        return [_check_type(f"{key}[{i}]", v, item_t) for i, v in enumerate(value)]
    if origin is tuple:                  # fixed length, e.g. tuple[float, float]
        item_ts = typing.get_args(t)
        if not isinstance(value, (list, tuple)) or len(value) != len(item_ts):
            raise ConfigError(f"{key}: expected {_type_name(t)}, got {value!r}")
        return tuple(_check_type(f"{key}[{i}]", v, item_t)
                     for i, (v, item_t) in enumerate(zip(value, item_ts)))
    if t is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if t is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        number = _as_number(value)
        if number is not None and math.isfinite(number) and float(number).is_integer():
            return int(number)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if t is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        number = _as_number(value)
        if number is None or math.isnan(number):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(number)
    if t is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported field type {t!r}")  # pragma: no cover


def _as_number(value: Any) -> float | int | None:
    """Numbers (NumPy scalars included), and strings YAML 1.1 leaves as text although they are
    numbers (`1e-3`)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return None
    return None


def _check_range(key: str, value: Any, meta: Any) -> None:
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                _check_range(f"{key}[{i}]", v, meta)
        return
    lo, hi, lo_open = meta.get("lo"), meta.get("hi"), meta.get("lo_open", False)
    if lo is not None and (value <= lo if lo_open else value < lo):
        raise ConfigError(f"{key}: must be {'>' if lo_open else '>='} {lo}, got {value}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: must be <= {hi}, got {value}")


__all__ = [
    "ALGORITHMS", "Config", "ConfigError", "GateConfig", "LogConfig", "MODEL_KIND_OF", "ModelConfig",
    "MuZeroConfig", "ReplayConfig", "RulesConfig", "SearchConfig",
    "SelfPlayConfig", "TrainConfig", "apply_overrides", "bundled_config_names", "find_config",
    "load_config", "parse_override",
]
