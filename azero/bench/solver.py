"""Strength against a game's perfect-play set: decisive accuracy and optimal rate on solved positions.

A game with such a set names it in the registry (hook `solved_positions`, games/__init__.py):
(game, path or None for the set shipped with the package) -> (positions, states [N, S]).
Connect Four's is the dev set of shared/bench/connect4 (games/connect4/solver.py).
Two figures, overall and by stage (early / middle / late):
  * decisive accuracy: the share of positions where the chosen move keeps the game-theoretic value
    (win stays win, draw stays draw), over the positions where some legal move does not (for
    Connect Four's dev set a uniformly random mover scores ~34%);
  * optimal rate: the share of all positions where the chosen move is one of the best (fastest win,
    or longest survival; random: ~39%).
A mover is scored through the probability it gives each move: a deterministic bot puts 1 on its
move, the random baseline 1/legal on every legal move, so its figures are exact expectations.
The loop measures every newly promoted network this way (`promoted_figures`).
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from azero.bench import add_threads_argument, apply_threads
from azero.bench.report import Measurement

STAGES = ("early", "middle", "late")

# positions -> (states [N, S]) -> probabilities [N, A] of each move being chosen
Mover = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SolvedPosition:
    moves: str                     # the position as its set names it (Connect Four: column digits)
    stage: str                     # early | middle | late
    legal: tuple[int, ...]         # legal actions
    optimal: tuple[int, ...]       # actions whose score equals the position's value
    preserving: tuple[int, ...]    # actions that keep the sign of the value

    @property
    def decisive(self) -> bool:
        """A mistake is possible: some legal move changes the outcome."""
        return len(self.preserving) < len(self.legal)


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


def measurements(game_name: str, label: str, scores: dict[str, SolverScore]) -> list[Measurement]:
    out = []
    for stage in ("all", *STAGES):
        s = scores[stage]
        out.append(Measurement(
            f"{game_name} solver decisive accuracy, {label}, {stage} (n={s.decisive_positions})",
            s.decisive_accuracy, "fraction"))
        out.append(Measurement(
            f"{game_name} solver optimal rate, {label}, {stage} (n={s.positions})",
            s.optimal_rate, "fraction"))
    return out


def games_with_solved_positions() -> list[str]:
    from azero.games import entry, names
    return [name for name in names() if entry(name).solved_positions is not None]


def load_solved_positions(game, path: str | os.PathLike | None = None
                          ) -> tuple[list[SolvedPosition], np.ndarray]:
    """(positions, states [N, S]) of the game's perfect-play set: `path`, or the set shipped with
    the package. ValueError for a game without one; FileNotFoundError for a missing file."""
    from azero.games import hook
    load = hook(game.spec.name, "solved_positions")
    if load is None:
        raise ValueError(f"{game.spec.name} has no perfect-play positions; games with them: "
                         f"{', '.join(games_with_solved_positions()) or 'none'}")
    return load(game, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    have = games_with_solved_positions()
    parser.add_argument("--game", default=have[0] if have else None, choices=have,
                        help="a game with a perfect-play set (default: %(default)s)")
    parser.add_argument("--ckpt", required=True,
                        help="checkpoint file, 'random' (uniform baseline) or 'mcts-rollout:N'")
    parser.add_argument("--sims", type=int, default=None,
                        help="search simulations (default: the checkpoint's config)")
    parser.add_argument("--positions", default=None,
                        help="solved positions in the game's file format (default: the set "
                             "shipped with the package)")
    parser.add_argument("--batch", type=int, default=256, help="positions searched side by side")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    add_threads_argument(parser)


def movers_for(spec: str, game, *, simulations: int | None = None, device: str = "cpu",
               seed: int = 0, batch_size: int = 256) -> list[tuple[str, Mover]]:
    """(label, mover) pairs to score for a player spec: the random baseline alone; plain MCTS's
    search alone; a checkpoint's raw policy and its search."""
    from azero.players import (load_checkpoint, make_player, parse_player_spec,
                               search_player_for)
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
    player = search_player_for(game, evaluator, config, seed=seed, name=parsed.label)
    return [("raw policy", policy_mover(game, evaluator)),
            (f"search {config.num_simulations} sims", player_mover(game, player, batch_size))]


def measure(args: argparse.Namespace) -> Iterable[Measurement]:
    from azero.games import make
    if args.game is None:
        raise ValueError("no registered game has a perfect-play set")
    apply_threads(args)
    game = make(args.game)
    positions, states = load_solved_positions(game, args.positions)
    for label, mover in movers_for(args.ckpt, game, simulations=args.sims, device=args.device,
                                   seed=args.seed, batch_size=args.batch):
        yield from measurements(game.spec.name, label, score_moves(positions, mover(states)))


def promoted_figures(config, checkpoint: str | os.PathLike) -> dict[str, float]:
    """A newly promoted network against its game's shipped perfect-play set, raw policy and
    search: {"solver/policy_decisive", "solver/policy_optimal", "solver/search_decisive",
    "solver/search_optimal"} over all positions. {} for a game without a set, or an install
    without its file."""
    if config.game not in games_with_solved_positions():
        return {}
    game = config.make_game()
    try:
        positions, states = load_solved_positions(game)
    except FileNotFoundError:
        return {}
    out = {}
    for label, mover in movers_for(str(checkpoint), game, seed=config.seed):
        key = "policy" if label == "raw policy" else "search"
        scores = score_moves(positions, mover(states))["all"]
        out[f"solver/{key}_decisive"] = scores.decisive_accuracy
        out[f"solver/{key}_optimal"] = scores.optimal_rate
    return out


def summary(figures: dict[str, float]) -> str | None:
    """The terminal's words for `promoted_figures`, e.g. "solver decisive 0.912 policy / 0.951
    search"; None when there are none."""
    if "solver/policy_decisive" not in figures:
        return None
    return (f"solver decisive {figures['solver/policy_decisive']:.3f} policy / "
            f"{figures['solver/search_decisive']:.3f} search")
