"""Self-play: many games in lockstep with one batched search, finished games handed out as
training examples. A worker process (azero/workers.py) wraps this with network reloads and shard
writes; tests drive it directly.

Invariants:
  * Every row of `states` is a live, non-terminal game; a finished row is restarted at once, so
    every search call is a full batch.
  * Value targets are the final result from each recorded position's side to move; a resigned
    game counts as a loss for the side that resigned.
  * Random openings (settings.random_opening_fraction > 0): a share of games starts with a
    uniformly random number (1..random_opening_max_moves) of uniformly random legal moves. Those
    moves are not searched and their positions are not recorded (a random move's position has no
    search target, and its result would credit the random moves); the game is searched and
    recorded from the first position after them. An opening that ends the game is drawn again
    (up to OPENING_REDRAWS_PER_GAME times per game on average, then RuntimeError). Opening moves
    count as plies of the game: PUCT's temperature_moves and max_moves include them.
    Why: self-play alone sees a narrow band of positions; odd positions (the kind random play
    and weak opponents produce) are otherwise never evaluated. FinishedGame.opening holds the
    moves so that a record replays the whole game.
  * Ownership targets (games whose Game has `ownership(states)` and a `spec.board_shape`, e.g.
    Go): the ownership of the FINAL position of the game (the game's own scoring, e.g.
    Tromp-Taylor area for go9), seen from each recorded position's side to move: +1 that player
    owns the point, -1 the opponent, 0 neutral. Only games that ended by the rules (game.terminal,
    e.g. two passes) have one. A resigned or move-capped (settings.max_moves) game has no scored
    end: its last board as it stands (the resigner's dead stones counted as its own) can
    contradict the value target, so such a game gets a zero target with ownership_weight 0 at
    every position (the trainer ignores those rows). The games played out to measure resignation
    (resign_playout_fraction) and all games without resignation get the exact target.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from azero.players.random_player import random_legal_actions
from azero.search import BatchedSearch, Evaluator, SearchConfig


# Redraws of random openings that ended the game, per game started, before giving up (a setting
# whose openings nearly always end the game would otherwise spin forever).
OPENING_REDRAWS_PER_GAME = 100


def check_random_openings(settings, game) -> None:
    """ConfigError (naming the selfplay.* key) unless a random opening leaves a game to search.
    settings: a SelfPlaySettings or the config's SelfPlayConfig (the same field names)."""
    from azero.config import ConfigError
    k = settings.random_opening_max_moves
    if settings.random_opening_fraction <= 0 or k <= 0:
        return
    if k >= game.spec.max_game_length:
        raise ConfigError(f"selfplay.random_opening_max_moves: {k} random moves would fill a "
                          f"{game.spec.name} game ({game.spec.max_game_length} plies at most)")
    if settings.max_moves is not None and k >= settings.max_moves:
        raise ConfigError(f"selfplay.random_opening_max_moves: {k} is not below "
                          f"selfplay.max_moves ({settings.max_moves}): no move would be searched")


@dataclass(frozen=True)
class SelfPlaySettings:
    num_games: int = 128                  # games in lockstep (the search batch)
    temperature_moves: int = 0            # PUCT: sample by visit count for the first N plies
    temperature: float = 1.0              # ... at this temperature
    add_noise: bool = True                # Dirichlet (PUCT) / Gumbel root noise
    max_moves: int | None = None          # adjudicate a draw after this many plies (None: game's max)
    resign_threshold: float | None = None  # resign when root value stays below this (None: never)
    resign_consecutive: int = 2           # ... for this many own moves in a row
    resign_playout_fraction: float = 0.1  # share of games that ignore resignation (to measure it)
    # Value target = (1 - w) * z + w * q: z the game's result, q the search's root value, both
    # from the position's side to move. 0: AlphaZero's z alone; Oracle's "Lessons from
    # AlphaZero" (Connect Four) trained faster on the average, w = 0.5.
    value_target_root_weight: float = 0.0
    # Share of games opened with 1..random_opening_max_moves uniformly random moves (see the
    # module docstring); 0 = every game starts from the initial position.
    random_opening_fraction: float = 0.0
    random_opening_max_moves: int = 0


@dataclass
class FinishedGame:
    states: np.ndarray          # [T, S] the positions where a move was searched
    policy_targets: np.ndarray  # float32 [T, A]
    value_targets: np.ndarray   # float32 [T] final result from each position's side to move
    actions: np.ndarray         # int32 [T] moves played
    result_first_player: float  # +1 / 0 / -1 for player 0
    resigned: bool = False
    # Played out although a resignation would have happened: whether that resignation would have
    # been wrong (the side that would have resigned did not lose). None if no resignation was due.
    false_resignation: bool | None = None
    # int8 [T, H, W]: final ownership from each position's side to move (+1 own, -1 opponent's,
    # 0 neutral); None for games without `ownership` (see the module docstring).
    ownership_targets: np.ndarray | None = None
    # float32 [T]: 1 where ownership_targets is the exact (rules-scored) target, 0 where the game
    # did not end by the rules (resigned / move-capped: the target is all zeros); None with
    # ownership_targets None.
    ownership_weight: np.ndarray | None = None
    # int32 [K]: the random opening moves played before states[0] (K = 0 without one).
    opening: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))


@dataclass
class _GameLog:
    states: list = field(default_factory=list)
    policies: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    to_play: list = field(default_factory=list)
    root_values: list = field(default_factory=list)    # search's root value, side to move
    low_value_streak: np.ndarray = field(default_factory=lambda: np.zeros(2, np.int32))
    playout: bool = False             # resignation disabled for this game
    would_resign_player: int = -1     # first player whose resignation was due (playout games)
    opening: list = field(default_factory=list)   # random opening moves before the first record


class SelfPlay:
    """Plays `settings.num_games` games in lockstep; `play_move()` advances every game one ply."""

    def __init__(self, game, search_config: SearchConfig, settings: SelfPlaySettings,
                 seed: int | np.random.SeedSequence = 0):
        check_random_openings(settings, game)
        self.game = game
        self.settings = settings
        self.search_config = search_config
        # Independent streams for our choices (playout games) and the search's noise.
        own, search = np.random.SeedSequence(seed).spawn(2) if not isinstance(
            seed, np.random.SeedSequence) else seed.spawn(2)
        self.rng = np.random.default_rng(own)
        self.search = BatchedSearch(game, search_config, settings.num_games,
                                    seed=int(search.generate_state(1)[0]))
        self.logs = [self._new_log() for _ in range(settings.num_games)]
        self.states = self._new_games(np.arange(settings.num_games))
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
        states = game.initial_states(len(rows))
        if s.random_opening_fraction <= 0 or s.random_opening_max_moves <= 0:
            return states
        opened = self.rng.random(len(rows)) < s.random_opening_fraction
        target = np.where(opened, self.rng.integers(1, s.random_opening_max_moves + 1, len(rows)), 0)
        openings = [self.logs[b].opening for b in rows]
        played = np.zeros(len(rows), np.int64)
        redraws_left = OPENING_REDRAWS_PER_GAME * len(rows)
        while True:
            going = np.flatnonzero(played < target)
            if going.size == 0:
                return states
            actions = random_legal_actions(game.legal_mask(states[going]), self.rng)
            states[going] = game.step(states[going], actions)
            played[going] += 1
            for i, b in enumerate(going):
                openings[b].append(int(actions[i]))
            over = going[game.terminal(states[going])]
            if over.size:       # the opening ended the game: draw that opening again
                redraws_left -= over.size
                if redraws_left < 0:
                    raise RuntimeError(
                        f"random openings of up to {s.random_opening_max_moves} moves keep "
                        f"ending {game.spec.name} games: lower selfplay.random_opening_max_moves")
                states[over] = game.initial_states(over.size)
                played[over] = 0
                for b in over:
                    openings[b].clear()

    def play_move(self, evaluator: Evaluator) -> list[FinishedGame]:
        """One search for every row, one move in every game. Returns the games that ended."""
        game, s = self.game, self.settings
        out = self.search.run(self.states, evaluator, add_noise=s.add_noise,
                              temperature=s.temperature)
        actions = out.actions.astype(np.int64)
        if self.search_config.algorithm == "puct":
            # Sampled (temperature 1) early in the game, most visited afterwards.
            late = game.move_number(self.states) >= s.temperature_moves
            actions[late] = np.argmax(out.visit_counts[late], axis=1)

        to_play = game.to_play(self.states)
        for b, log in enumerate(self.logs):
            log.states.append(self.states[b].copy())
            log.policies.append(out.policy_target[b].copy())
            log.actions.append(int(actions[b]))
            log.to_play.append(int(to_play[b]))
            log.root_values.append(float(out.root_value[b]))

        resigning = self._resignations(out.root_value, to_play)
        self.states = game.step(self.states, actions)
        self.search.advance(actions)
        by_rules = game.terminal(self.states)
        ended = by_rules | (resigning >= 0)
        if s.max_moves is not None:
            # Adjudicated draws: result() is 0 for a non-terminal state.
            ended |= game.move_number(self.states) >= s.max_moves

        finished = []
        if ended.any():
            rows = np.flatnonzero(ended)
            results = game.result(self.states)  # side to move's view after the move
            final_ownership = final_to_play = None
            if self.has_ownership:
                # [len(rows), H, W] from the side to move of each final position
                final_ownership = np.asarray(game.ownership(self.states[rows]), np.int8)
                final_to_play = game.to_play(self.states[rows])
            for i, b in enumerate(rows):
                ownership = None
                if final_ownership is not None:
                    exact = bool(by_rules[b]) and resigning[b] < 0
                    ownership = (final_ownership[i], int(final_to_play[i]), exact)
                finished.append(self._finish(b, results[b], int(resigning[b]), ownership))
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

    def _finish(self, b: int, terminal_result: float, resigned_player: int,
                final_ownership: tuple[np.ndarray, int, bool] | None = None) -> FinishedGame:
        """final_ownership: (ownership [H, W] of the final state from its side to move, that
        side to move, whether the game ended by the rules), or None."""
        log = self.logs[b]
        to_play = np.asarray(log.to_play, np.int8)
        if resigned_player >= 0:
            first_player_result = -1.0 if resigned_player == 0 else 1.0
        else:
            # terminal_result is from the side to move in the final state.
            final_to_play = 1 - to_play[-1]
            first_player_result = float(terminal_result if final_to_play == 0 else -terminal_result)
        values = np.where(to_play == 0, first_player_result, -first_player_result).astype(np.float32)
        w = self.settings.value_target_root_weight
        if w > 0:
            values = ((1.0 - w) * values + w * np.asarray(log.root_values, np.float32)).astype(
                np.float32)
        false_resignation = None
        if log.would_resign_player >= 0:
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
        return FinishedGame(
            states=np.stack(log.states),
            policy_targets=np.stack(log.policies).astype(np.float32),
            value_targets=values,
            actions=np.asarray(log.actions, np.int32),
            result_first_player=first_player_result,
            resigned=resigned_player >= 0,
            false_resignation=false_resignation,
            ownership_targets=ownership_targets,
            ownership_weight=ownership_weight,
            opening=np.asarray(log.opening, np.int32),
        )
