"""Players: who chooses the moves in a match, a terminal game or a benchmark.

A player is named by a spec string (`make_player`):
    "random"            uniformly random legal moves
    "mcts-rollout:N"    plain MCTS, N simulations, random-playout values, PUCT without noise
    "gnugo:level=N"     GNU Go over GTP (Go only); "gtp:COMMAND LINE": any GTP engine
                        (players/gtp_player.py)
    "stockfish:skill=0,nodes=N"   Stockfish over UCI (chess only); "uci:COMMAND LINE": any UCI
                        engine (players/uci_player.py)
    "greedy"            1-ply greedy by the game's move measure (chess: mate in one, else the
                        most material; players/greedy_player.py)
    anything else       a checkpoint file: the search over its network ("bundled" means the
                        checkpoint shipped with the package for the game); a MuZero checkpoint
                        gives a MuZeroPlayer, which searches the network's learned model
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .base import Decision, Player
from .muzero_player import MuZeroPlayer
from .random_player import RandomPlayer, random_legal_actions
from .search_player import RolloutEvaluator, SearchPlayer, random_playout_values

if TYPE_CHECKING:
    from .gtp_player import GtpEngineSpec
    from .uci_player import UciEngineSpec

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
# The player specs in one line, for help texts (the module docstring explains each).
PLAYER_SPECS_HELP = ("a checkpoint file, 'random', 'greedy', 'mcts-rollout:N', or an external "
                     "engine where the game has them: 'gnugo:level=N', 'gtp:COMMAND LINE' (GTP), "
                     "'stockfish:skill=S,nodes=N', 'uci:COMMAND LINE' (UCI)")


class PlayerSpecError(ValueError):
    """A player spec that names no known player, or a checkpoint that cannot be used."""


@dataclass(frozen=True)
class PlayerSpec:
    kind: str                       # "random" | "greedy" | "mcts-rollout" | "checkpoint" |
                                    # "gtp" | "uci"
    simulations: int | None = None  # mcts-rollout: N
    path: str | None = None         # checkpoint file
    gtp: "GtpEngineSpec | None" = None   # gtp: an external GTP engine (gnugo:..., gtp:...)
    uci: "UciEngineSpec | None" = None   # uci: an external UCI engine (stockfish:..., uci:...)

    @property
    def label(self) -> str:
        if self.kind in ("random", "greedy"):
            return self.kind
        if self.kind == "mcts-rollout":
            return f"mcts-rollout:{self.simulations}"
        if self.kind == "gtp":
            return self.gtp.label
        if self.kind == "uci":
            return self.uci.label
        return Path(self.path).name


def parse_player_spec(spec: str | os.PathLike) -> PlayerSpec:
    text = os.fspath(spec).strip()
    if text in ("random", "greedy"):
        return PlayerSpec(text)
    if text.startswith("mcts-rollout"):
        _, sep, n = text.partition(":")
        if not sep or not n.isdigit() or int(n) < 1:
            raise PlayerSpecError(f"{text!r}: write mcts-rollout:N with N >= 1 simulations, "
                                  f"e.g. mcts-rollout:200")
        return PlayerSpec("mcts-rollout", simulations=int(n))
    # -- external engines: GTP (players/gtp_player.py), UCI (players/uci_player.py)
    from .gtp_player import parse_gtp_spec
    from .uci_player import parse_uci_spec
    for kind, parse in (("gtp", parse_gtp_spec), ("uci", parse_uci_spec)):
        try:
            engine = parse(text)
        except ValueError as e:
            raise PlayerSpecError(str(e)) from None
        if engine is not None:
            return PlayerSpec(kind, **{kind: engine})
    # --
    if not text:
        raise PlayerSpecError(f"empty player spec: give {PLAYER_SPECS_HELP}")
    return PlayerSpec("checkpoint", path=text)


def bundled_checkpoint(game_name: str) -> Path:
    """The checkpoint shipped with the package for `game_name`; PlayerSpecError if not there."""
    path = BUNDLED_DIR / f"{game_name}.pt"
    if not path.is_file():
        raise PlayerSpecError(
            f"no bundled {game_name} checkpoint: {path} is missing from this install. Train one "
            f"(azero selfplay --game {game_name}) and pass it with --ckpt "
            f"runs/{game_name}/checkpoints/best.pt, or play plain MCTS: --ckpt mcts-rollout:1000")
    return path


def load_checkpoint(path: str | os.PathLike, game, *, device: str = "cpu",
                    as_engine: bool = False):
    """(evaluator, search_config) of a checkpoint file for `game`: the network as a search
    Evaluator, and the search settings it was trained with (as_engine: with the simulations of
    its config's play section where set). PlayerSpecError if unusable.
    A MuZero checkpoint (architecture kind "muzero", or a recorded algorithm "muzero") gives a
    MuZeroEvaluator: an Evaluator of real states too (its raw policy), whose search is the
    model's (MuZeroPlayer, azero.nets.muzero_evaluator.MuZeroSearch)."""
    from azero import checkpoint, nets
    path = Path(path)
    if not path.is_file():
        raise PlayerSpecError(f"checkpoint {path} not found (a player is {PLAYER_SPECS_HELP})")
    try:
        ckpt = checkpoint.load(path, expected_game=game.spec.name, device=device)
    except checkpoint.CheckpointError as e:
        raise PlayerSpecError(str(e)) from e
    if _is_muzero(ckpt):
        from azero.nets.muzero_evaluator import MuZeroEvaluator
        if not hasattr(ckpt.model, "recurrent_inference"):
            raise PlayerSpecError(f"checkpoint {path} records the algorithm muzero but its "
                                  f"network ({ckpt.architecture.get('kind')}) has no dynamics")
        try:
            evaluator = MuZeroEvaluator(ckpt.model, game, device, snapshot=True)
        except ValueError as e:
            raise PlayerSpecError(f"checkpoint {path}: {e}") from None
    else:
        evaluator = nets.make_evaluator(ckpt.model, game, device, snapshot=True)
    return evaluator, _search_config_of(ckpt.config, as_engine=as_engine)


def _is_muzero(ckpt) -> bool:
    """A checkpoint of a MuZero run: the algorithm it records, or its net's kind."""
    return ckpt.algorithm == "muzero" or ckpt.architecture.get("kind") == "muzero"


def _search_config_of(config: dict | None, *, as_engine: bool = False):
    """The search settings of a checkpoint's stored config (Config.to_dict()); keys this version
    does not know are ignored, missing ones take their defaults. as_engine: the simulations are
    play.num_simulations where the config sets it (checkpoints older than that section have none)."""
    from azero.config import SearchConfig
    config = config or {}
    section = config.get("search") or {}
    known = {f.name for f in dataclasses.fields(SearchConfig)}
    search = SearchConfig(**{k: v for k, v in section.items() if k in known})
    play_simulations = (config.get("play") or {}).get("num_simulations")
    if as_engine and play_simulations is not None:
        search = replace(search, num_simulations=play_simulations)
    return search


def rollout_search_config(simulations: int):
    """Search settings of plain MCTS: PUCT with uniform priors and no root noise."""
    from azero.search import SearchConfig
    return SearchConfig(algorithm="puct", num_simulations=simulations, dirichlet_fraction=0.0)


def close_players(*players) -> None:
    """Close the players that hold resources (GTP engine processes); others have no close()."""
    for player in players:
        close = getattr(player, "close", None)
        if callable(close):
            close()


def make_player(spec: str | os.PathLike, game, *, simulations: int | None = None,
                seed: int = 0, device: str = "cpu", name: str | None = None,
                as_engine: bool = False) -> Player:
    """The player a spec names (see the module docstring). `simulations` overrides a checkpoint's
    search simulations (mcts-rollout:N carries its own N). as_engine: a checkpoint plays for a
    user (azero play, gtp, uci, arena), at its config's play.num_simulations where set, not
    at the self-play search's. Raises PlayerSpecError."""
    parsed = parse_player_spec(spec)
    if parsed.kind == "checkpoint" and parsed.path == "bundled":
        parsed = PlayerSpec("checkpoint", path=str(bundled_checkpoint(game.spec.name)))
    name = name or parsed.label
    if parsed.kind == "random":
        return RandomPlayer(game, seed=seed, name=name)
    if parsed.kind == "mcts-rollout":
        return SearchPlayer(game, RolloutEvaluator(game, seed=seed),
                            rollout_search_config(parsed.simulations), seed=seed, name=name)
    try:                              # players a game may lack: ValueError says why
        if parsed.kind == "greedy":                   # players/greedy_player.py
            from .greedy_player import GreedyPlayer
            return GreedyPlayer(game, seed=seed, name=name)
        if parsed.kind == "gtp":                      # external engine (players/gtp_player.py)
            from .gtp_player import GtpPlayer
            return GtpPlayer(game, parsed.gtp, name=name)
        if parsed.kind == "uci":                      # external engine (players/uci_player.py)
            from .uci_player import UciPlayer
            return UciPlayer(game, parsed.uci, name=name)
    except ValueError as e:
        raise PlayerSpecError(str(e)) from None
    evaluator, config = load_checkpoint(parsed.path, game, device=device, as_engine=as_engine)
    if simulations is not None:
        config = replace(config, num_simulations=simulations)
    return search_player_for(game, evaluator, config, seed=seed, name=name)


def search_player_for(game, evaluator, config, *, seed: int = 0,
                      name: str = "search") -> SearchPlayer:
    """The search player over an evaluator of `load_checkpoint`: a MuZeroPlayer (the search over
    the learned model) for a MuZero checkpoint's, else a SearchPlayer over the rules."""
    player = MuZeroPlayer if hasattr(evaluator, "recurrent") else SearchPlayer
    return player(game, evaluator, config, seed=seed, name=name)


__all__ = ["Decision", "MuZeroPlayer", "PLAYER_SPECS_HELP", "Player", "PlayerSpec",
           "PlayerSpecError", "RandomPlayer", "RolloutEvaluator", "SearchPlayer",
           "bundled_checkpoint", "close_players", "load_checkpoint", "make_player",
           "parse_player_spec", "random_legal_actions", "random_playout_values",
           "rollout_search_config", "search_player_for"]
