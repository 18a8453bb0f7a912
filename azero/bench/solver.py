"""Connect Four against perfect play: decisive accuracy and optimal rate on solved positions.

The positions (shared/bench/connect4, see its README; a copy ships in azero/bench/data) carry the exact score of every legal move.
Two figures, overall and by stage (early / middle / late):
  * decisive accuracy: the share of positions where the chosen move keeps the game-theoretic value
    (win stays win, draw stays draw), over the positions where some legal move does not (a
    uniformly random mover: ~34%);
  * optimal rate: the share of all positions where the chosen move is one of the best (fastest win,
    or longest survival; random: ~39%).
A mover is scored through the probability it gives each move: a deterministic bot puts 1 on its
move, the random baseline 1/legal on every legal move, so its figures are exact expectations.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from azero.bench.report import Measurement

STAGES = ("early", "middle", "late")
# The dev set of shared/bench/connect4, shipped with the package (see data/README.md).
DEFAULT_POSITIONS = Path(__file__).resolve().parent / "data" / "connect4_positions_dev.jsonl"

# positions -> (states [N, S]) -> probabilities [N, A] of each move being chosen
Mover = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SolvedPosition:
    moves: str                     # 1-indexed column digits from the empty board
    stage: str                     # early | middle | late
    legal: tuple[int, ...]         # legal actions (0-indexed columns)
    optimal: tuple[int, ...]       # actions whose score equals the position's value
    preserving: tuple[int, ...]    # actions that keep the sign of the value

    @property
    def decisive(self) -> bool:
        """A mistake is possible: some legal move changes the outcome."""
        return len(self.preserving) < len(self.legal)


def load_positions(path: str | os.PathLike = DEFAULT_POSITIONS) -> list[SolvedPosition]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"solver positions {path} not found (pass --positions FILE)")
    out = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                out.append(SolvedPosition(
                    moves=obj["moves"], stage=obj["stage"],
                    legal=tuple(c for c, s in enumerate(obj["scores"]) if s is not None),
                    optimal=tuple(c - 1 for c in obj["optimal"]),
                    preserving=tuple(c - 1 for c in obj["value_preserving"])))
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{number}: not a solved position: {e}") from None
    return out


def position_states(game, positions: list[SolvedPosition]) -> np.ndarray:
    """[N, S] states of the positions; checks the file's legal columns against the rules."""
    states = np.stack([game.from_moves(p.moves) for p in positions])
    legal = game.legal_mask(states)
    for p, row in zip(positions, legal):
        if tuple(np.flatnonzero(row)) != p.legal:
            raise ValueError(f"position {p.moves!r}: the file's legal columns {p.legal} differ "
                             f"from the rules' {tuple(np.flatnonzero(row))}")
    return states


@dataclass
class SolverScore:
    """Expected hits (sums of probabilities) and position counts of one mover on one stage."""
    decisive_hits: float = 0.0
    decisive_positions: int = 0
    optimal_hits: float = 0.0
    positions: int = 0

    @property
    def decisive_accuracy(self) -> float:
        return self.decisive_hits / self.decisive_positions if self.decisive_positions else float("nan")

    @property
    def optimal_rate(self) -> float:
        return self.optimal_hits / self.positions if self.positions else float("nan")


def score_moves(positions: list[SolvedPosition], probs: np.ndarray) -> dict[str, SolverScore]:
    """probs [N, A]: the probability of each move in each position -> scores by stage and 'all'."""
    scores = {stage: SolverScore() for stage in (*STAGES, "all")}
    for p, row in zip(positions, probs):
        for key in (p.stage, "all"):
            s = scores[key]
            s.positions += 1
            s.optimal_hits += float(row[list(p.optimal)].sum())
            if p.decisive:
                s.decisive_positions += 1
                s.decisive_hits += float(row[list(p.preserving)].sum())
    return scores


def one_hot(actions: np.ndarray, num_actions: int) -> np.ndarray:
    out = np.zeros((len(actions), num_actions), dtype=np.float64)
    out[np.arange(len(actions)), actions] = 1.0
    return out


def uniform_mover(game) -> Mover:
    def move(states: np.ndarray) -> np.ndarray:
        legal = game.legal_mask(states).astype(np.float64)
        return legal / legal.sum(axis=1, keepdims=True)
    return move


def policy_mover(game, evaluator) -> Mover:
    """The raw network: argmax of the policy over the legal moves."""
    def move(states: np.ndarray) -> np.ndarray:
        logits, _ = evaluator(states)
        masked = np.where(game.legal_mask(states), logits, -np.inf)
        return one_hot(masked.argmax(axis=1), game.spec.num_actions)
    return move


def player_mover(game, player, batch_size: int = 256) -> Mover:
    """A Player (e.g. a search player, no noise) choosing once in each position, in batches."""
    def move(states: np.ndarray) -> np.ndarray:
        actions = np.empty(len(states), dtype=np.int64)
        for start in range(0, len(states), batch_size):
            chunk = states[start:start + batch_size]
            player.begin(len(chunk))
            actions[start:start + len(chunk)] = player.act(chunk, np.ones(len(chunk), bool)).actions
        return one_hot(actions, game.spec.num_actions)
    return move


def measurements(label: str, scores: dict[str, SolverScore]) -> list[Measurement]:
    out = []
    for stage in ("all", *STAGES):
        s = scores[stage]
        out.append(Measurement(
            f"connect4 solver decisive accuracy, {label}, {stage} (n={s.decisive_positions})",
            s.decisive_accuracy, "fraction"))
        out.append(Measurement(
            f"connect4 solver optimal rate, {label}, {stage} (n={s.positions})",
            s.optimal_rate, "fraction"))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True,
                        help="checkpoint file, 'random' (uniform baseline) or 'mcts-rollout:N'")
    parser.add_argument("--sims", type=int, default=None,
                        help="search simulations (default: the checkpoint's config)")
    parser.add_argument("--positions", default=str(DEFAULT_POSITIONS),
                        help="solved positions, JSON lines (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=256, help="positions searched side by side")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)


def movers_for(spec: str, game, *, simulations: int | None = None, device: str = "cpu",
               seed: int = 0, batch_size: int = 256) -> list[tuple[str, Mover]]:
    """(label, mover) pairs to score for a player spec: the random baseline alone; plain MCTS's
    search alone; a checkpoint's raw policy and its search."""
    from azero.players import (SearchPlayer, load_checkpoint, make_player, parse_player_spec)
    parsed = parse_player_spec(spec)
    if parsed.kind == "random":
        return [("random (expected)", uniform_mover(game))]
    if parsed.kind == "mcts-rollout":
        player = make_player(spec, game, seed=seed)
        return [(parsed.label, player_mover(game, player, batch_size))]
    from dataclasses import replace
    evaluator, config = load_checkpoint(parsed.path, game, device=device)
    if simulations is not None:
        config = replace(config, num_simulations=simulations)
    player = SearchPlayer(game, evaluator, config, seed=seed, name=parsed.label)
    return [("raw policy", policy_mover(game, evaluator)),
            (f"search {config.num_simulations} sims", player_mover(game, player, batch_size))]


def measure(args: argparse.Namespace) -> Iterable[Measurement]:
    from azero.games import make
    game = make("connect4")
    positions = load_positions(args.positions)
    states = position_states(game, positions)
    for label, mover in movers_for(args.ckpt, game, simulations=args.sims, device=args.device,
                                   seed=args.seed, batch_size=args.batch):
        yield from measurements(label, score_moves(positions, mover(states)))
