"""The GTP clock (`time_settings`, `time_left`): both players' time, and the seconds the engine
gives its next move.

Canadian byo yomi, as GTP describes it. The budget of a move: in byo yomi, the period's time left
divided by the stones left; in main time, the main time left divided by the moves we still expect
to play (EXPECTED_GAME_PLIES minus the plies played, halved, at least MIN_MOVES_LEFT), plus one
byo-yomi stone's share if there is byo yomi. Of that we use TIME_SAFETY and keep TIME_LAG seconds
for the controller's overhead. Without time settings, or with byo_yomi_time > 0 and
byo_yomi_stones == 0 ("no time limit", as the spec says), there is no budget. Between `time_left`
reports the engine keeps its own clock (`spend`).
"""
from __future__ import annotations

from dataclasses import dataclass

EXPECTED_GAME_PLIES = 100        # a 9x9 game lasts about this many plies
MIN_MOVES_LEFT = 10              # never plan for fewer of our moves than this in main time
TIME_SAFETY = 0.8                # share of the computed budget that we spend
TIME_LAG = 0.05                  # seconds kept for the controller and the pipes


@dataclass(frozen=True)
class TimeSettings:
    main_time: float
    byo_yomi_time: float
    byo_yomi_stones: int

    @property
    def unlimited(self) -> bool:
        return self.byo_yomi_time > 0 and self.byo_yomi_stones == 0


@dataclass(frozen=True)
class Clock:
    left: float       # seconds: main time left (stones == 0) or left in this byo-yomi period
    stones: int       # 0 in main time, else stones still to play in this byo-yomi period


def move_budget(settings: TimeSettings | None, clock: Clock, plies_played: int) -> float | None:
    """Seconds to spend on the next move (None: no time limit). See the module docstring."""
    if settings is None or settings.unlimited:
        return None
    if clock.stones > 0:
        budget = clock.left / clock.stones
    else:
        moves_left = max(MIN_MOVES_LEFT, (EXPECTED_GAME_PLIES - plies_played + 1) // 2)
        budget = clock.left / moves_left
        if settings.byo_yomi_time > 0 and settings.byo_yomi_stones > 0:
            budget += settings.byo_yomi_time / settings.byo_yomi_stones
    return max(0.0, TIME_SAFETY * budget - TIME_LAG)


def spend(settings: TimeSettings, clock: Clock, seconds: float) -> Clock:
    """A clock after a move that took `seconds` (our own bookkeeping between `time_left`s)."""
    left, stones = clock.left - seconds, clock.stones
    if stones > 0:
        stones -= 1
        if stones == 0:                      # period survived: a fresh one
            return Clock(settings.byo_yomi_time, settings.byo_yomi_stones)
        return Clock(max(0.0, left), stones)
    if left <= 0 and settings.byo_yomi_stones > 0:
        return Clock(settings.byo_yomi_time, settings.byo_yomi_stones)
    return Clock(max(0.0, left), 0)


class GameClock:
    """Both players' clocks (index = colour, 0 Black) under one TimeSettings (None: no limit)."""

    def __init__(self):
        self.settings: TimeSettings | None = None
        self.clocks = [Clock(0.0, 0), Clock(0.0, 0)]

    def _fresh(self) -> Clock:
        ts = self.settings
        if ts is None:
            return Clock(0.0, 0)
        if ts.main_time <= 0 and ts.byo_yomi_stones > 0:
            return Clock(ts.byo_yomi_time, ts.byo_yomi_stones)
        return Clock(ts.main_time, 0)

    def restart(self) -> None:
        """Both clocks full again (a new game)."""
        self.clocks = [self._fresh(), self._fresh()]

    def set(self, settings: TimeSettings) -> None:
        """`time_settings`: new settings, both clocks full. ValueError for a negative value."""
        if settings.main_time < 0 or settings.byo_yomi_time < 0 or settings.byo_yomi_stones < 0:
            raise ValueError(f"time settings must not be negative: {settings}")
        self.settings = settings
        self.restart()

    def left(self, colour: int, seconds: float, stones: int) -> None:
        """`time_left`: the controller's word on one clock. Without settings, the clock is taken
        as absolute time."""
        if stones < 0:
            raise ValueError(f"stones must not be negative, got {stones}")
        if self.settings is None:
            self.settings = TimeSettings(seconds, 0.0, 0)
        self.clocks[colour] = Clock(max(0.0, seconds), stones)

    def budget(self, colour: int, plies_played: int) -> float | None:
        """Seconds for `colour`'s next move (None: no limit)."""
        return move_budget(self.settings, self.clocks[colour], plies_played)

    def spend(self, colour: int, seconds: float) -> None:
        """`colour` took `seconds` for a move."""
        if self.settings is not None and not self.settings.unlimited:
            self.clocks[colour] = spend(self.settings, self.clocks[colour], seconds)
