"""Anchors: fixed opponents (gate.anchors) that every newly promoted network plays, so that a run's
strength is measured against references that do not move (the gate only compares a network with
its predecessor). Results go to metrics.jsonl as one "anchors" event per promotion, with keys
"anchor/<spec>/<field>" (azero.stats.MatchStats.as_dict); the games to arena/anchor-<g>-<n>.
"""
from __future__ import annotations

import logging
import shutil

import numpy as np

from azero.config import Config
from azero.rundir import RunDir

log = logging.getLogger(__name__)


def check_anchors(config: Config) -> None:
    """Every gate.anchors entry names a player this game can have, and an external engine's
    executable is there: found at the start, not hours later at the first promotion."""
    from azero.config import ConfigError
    from azero.players import PlayerSpecError, close_players, make_player

    if not config.gate.anchors:
        return
    game = config.make_game()
    for i, spec in enumerate(config.gate.anchors):
        where = f"gate.anchors[{i}]: {spec!r}"
        try:
            player = make_player(spec, game)
        except (PlayerSpecError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None
        try:
            engine = getattr(player, "spec", None)      # an external GTP engine (GtpPlayer)
            if engine is not None:
                try:
                    argv = engine.command()
                except RuntimeError as e:               # GtpEngineError: gnugo not found
                    raise ConfigError(f"{where}: {e}") from None
                if shutil.which(argv[0]) is None:
                    raise ConfigError(f"{where}: the engine {argv[0]!r} is not found")
        finally:
            close_players(player)


def anchors_owed(run: RunDir, config: Config, best: dict) -> bool:
    """The promoted network has not played its anchors (a kill, or a stop, came first)."""
    if not config.gate.anchors or best["generation"] == 0 or not run.generation(
            best["generation"]).exists():
        return False
    return not any(r.get("event") == "anchors" and r.get("generation") == best["generation"]
                   for r in run.read_metrics())


def play_anchors(run: RunDir, config: Config, step: int, generation: int, tb) -> dict:
    """The anchor matches of a newly promoted network, logged as one "anchors" event and returned
    (keys "anchor/<spec>/<field>"). An anchor that fails (an engine that crashes or hangs) is
    logged as "anchor_error" and skipped: the anchors measure the run, they must not stop it."""
    return log_anchors(run, step, generation, anchor_matches(run, config, generation), tb)


def log_anchors(run: RunDir, step: int, generation: int, anchors: dict, tb) -> dict:
    """`anchor_matches`' figures as the "anchors" event of `generation` (and TensorBoard's
    scalars); returns them."""
    run.log_metrics("anchors", step=step, generation=generation, **anchors)
    if tb is not None:
        for k, v in anchors.items():
            if k.endswith(("/score", "/elo")) and np.isfinite(v):
                tb.add_scalar(k, v, step)
    return anchors


def describe_anchors(specs: list[str], anchors: dict) -> str:
    """One line's worth of `play_anchors`' figures, e.g. "against gnugo:level=1: W/D/L 3/0/7
    (10 games), score 30.0%, Elo ..."; an anchor whose match failed says so."""
    from azero.stats import MatchStats

    parts = []
    for spec in specs:
        key = f"anchor/{spec}/"
        if key + "wins" not in anchors:
            parts.append(f"against {spec}: failed (anchor_error in metrics.jsonl)")
            continue
        stats = MatchStats(*(int(anchors[key + k]) for k in ("wins", "draws", "losses")))
        parts.append(f"against {spec}: {stats}")
    return " | ".join(parts)


def anchor_matches(run: RunDir, config: Config, generation: int, network=None) -> dict:
    """The new best against each fixed opponent in `gate.anchors`: flat figures keyed
    "anchor/<spec>/<field>" (MatchStats.as_dict: score, elo and its 95% interval, W/D/L). Every game is
    recorded in arena/anchor-<generation>-<n>.<ext>. Each anchor's match is whole games, no SPRT.
    `network`: the checkpoint file that plays as gen-<generation> (default: the generation's
    file; a judging beside the trainer plays the candidate's, the same weights)."""
    from azero.arena import MatchConfig, run_match
    from azero.nets import resolve_device
    from azero.players import close_players, make_player
    from azero.records import discard_records, record_format

    game = config.make_game()
    device = str(resolve_device(config.train.device))
    games = config.gate.anchor_games
    network = run.generation(generation) if network is None else network
    out: dict = {}
    for n, spec in enumerate(config.gate.anchors):
        records = run.arena / f"anchor-{generation:04d}-{n}{record_format(config.game).suffix}"
        discard_records(records)          # a match cut short by a kill is played afresh
        match_cfg = MatchConfig(games=games, in_flight=min(games, 32),
                                opening_plies=config.gate.opening_plies, sprt=None,
                                seed=config.seed + generation)
        players = []
        try:
            players.append(make_player(network, game,
                                       simulations=config.gate.num_simulations, seed=config.seed,
                                       device=device, name=f"gen-{generation}"))
            players.append(make_player(spec, game, seed=config.seed + 1))
            result = run_match(game, *players, match_cfg, records=records,
                               info={"match": "anchor", "anchor": spec})
        except Exception as e:            # an engine that crashed, hung or misbehaved
            log.warning("generation %d against %s failed: %s", generation, spec, e)
            run.log_metrics("anchor_error", generation=generation, anchor=spec,
                            error=f"{type(e).__name__}: {e}")
            continue
        finally:
            close_players(*players)
        out.update({f"anchor/{spec}/{k}": v for k, v in result.stats.as_dict().items()})
        log.debug("generation %d against %s: %s", generation, spec, result.stats)
    return out
