"""Game registry: `make("connect4")` returns a `Game` (see protocol.py). A new game is one folder
plus one line in `_REGISTRY`."""
from __future__ import annotations

import importlib

from .protocol import Game, GameSpec, IllegalActionError

# name -> "module:factory", imported lazily so that importing one game never compiles another.
_REGISTRY: dict[str, str] = {
    "connect4": "azero.games.connect4.game:ConnectFour",
    "go9": "azero.games.go9.game:Go9",
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def make(name: str, **options) -> Game:
    """The game registered as `name`, built with its rule options (Go: komi=7.5). An option the
    game does not have raises TypeError; a bad value, ValueError."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown game {name!r}; known games: {', '.join(names())}") from None
    module_name, factory = target.split(":")
    return getattr(importlib.import_module(module_name), factory)(**options)


__all__ = ["Game", "GameSpec", "IllegalActionError", "make", "names"]
