"""Matches between two players, and the gate that promotes a candidate checkpoint to `best`.

A match plays its games in lockstep: `in_flight` games side by side, each player running ONE
batched search over all of them on the rows where it is to move, and both players told every move
(`Player.observe`) so their trees follow the game. A finished row starts the next game at once.

Games come in colour-swapped pairs: games 2k and 2k+1 start from the same opening (`opening_plies`
random plies, or a given book line), with A moving first in 2k and second in 2k+1, so neither side
profits from a lucky opening or from the first move. After every completed pair the SPRT is
checked; when it decides, the match stops (games still in flight are abandoned: not counted, not
recorded). The SPRT and the match's W/D/L count whole pairs only: a finished game whose partner
was still in flight when the SPRT stopped the match is recorded but not counted (counting it
would weigh one colour more, and in Connect Four the first move is worth a lot).

Scores are from A's point of view: in `gate`, A is the candidate and B the current best.

Resuming: a match's games are a function of its settings (the seed draws the openings; game i
opens with pair i // 2's line, A first in the even games), so a match cut short by a kill goes on
from its records (`play_match(finished=...)`, `run_match(resume=True)`): the recorded games count
as played, pairs and SPRT included, and only the others are played. Each recorded game must be
the game of that index in this match (the same players on the same sides, the same opening):
another seed, --games or --opening-plies is an error, not a silent mix.

Truncated games: a game cut off by the move cap (game.truncated) has no result by the rules, but a
match must score it. It is adjudicated, and its record says so (info "adjudicated"): by the
game's own `adjudicate` where it has one (Go: the area score of the board as it stands), as a
draw otherwise. Such a score is for the match only; no training data comes from arena games.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from azero.openings import play_random_openings
from azero.players import Player, close_players, make_player
from azero.records import GameRecord
from azero.stats import MatchStats, SprtConfig, SprtResult, sprt


@dataclass(frozen=True)
class MatchConfig:
    games: int = 100                 # at most this many games (rounded up to whole pairs)
    in_flight: int = 32              # games played side by side (the batch of each search)
    opening_plies: int = 2           # random plies opening each colour-swapped pair
    sprt: SprtConfig | None = field(default_factory=SprtConfig)   # None: no early stop
    seed: int = 0

    def __post_init__(self) -> None:
        if self.games < 1 or self.in_flight < 1 or self.opening_plies < 0:
            raise ValueError(f"match needs games >= 1, in_flight >= 1, opening_plies >= 0: {self}")

    @property
    def pairs(self) -> int:
        return (self.games + 1) // 2


@dataclass
class MatchResult:
    a: str
    b: str
    stats: MatchStats                # W/D/L of A over the games of whole (finished) pairs
    sprt: SprtResult | None          # verdict at the end (None if the match ran without SPRT)
    records: list[GameRecord]        # finished games in the order they finished (resumed first)
    stopped_early: bool              # the SPRT decided before all games were played
    resumed: int = 0                 # of `records`, the games played before a resume

    def summary(self) -> str:
        lines = [f"{self.a} vs {self.b}: {self.stats}"]
        if self.resumed:
            lines.append(f"{self.resumed} of the games were played before, as recorded "
                         f"(resumed)")
        if self.sprt is not None:
            lines.append(f"SPRT {self.sprt}" + (" (stopped early)" if self.stopped_early else ""))
        unpaired = len(self.records) - self.stats.games
        if unpaired > 0:
            lines.append(f"{unpaired} finished game(s) of pairs cut short by the stop: recorded, "
                         f"not counted")
        return "\n".join(lines)


def random_openings(game, count: int, plies: int, rng: np.random.Generator,
                    attempts_per_opening: int = 20) -> list[list[int]]:
    """`count` openings of `plies` uniformly random moves that do not end the game
    (azero.openings.play_random_openings), distinct while there are enough of them: duplicates are
    drawn again, `attempts_per_opening` rounds at most, then repeats are allowed."""
    openings: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for attempt in range(attempts_per_opening + 1):
        missing = count - len(openings)
        if missing == 0:
            break
        _, lines = play_random_openings(game, np.full(missing, plies), rng,
                                        redraws_per_opening=attempts_per_opening)
        for line in lines:
            if tuple(line) not in seen or attempt == attempts_per_opening:
                seen.add(tuple(line))
                openings.append(line)
    return openings


def play_match(game, a: Player, b: Player, cfg: MatchConfig = MatchConfig(), *,
               openings: Sequence[Sequence[int]] | None = None,
               on_game: Callable[[GameRecord, MatchStats], None] | None = None,
               info: dict | None = None,
               finished: Sequence[GameRecord] = ()) -> MatchResult:
    """Play A against B (see the module docstring). `openings`: book lines, one per pair, cycled
    (default: random ones). `on_game(record, stats_so_far)` is called after each finished game
    (write the record, print progress). `info` is copied into every record's info. `finished`:
    the records of this match's games already played (a resumed match; ValueError for one that
    is not this match's game of its index): counted, not played again."""
    rng = np.random.default_rng(cfg.seed)
    if openings is None:
        openings = random_openings(game, cfg.pairs, cfg.opening_plies, rng)
    if len(openings) == 0:
        raise ValueError("openings: need at least one line (an empty line is the start position)")
    total = 2 * cfg.pairs
    done = _games_of_this_match(finished, openings, total, a.name, b.name)
    to_play = [i for i in range(total) if i not in done]      # game indices, in order
    batch = min(cfg.in_flight, len(to_play))

    pair_scores: dict[int, list[float]] = {}   # A's score in each finished game of an open pair
    wdl = [0, 0, 0]                            # over whole pairs: the SPRT and the result
    wdl_games = [0, 0, 0]                      # over every finished game: progress reports
    records: list[GameRecord] = []
    started = 0                                # of to_play
    verdict: SprtResult | None = None

    def count(record: GameRecord) -> bool:
        """Add a finished game to the counts; True when it completes its pair."""
        score_a = record.info["score_a"]
        wdl_games[_wdl_index(score_a)] += 1
        records.append(record)
        pair = int(record.info["game_index"]) // 2
        pair_scores.setdefault(pair, []).append(score_a)
        if len(pair_scores[pair]) < 2:
            return False
        for score in pair_scores.pop(pair):
            wdl[_wdl_index(score)] += 1
        return True

    if any([count(done[i]) for i in sorted(done)]) and cfg.sprt is not None:
        verdict = sprt(*wdl, cfg.sprt)
    if not to_play or (verdict is not None and verdict.decision is not None):
        return MatchResult(a.name, b.name, MatchStats(*wdl), verdict, records,
                           stopped_early=bool(to_play), resumed=len(done))

    states = game.initial_states(batch)
    row_game = np.full(batch, -1, dtype=np.int64)      # game index per row; -1 = idle
    a_side = np.zeros(batch, dtype=np.int8)            # the player number A has in each row
    moves: list[list[int]] = [[] for _ in range(batch)]
    opening_len = np.zeros(batch, dtype=np.int64)
    a.begin(batch)
    b.begin(batch)

    def start(row: int) -> None:
        nonlocal started
        index = to_play[started]
        started += 1
        line = _opening_of_game(openings, index)
        s = game.initial_states(1)
        for action in line:
            s = game.step(s, np.array([action], dtype=np.int64))
        if game.terminal(s)[0] or game.truncated(s)[0]:
            raise ValueError(f"opening {line} ends the game (or reaches the move cap)")
        states[row] = s[0]
        row_game[row] = index
        a_side[row] = index % 2          # A moves first in even games, second in odd ones
        moves[row] = list(line)
        opening_len[row] = len(line)

    for row in range(batch):             # begin() gave both players fresh trees in every row
        start(row)

    while (row_game >= 0).any():
        active = row_game >= 0
        a_turn = active & (game.to_play(states) == a_side)
        b_turn = active & ~a_turn
        actions = np.zeros(batch, dtype=np.int64)
        resigned = np.zeros(batch, dtype=bool)   # the side to move gave up: no move in that row
        for player, turn in ((a, a_turn), (b, b_turn)):
            if turn.any():
                decision = player.act(states, turn)
                actions[turn] = decision.actions[turn]
                if decision.resigned is not None:
                    resigned |= turn & decision.resigned
        moving = active & ~resigned
        live = np.flatnonzero(moving)
        states[live] = game.step(states[live], actions[live])
        for row in live:
            moves[row].append(int(actions[row]))
        a.observe(actions, moving)
        b.observe(actions, moving)

        over = resigned | (moving & (game.terminal(states) | game.truncated(states)))
        ended = np.flatnonzero(over)
        pair_completed = False
        for row in ended:
            record = _finish(game, states[row], row_game[row], a_side[row], moves[row],
                             int(opening_len[row]), a.name, b.name, info,
                             resigned=bool(resigned[row]))
            pair_completed |= count(record)
            row_game[row] = -1
            if on_game is not None:
                on_game(record, MatchStats(*wdl_games))
        if cfg.sprt is not None and pair_completed:
            verdict = sprt(*wdl, cfg.sprt)
            if verdict.decision is not None:
                break
        restarted = ended[:max(0, len(to_play) - started)]
        for row in restarted:
            start(row)
        if len(restarted):
            a.reset(restarted)
            b.reset(restarted)

    # Every game belongs to a pair and the last game to finish completes one, so `verdict` is
    # the SPRT of the final counts whenever an SPRT is configured.
    stopped_early = verdict is not None and verdict.decision is not None and len(records) < total
    return MatchResult(a.name, b.name, MatchStats(*wdl), verdict, records, stopped_early,
                       resumed=len(done))


def _games_of_this_match(finished: Sequence[GameRecord], openings: Sequence[Sequence[int]],
                         total: int, a_name: str, b_name: str) -> dict[int, GameRecord]:
    """{game index: record} of a resumed match's finished games; ValueError for a record that
    is not this match's game of its index (module docstring), naming the difference."""
    done: dict[int, GameRecord] = {}
    for record in finished:
        index = record.info.get("game_index")
        if not isinstance(index, int) or not 0 <= index < total:
            raise ValueError(f"a recorded game has game_index {index!r}; this match has games "
                             f"0-{total - 1} (another --games?)")
        if index in done:
            raise ValueError(f"game {index + 1} is recorded twice")
        line = _opening_of_game(openings, index)
        players = (a_name, b_name) if index % 2 == 0 else (b_name, a_name)
        if tuple(record.players) != players:
            raise ValueError(f"game {index + 1} was played by {' - '.join(record.players)}, "
                             f"this match has {' - '.join(players)} (other players?)")
        if list(record.moves[:len(line)]) != line or record.opening_plies != len(line):
            raise ValueError(f"game {index + 1} opened otherwise than this match opens it "
                             f"(another --seed, --games or --opening-plies?)")
        done[index] = record
    return done


def _opening_of_game(openings: Sequence[Sequence[int]], index: int) -> list[int]:
    """The book line game `index` starts from: both games of a pair share one; pairs cycle
    through `openings`."""
    return [int(x) for x in openings[(index // 2) % len(openings)]]


def _wdl_index(score_a: float) -> int:
    return 0 if score_a == 1.0 else 1 if score_a == 0.5 else 2


def _finish(game, state: np.ndarray, index: int, a_side: int, moves: list[int],
            opening_plies: int, a_name: str, b_name: str, info: dict | None,
            resigned: bool = False) -> GameRecord:
    """The record of a finished game: lost by the side to move in `state` if it resigned; a game
    cut off by the move cap is adjudicated (see the module docstring)."""
    one = state[None]
    resigner = int(game.to_play(one)[0]) if resigned else -1
    adjudicated = None
    if resigned:
        first_score = -1.0 if resigner == 0 else 1.0
    else:
        if game.terminal(one)[0]:
            to_move_score = float(game.result(one)[0])               # +1/0/-1, side to move
        elif callable(getattr(game, "adjudicate", None)):
            to_move_score = float(np.sign(game.adjudicate(one)[0]))
            adjudicated = f"by {game.spec.name}'s adjudicate: cut off at the move cap"
        else:
            to_move_score = 0.0
            adjudicated = "draw: cut off at the move cap"
        first_score = to_move_score if game.to_play(one)[0] == 0 else -to_move_score
    score_first = (first_score + 1.0) / 2.0                           # 1, 0.5, 0
    score_a = score_first if a_side == 0 else 1.0 - score_first
    players = (a_name, b_name) if a_side == 0 else (b_name, a_name)
    rec_info = {**(info or {}), "game_index": int(index), "pair": int(index) // 2,
                "score_a": score_a}
    if adjudicated:
        rec_info["adjudicated"] = adjudicated
    if resigned:
        rec_info["resigned"] = players[resigner]
    return GameRecord(game=game.spec.name, players=players, moves=list(moves),
                      result=score_first, opening_plies=opening_plies, info=rec_info)


# --------------------------------------------------------------------------------------- gating

@dataclass
class GateResult:
    promoted: bool                   # the candidate becomes best
    reason: str                      # why, in words
    stats: MatchStats                # W/D/L of the candidate against best
    sprt: SprtResult | None
    stopped_early: bool = False

    def as_dict(self) -> dict:
        """Flat figures for logging (TensorBoard scalars, the run log)."""
        d = {"promoted": self.promoted, "reason": self.reason, **self.stats.as_dict(),
             "stopped_early": self.stopped_early}
        if self.sprt is not None:
            d.update(sprt_llr=self.sprt.llr, sprt_decision=self.sprt.decision)
        return d


def gate(candidate: Player | str | os.PathLike, best: Player | str | os.PathLike, cfg, *,
         game=None, records: str | os.PathLike | None = None, in_flight: int = 32,
         seed: int | None = None, device: str = "cpu") -> GateResult:
    """Match the candidate against the current best; the candidate is promoted when its score
    reaches cfg.threshold (AlphaGo Zero: 55%) or the SPRT accepts H1 (candidate at least
    sprt_elo1 stronger). An SPRT that accepts H0 stops the match early and rejects.

    cfg: an `azero.config.GateConfig`, or a whole `azero.config.Config` (then its `gate` section
    is used, and `game` and `seed` default to the run's). candidate, best: players, or checkpoint
    paths / player specs (`azero.players.make_player`); checkpoints search with their own
    settings, with cfg.num_simulations simulations when set. records: a file the games are
    appended to (the game's record format), or None.
    """
    if hasattr(cfg, "gate"):                         # a whole run Config
        game = game if game is not None else cfg.make_game()
        seed = cfg.seed if seed is None else seed
        cfg = cfg.gate
    seed = 0 if seed is None else seed
    if game is None:
        raise ValueError("gate: pass game= (a Game or its name), or a whole Config as cfg")
    if isinstance(game, str):
        from azero.games import make
        game = make(game)
    if not cfg.enabled:
        return GateResult(True, "gating disabled: every candidate becomes best",
                          MatchStats(0, 0, 0), None)
    given = (candidate, best)
    players: list = []

    def close_made() -> None:
        # players made here from specs (GTP engines hold processes); the caller's stay open
        close_players(*(p for p, g in zip(players, given) if p is not g))

    try:
        for i, (p, name) in enumerate(((candidate, "candidate"), (best, "best"))):
            players.append(p if not isinstance(p, (str, os.PathLike))
                           else make_player(p, game, simulations=cfg.num_simulations,
                                            seed=seed + i, device=device, name=name))
    except BaseException:
        close_made()
        raise
    sprt_cfg = SprtConfig(elo0=cfg.sprt_elo0, elo1=cfg.sprt_elo1, alpha=cfg.sprt_alpha,
                          beta=cfg.sprt_beta)
    match_cfg = MatchConfig(games=cfg.games, in_flight=in_flight,
                            opening_plies=cfg.opening_plies, sprt=sprt_cfg, seed=seed)
    try:
        result = run_match(game, players[0], players[1], match_cfg, records=records,
                           info={"match": "gate"})
    finally:
        close_made()
    stats, verdict = result.stats, result.sprt
    if verdict is not None and verdict.decision == "H1":
        promoted, reason = True, f"SPRT accepted H1 (candidate >= {cfg.sprt_elo1:+g} Elo)"
    elif verdict is not None and verdict.decision == "H0":
        promoted, reason = False, f"SPRT accepted H0 (candidate <= {cfg.sprt_elo0:+g} Elo)"
    elif stats.score >= cfg.threshold:
        promoted, reason = True, f"score {stats.score:.3f} >= threshold {cfg.threshold:g}"
    else:
        promoted, reason = False, f"score {stats.score:.3f} < threshold {cfg.threshold:g}"
    return GateResult(promoted, reason, stats, verdict, result.stopped_early)


def run_match(game, a: Player, b: Player, cfg: MatchConfig, *,
              records: str | os.PathLike | None = None,
              progress: Callable[[GameRecord, MatchStats], None] | None = None,
              info: dict | None = None, resume: bool = False) -> MatchResult:
    """play_match, appending every finished game to `records` (if given) in the game's format.
    resume: the games `records` already holds of this match (those whose info "match" is
    info's) are its finished games (play_match's `finished`); the others there are left be."""
    from azero.records import open_record_writer, record_format
    finished: list[GameRecord] = []
    if resume:
        if records is None:
            raise ValueError("resuming a match needs its records file")
        if Path(records).exists():
            label = (info or {}).get("match")
            finished = [r for r in record_format(game.spec.name).read(game, Path(records))
                        if r.info.get("match") == label]
    writer = open_record_writer(game, records) if records is not None else None

    def on_game(record: GameRecord, stats: MatchStats) -> None:
        if writer is not None:
            writer.write(record)
        if progress is not None:
            progress(record, stats)

    try:
        return play_match(game, a, b, cfg, on_game=on_game, info=info, finished=finished)
    finally:
        if writer is not None:
            writer.close()
