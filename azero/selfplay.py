"""Self-play: many games in lockstep with one batched search, finished games handed out as
training examples. A worker process (azero/workers.py) wraps this with network reloads and shard
writes; tests drive it directly. AlphaZeroGames (at the end) is how an AlphaZero worker searches
and stores its games; MuZero's is azero/muzero/selfplay.py.

Invariants:
  * Every row of `states` is a live game, neither terminal nor truncated; a finished row is
    restarted at once, so every search call is a full batch.
  * Value targets are the final result from each recorded position's side to move; a resigned
    game counts as a loss for the side that resigned.
  * Truncated games: a game cut off by the game's move cap (game.truncated) or by
    settings.max_moves has no result, and is never labelled a draw. Its positions' value targets
    are the search's root values (settings.truncated_value_target "search", the default: the
    positions keep their policy targets, and the search value is the best estimate there is), or
    the game is kept out of training ("drop": FinishedGame.for_training is False; the worker
    writes its record but no replay rows). Its result_first_player is None.
  * Random openings (settings.random_opening_fraction > 0): a share of games starts with a
    uniformly random number (1..random_opening_max_moves) of uniformly random legal moves
    (azero/openings.py, shared with the arena). Those moves are not searched and their positions
    are not recorded (a random move's position has no search target, and its result would credit
    the random moves); the game is searched and recorded from the first position after them. An
    opening that ends the game is drawn again (bounded, then RuntimeError). Opening moves count as
    plies of the game: PUCT's temperature_moves and max_moves include them.
    Why: self-play alone sees a narrow band of positions; odd positions (the kind random play
    and weak opponents produce) are otherwise never evaluated. FinishedGame.opening holds the
    moves so that a record replays the whole game.
  * Ownership targets (games whose Game has `ownership(states)` and a `spec.board_shape`, e.g.
    Go): the ownership of the FINAL position of the game (the game's own scoring, e.g.
    Tromp-Taylor area for go9), seen from each recorded position's side to move: +1 that player
    owns the point, -1 the opponent, 0 neutral. Only games that ended by the rules (game.terminal,
    e.g. two passes) have one. A resigned or truncated game has no scored end: its last board as
    it stands (the resigner's dead stones counted as its own) can contradict the value target, so
    such a game gets a zero target with ownership_weight 0 at every position (the trainer ignores
    those rows). The games played out to measure resignation
    (resign_playout_fraction) and all games without resignation get the exact target.
  * Playout cap randomisation (settings.playout_cap_fraction p > 0; KataGo, Wu 2019, section
    3.1): at every move each game independently draws a full search (probability p:
    search.num_simulations, root noise as settings.add_noise, PUCT's temperature as configured)
    or a cheap one (settings.playout_cap_cheap_simulations, no root noise, and the move the
    search rates best: PUCT's most visited child, Gumbel's noiseless choice, whatever the
    temperature; KataGo disables its explorative settings in fast searches so that the game
    stays strong). Both kinds run in the same batched search (per-row budgets: no extra network
    call; the last max - cheap simulation steps run on the full rows only). Only full-search
    positions are training data: FinishedGame.states and every per-position field hold those
    alone, `plies` says which move each one is, and `actions` keeps every move for the record.
    Value targets (the result, and the root value mix) are those of the full-search positions.
  * Score-weighted value (settings.score_value_weight w_s > 0; games whose Game has
    `score(states)`, the final score margin for the first player, e.g. Go's area score with
    komi): in a game that ended by the rules, a position's result z (side to move's view) becomes
    (1 - w_s) z + w_s tanh(m / settings.score_value_scale), m the final margin from that side's
    view, before value_target_root_weight mixes in the root value: a big win is worth more than a
    narrow one (KataGo's score utility, Wu 2019 section 4). Resigned and truncated games have no
    scored end and keep their targets.
"""
from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass, field

import numpy as np

from azero.config import ConfigError, SelfPlayConfig
from azero.openings import OpeningsEndGames, play_random_openings
from azero.search import BatchedSearch, Evaluator, SearchConfig


def check_random_openings(settings: SelfPlayConfig, game) -> None:
    """ConfigError (naming the selfplay.* key) unless a random opening leaves a game to search."""
    k = settings.random_opening_max_moves
    if settings.random_opening_fraction <= 0 or k <= 0:
        return
    if k >= game.spec.max_game_length:
        raise ConfigError(f"selfplay.random_opening_max_moves: {k} random moves would fill a "
                          f"{game.spec.name} game ({game.spec.max_game_length} plies at most)")
    if settings.max_moves is not None and k >= settings.max_moves:
        raise ConfigError(f"selfplay.random_opening_max_moves: {k} is not below "
                          f"selfplay.max_moves ({settings.max_moves}): no move would be searched")


@dataclass
class FinishedGame:
    states: np.ndarray          # [T, S] the positions searched for training (every searched
                                # position, or the full searches under playout cap randomisation)
    policy_targets: np.ndarray  # float32 [T, A]
    # float32 [T]: the final result from each position's side to move (mixed with the root value
    # by value_target_root_weight); for a truncated game, the search's root value alone.
    value_targets: np.ndarray
    # int32 [M] every move played after the opening (M == T without playout cap randomisation;
    # then actions[i] was played from states[i])
    actions: np.ndarray
    result_first_player: float | None  # +1 / 0 / -1 for player 0; None if truncated
    resigned: bool = False
    truncated: bool = False     # cut off by the game's cap or settings.max_moves
    # False: leave these positions out of training (a truncated game under
    # truncated_value_target "drop"); the game is still recorded.
    for_training: bool = True
    # Played out although a resignation would have happened: whether that resignation would have
    # been wrong (the side that would have resigned did not lose). None if no resignation was due.
    false_resignation: bool | None = None
    # int8 [T, H, W]: final ownership from each position's side to move (+1 own, -1 opponent's,
    # 0 neutral); None for games without `ownership` (see the module docstring).
    ownership_targets: np.ndarray | None = None
    # float32 [T]: 1 where ownership_targets is the exact (rules-scored) target, 0 where the game
    # did not end by the rules (resigned / truncated: the target is all zeros); None with
    # ownership_targets None.
    ownership_weight: np.ndarray | None = None
    # int32 [K]: the random opening moves played before states[0] (K = 0 without one).
    opening: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    # float32 [T]: the search's root value at each position, for its side to move.
    root_values: np.ndarray | None = None
    # int32 [T] increasing: the move of each position, states[i] is the position actions[plies[i]]
    # was played from (arange(T) without playout cap randomisation). None: arange(T).
    plies: np.ndarray | None = None


@dataclass
class _GameLog:
    states: list = field(default_factory=list)
    policies: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    to_play: list = field(default_factory=list)
    root_values: list = field(default_factory=list)    # search's root value, side to move
    full_search: list = field(default_factory=list)    # bool per move: a training position
    low_value_streak: np.ndarray = field(default_factory=lambda: np.zeros(2, np.int32))
    playout: bool = False             # resignation disabled for this game
    would_resign_player: int = -1     # first player whose resignation was due (playout games)
    opening: list = field(default_factory=list)   # random opening moves before the first record


class SelfPlay:
    """Plays `settings.games_per_worker` games in lockstep; `play_move()` advances every game one
    ply. settings: the config's self-play section (its worker and shard keys are not used here).
    make_search(batch_size, seed): the searcher (BatchedSearch's face: run / advance / reset);
    None = a BatchedSearch over the rules. `self.search` may be replaced between moves (a MuZero
    search is bound to one network): the games go on, their trees start afresh."""

    def __init__(self, game, search_config: SearchConfig, settings: SelfPlayConfig,
                 seed: int | np.random.SeedSequence = 0, make_search=None):
        check_random_openings(settings, game)
        if settings.score_value_weight > 0 and not callable(getattr(game, "score", None)):
            raise ConfigError(f"selfplay.score_value_weight: {game.spec.name} has no score "
                              f"(Game.score: the final margin for the first player); set it to 0")
        self.game = game
        self.settings = settings
        self.search_config = search_config
        # Independent streams for our choices (playout games) and the search's noise.
        own, search = np.random.SeedSequence(seed).spawn(2) if not isinstance(
            seed, np.random.SeedSequence) else seed.spawn(2)
        self.rng = np.random.default_rng(own)
        search_seed = int(search.generate_state(1)[0])
        self.search = (BatchedSearch(game, search_config, settings.games_per_worker, seed=search_seed)
                       if make_search is None else make_search(settings.games_per_worker, search_seed))
        self.logs = [self._new_log() for _ in range(settings.games_per_worker)]
        self.states = self._new_games(np.arange(settings.games_per_worker))
        self.has_ownership = (callable(getattr(game, "ownership", None))
                              and game.spec.board_shape is not None)

    def _new_log(self) -> _GameLog:
        s = self.settings
        playout = s.resign_threshold is not None and self.rng.random() < s.resign_playout_fraction
        return _GameLog(playout=playout)

    def _new_games(self, rows: np.ndarray) -> np.ndarray:
        """[len(rows), S] starting positions for the games about to start in `rows` (whose logs
        are fresh): the initial position, or a random opening (recorded in the row's log)."""
        game, s = self.game, self.settings
        if s.random_opening_fraction <= 0 or s.random_opening_max_moves <= 0:
            return game.initial_states(len(rows))
        opened = self.rng.random(len(rows)) < s.random_opening_fraction
        lengths = np.where(opened, self.rng.integers(1, s.random_opening_max_moves + 1, len(rows)),
                           0)
        try:
            states, lines = play_random_openings(game, lengths, self.rng)
        except OpeningsEndGames as e:
            raise RuntimeError(f"{e}: lower selfplay.random_opening_max_moves") from None
        for b, line in zip(rows, lines):
            self.logs[b].opening = line
        return states

    def play_move(self, evaluator: Evaluator) -> list[FinishedGame]:
        """One search for every row, one move in every game. Returns the games that ended."""
        game, s = self.game, self.settings
        full = np.ones(len(self.logs), bool)      # [B] full searches (training positions)
        if s.playout_cap_fraction > 0:
            full = self.rng.random(len(self.logs)) < s.playout_cap_fraction
            budgets = np.where(full, self.search_config.num_simulations,
                               s.playout_cap_cheap_simulations).astype(np.int32)
            out = self.search.run(self.states, evaluator, add_noise=full & s.add_noise,
                                  temperature=s.temperature, simulations=budgets)
        else:
            out = self.search.run(self.states, evaluator, add_noise=s.add_noise,
                                  temperature=s.temperature)
        actions = out.actions.astype(np.int64)
        if self.search_config.algorithm == "puct":
            # Sampled (temperature 1) early in the game, most visited afterwards and in cheap
            # searches.
            late = (game.move_number(self.states) >= s.temperature_moves) | ~full
            # A search of 0 simulations (a cheap one, or num_simulations 0) has no visits: its
            # policy target is the prior over the legal moves, which the search samples from too.
            visits = out.visit_counts[late]                            # [L, A]
            greedy = np.where(visits.sum(axis=1, keepdims=True) > 0, visits,
                              out.policy_target[late])
            actions[late] = np.argmax(greedy, axis=1)

        to_play = game.to_play(self.states)
        for b, log in enumerate(self.logs):
            log.states.append(self.states[b].copy())
            log.policies.append(out.policy_target[b].copy())
            log.actions.append(int(actions[b]))
            log.to_play.append(int(to_play[b]))
            log.root_values.append(float(out.root_value[b]))
            log.full_search.append(bool(full[b]))

        resigning = self._resignations(out.root_value, to_play)
        self.states = game.step(self.states, actions)
        self.search.advance(actions)
        by_rules = game.terminal(self.states)
        cut = game.truncated(self.states)
        if s.max_moves is not None:
            cut |= game.move_number(self.states) >= s.max_moves
        truncated = cut & ~by_rules & (resigning < 0)      # a resignation ends it first
        ended = by_rules | truncated | (resigning >= 0)

        finished = []
        if ended.any():
            rows = np.flatnonzero(ended)
            results = game.result(self.states)  # side to move's view after the move
            final_ownership = final_to_play = None
            if self.has_ownership:
                # [len(rows), H, W] from the side to move of each final position
                final_ownership = np.asarray(game.ownership(self.states[rows]), np.int8)
                final_to_play = game.to_play(self.states[rows])
            margins = None       # float [len(rows)]: final score margin for the first player
            if s.score_value_weight > 0:
                margins = np.asarray(game.score(self.states[rows]), np.float64)
            for i, b in enumerate(rows):
                ownership = None
                if final_ownership is not None:
                    exact = bool(by_rules[b]) and resigning[b] < 0
                    ownership = (final_ownership[i], int(final_to_play[i]), exact)
                scored = margins is not None and bool(by_rules[b]) and resigning[b] < 0
                finished.append(self._finish(b, results[b], int(resigning[b]), bool(truncated[b]),
                                             ownership, float(margins[i]) if scored else None))
            self.states[rows] = self._new_games(rows)
            self.search.reset(rows)
        return finished

    def _resignations(self, root_value: np.ndarray, to_play: np.ndarray) -> np.ndarray:
        """Player index resigning in each row, -1 for none. Updates the streak counters."""
        s = self.settings
        resigning = np.full(len(self.logs), -1, np.int64)
        if s.resign_threshold is None:
            return resigning
        for b, log in enumerate(self.logs):
            p = int(to_play[b])
            log.low_value_streak[p] = log.low_value_streak[p] + 1 if root_value[b] < s.resign_threshold else 0
            if log.low_value_streak[p] >= s.resign_consecutive:
                if log.playout:
                    if log.would_resign_player < 0:
                        log.would_resign_player = p
                else:
                    resigning[b] = p
        return resigning

    def _finish(self, b: int, terminal_result: float, resigned_player: int, truncated: bool,
                final_ownership: tuple[np.ndarray, int, bool] | None = None,
                final_margin: float | None = None) -> FinishedGame:
        """final_ownership: (ownership [H, W] of the final state from its side to move, that
        side to move, whether the game ended by the rules), or None. final_margin: the final
        score margin for the first player of a game scored by the rules (score_value_weight),
        or None."""
        log = self.logs[b]
        to_play = np.asarray(log.to_play, np.int8)
        root_values = np.asarray(log.root_values, np.float32)
        first_player_result = None
        if truncated:
            values = root_values            # no result: the search's value, never a 0 "draw"
        else:
            if resigned_player >= 0:
                first_player_result = -1.0 if resigned_player == 0 else 1.0
            else:
                # terminal_result is from the side to move in the final state.
                final_to_play = 1 - to_play[-1]
                first_player_result = float(terminal_result if final_to_play == 0
                                            else -terminal_result)
            values = np.where(to_play == 0, first_player_result,
                              -first_player_result).astype(np.float32)
            if final_margin is not None:
                w_s = self.settings.score_value_weight
                score = np.tanh(final_margin / self.settings.score_value_scale)
                values = ((1.0 - w_s) * values
                          + w_s * np.where(to_play == 0, score, -score)).astype(np.float32)
            w = self.settings.value_target_root_weight
            if w > 0:
                values = ((1.0 - w) * values + w * root_values).astype(np.float32)
        false_resignation = None
        if log.would_resign_player >= 0 and first_player_result is not None:
            loser_result = first_player_result if log.would_resign_player == 0 else -first_player_result
            false_resignation = bool(loser_result >= 0)
        ownership_targets = ownership_weight = None
        if final_ownership is not None:
            board, owner_view, exact = final_ownership
            # +1 where the recorded position's side to move is the final state's side to move
            sign = np.where(to_play == owner_view, 1, -1).astype(np.int8)
            ownership_targets = sign[:, None, None] * board[None].astype(np.int8)
            if not exact:
                # Resigned / capped: no scored end, so no target (same fields, weight 0).
                ownership_targets = np.zeros_like(ownership_targets)
            ownership_weight = np.full(len(to_play), 1.0 if exact else 0.0, np.float32)
        self.logs[b] = self._new_log()
        plies = np.flatnonzero(log.full_search).astype(np.int32)   # [T] training positions
        if len(plies) == len(log.full_search):
            keep = slice(None)
        else:
            keep = plies
            values, root_values = values[keep], root_values[keep]
            if ownership_targets is not None:
                ownership_targets, ownership_weight = (ownership_targets[keep],
                                                       ownership_weight[keep])
        return FinishedGame(
            states=np.stack(log.states)[keep],
            policy_targets=np.stack(log.policies).astype(np.float32)[keep],
            value_targets=values,
            actions=np.asarray(log.actions, np.int32),
            result_first_player=first_player_result,
            resigned=resigned_player >= 0,
            truncated=truncated,
            for_training=not (truncated and self.settings.truncated_value_target == "drop"),
            false_resignation=false_resignation,
            ownership_targets=ownership_targets,
            ownership_weight=ownership_weight,
            opening=np.asarray(log.opening, np.int32),
            root_values=root_values,
            plies=plies,
        )


class AlphaZeroGames:
    """How an AlphaZero self-play worker searches and stores its games: SelfPlay's BatchedSearch
    over the rules with the policy-value net as evaluator, and replay shards of the searched
    positions (azero/replay.py). The loop's algorithm object makes one per worker
    (azero.alphazero.AlphaZero.games); MuZero's is azero.muzero.selfplay.MuZeroGames."""

    def __init__(self, run, game, config, worker_id: int):
        self.game = game
        self._writer_args = (run, worker_id, config.selfplay.games_per_shard)

    @functools.cached_property
    def writer(self):
        """The replay shard writer, made on first use: a Ray actor uses only the search half and
        has no run directory (run None)."""
        from azero.replay import ShardWriter
        run, worker_id, games_per_shard = self._writer_args
        return ShardWriter(run.replay, worker=worker_id, games_per_shard=games_per_shard)

    def evaluator(self, net, device):
        """The evaluator of a newly loaded best network (a snapshot of its weights)."""
        from azero.nets import make_evaluator
        return make_evaluator(net, self.game, device, snapshot=True)

    def search_factory(self, evaluator):
        """SelfPlay's make_search for `evaluator`; None: SelfPlay's own BatchedSearch, which
        takes the evaluator at every run."""
        return None

    def add_game(self, g, generation: int):
        """Queue a finished game (selfplay.FinishedGame) for the shard writer; the shard's path
        when one was written."""
        # false_resignation: -1 no resignation was due, 0 it would have been right, 1 wrong.
        flag = -1 if g.false_resignation is None else int(g.false_resignation)
        # Ownership targets (int8 [T, H, W]) for games that have them (Go); a game either
        # always or never has them, so every game of a shard has the same fields.
        # ownership_weight (uint8 [T]) is 0 for games that did not end by the rules
        # (their target is zeros), so the fields never change between games.
        optional = {} if g.ownership_targets is None else {
            "ownership": g.ownership_targets,
            "ownership_weight": g.ownership_weight.astype(np.uint8)}
        return self.writer.add_game(
            g.states, g.policy_targets, g.value_targets,
            generation=np.full(len(g.value_targets), generation, np.int32),
            false_resignation=np.full(len(g.value_targets), flag, np.int8), **optional)


def worker_seed(config, worker_id: int) -> np.random.SeedSequence:
    """A self-play worker's seed: the config's seed, the worker's id, its process and the time,
    so that a restarted worker (or a Ray actor) never replays the games of the one before."""
    return np.random.SeedSequence([config.seed, worker_id, os.getpid(), time.time_ns()])
