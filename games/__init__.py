"""Game registry: `make("connect4")` returns a `Game` (see protocol.py). A new game is one folder
plus one entry in `_REGISTRY`.

Everything a generic module needs to know about one game hangs off its entry, so that no module
outside games/ names a game:
  * `factory`: the `Game` class (or function) and its rule options;
  * `record_format`: how its games are stored (azero/records.py `RecordFormat`); none means JSON
    lines with the moves in the game's notation;
  * `solved_positions`: a perfect-play set, on which the loop measures every newly promoted
    network (azero/bench/solver.py) and `azero bench solver` any player; beside it, or instead
    (Go), the anchors a config names (gate.anchors: GNU Go), which any game can have;
  * `protocols`: the engine protocols it speaks (`azero gtp` serves the games speaking "gtp");
  * `sgf`: the module reading and writing its SGF (parse_sgf, SgfError, format_result, ...), for
    GTP's loadsgf and referee results;
  * `openspiel`: its name in OpenSpiel, the peer `azero bench rules` measures beside it;
  * `uci_client`: the client library through which the arena plays external UCI engines
    (`stockfish:...`, `uci:COMMAND LINE`);
  * `greedy_scores`: each move's immediate score, which the `greedy` player maximises.
Hooks are "module:attribute" (or "module") strings, imported on first use: importing one game never compiles
another, and the registry imports nothing of azero.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from .protocol import Game, GameSpec, IllegalActionError


@dataclass(frozen=True)
class GameEntry:
    factory: str                           # "module:callable" -> Game, called with rule options
    record_format: str | None = None       # "module:attribute" -> RecordFormat
    # "module:callable" (game, path or None: the shipped set) -> (positions, states [N, S])
    solved_positions: str | None = None
    protocols: tuple[str, ...] = ()        # engine protocols it speaks: "gtp", "uci"
    openspiel: str | None = None           # the same game in OpenSpiel (the rules bench's peer)
    sgf: str | None = None                 # "module": its SGF reader and writer
    # "module": the client library for external engines of its protocol (players/uci_player.py)
    uci_client: str | None = None
    # "module:callable" (game, states [R, S]) -> float [R, A]: each move's 1-ply score, for
    # the greedy player (players/greedy_player.py)
    greedy_scores: str | None = None
    # An optional extra the game needs: (the module it imports, the extra that installs it,
    # what it is), e.g. ("chess", "chess", "python-chess, GPL-3.0"); make() turns a missing
    # module into GameUnavailableError with the install command.
    requires: tuple[str, str, str] | None = None


# Insertion order matters: the first entry is the commands' default game (`default_name`).
_REGISTRY: dict[str, GameEntry] = {
    "connect4": GameEntry(
        factory="azero.games.connect4.game:ConnectFour",
        record_format="azero.games.connect4.records:RECORD_FORMAT",
        solved_positions="azero.games.connect4.solver:solved_positions",
        openspiel="connect_four"),
    "go9": GameEntry(
        factory="azero.games.go9.game:Go9",
        record_format="azero.games.go9.records:SGF_FORMAT",
        protocols=("gtp",),
        sgf="azero.games.go9.records",
        openspiel="go(board_size=9,komi=7.5)"),
    "chess": GameEntry(
        factory="azero.games.chess.game:Chess",
        record_format="azero.games.chess.records:PGN_FORMAT",
        protocols=("uci",),
        uci_client="chess.engine",
        greedy_scores="azero.games.chess.greedy:move_scores",
        openspiel="chess",
        requires=("chess", "chess", "python-chess, GPL-3.0")),
}


class GameUnavailableError(RuntimeError):
    """A registered game whose optional extra is not installed; the message is the one line to
    show: what is missing and the command that installs it."""


def names() -> list[str]:
    return sorted(_REGISTRY)


def default_name() -> str:
    """The game a command plays when none is named."""
    return next(iter(_REGISTRY))


def entry(name: str) -> GameEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown game {name!r}; known games: {', '.join(names())}") from None


def games_speaking(protocol: str) -> list[str]:
    """The games that speak an engine protocol ("gtp"), sorted; [] for a protocol none speaks."""
    return [name for name in names() if protocol in _REGISTRY[name].protocols]


def hook(name: str, which: str) -> Any:
    """The object a game's hook field (`record_format`, `solved_positions`, `sgf`) names,
    imported on first use; None where the game has no such hook. ValueError for an unknown game."""
    target = getattr(entry(name), which)
    return None if target is None else _load(target)


def _load(target: str) -> Any:
    """"module:attribute" -> the attribute; "module" -> the module."""
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def make(name: str, **options) -> Game:
    """The game registered as `name`, built with its rule options (Go: komi=7.5). An option the
    game does not have raises TypeError; a bad value, ValueError."""
    game_entry = entry(name)
    try:
        factory: Callable[..., Game] = _load(game_entry.factory)
    except ModuleNotFoundError as e:
        if game_entry.requires is None or e.name != game_entry.requires[0]:
            raise
        module, extra, what = game_entry.requires
        raise GameUnavailableError(
            f"{name} needs the optional extra [{extra}] ({what}): "
            f"pip install -e \".[{extra}]\" in a checkout, or pip install \"azero[{extra}]\"") from None
    return factory(**options)


__all__ = ["Game", "GameEntry", "GameUnavailableError", "GameSpec", "IllegalActionError", "default_name", "entry", "games_speaking", "hook", "make", "names"]
