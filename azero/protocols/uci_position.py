"""The UCI engine's `position startpos | fen FEN [moves M1 M2 ...]`.

A position is its base (the start position or a FEN, as sent) and the moves played from it, each
stepped through the game's rules from the base (game.from_fen, game.parse_action, game.step),
so the state holds the game's own repetition history. A GUI sends the whole game before each
`go`: when the new command repeats the current base and moves and adds some, only those are
played (and the engine's search tree follows them). Moves must be UCI long algebraic (e2e4,
e7e8q, castling as the king's move e1g1). Moves after a position our rules end by a draw
(threefold, fifty moves, dead material; a GUI may play on) are followed (`played_on`); after a
checkmate or stalemate they are illegal. A command that cannot be followed raises
PositionError naming the move or the FEN and why, and the engine keeps its previous position.
"""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import numpy as np

from .uci_io import shown

UCI_MOVE = re.compile(r"[a-h][1-8][a-h][1-8][qrbn]?")


@dataclass(frozen=True)
class Position:
    """A position as `position` gave it: the base and the moves played from it."""
    base: str                    # "startpos" or the FEN as sent
    moves: tuple[str, ...]       # UCI moves from the base, lower case
    actions: tuple[int, ...]     # the same moves as the game's actions
    state: np.ndarray            # [S] the position after them


class PositionError(ValueError):
    """A `position` command that cannot be followed (the reason)."""


# game -> the same game without automatic draws (its perft_variant), built once per game
_RELAXED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def played_on(game, state: np.ndarray) -> tuple[object, np.ndarray]:
    """(rules, state) to play on from `state` [S], a position our rules have ended: a GUI may
    play on after a draw that our rules apply at once (threefold repetition and the fifty-move
    rule are claims in FIDE's rules: lichess-bot, analysis boards). The game without automatic
    draws (the game's perft_variant) takes the position, from its FEN (so without the
    repetition history before it): a live state, which the game's own step and search take
    too (its moves end by the usual rules). A checkmate or stalemate, or a game without that
    variant, gives (game, state) unchanged."""
    relaxed = _RELAXED.get(game)
    if relaxed is None:
        variant = getattr(game, "perft_variant", None)
        if variant is None:
            return game, state
        relaxed = _RELAXED[game] = variant()
    fresh = np.asarray(relaxed.from_fen(game.fen(state)))
    return (relaxed, fresh) if not relaxed.terminal(fresh[None])[0] else (game, state)


def start_position(game) -> Position:
    return Position("startpos", (), (), game.initial_states(1)[0])


def parse_position(game, words: list[str], current: Position) -> tuple[Position, bool]:
    """The position the words of a `position` command set, and whether it extends `current`
    (the same base, the current moves first: only the new moves are played). PositionError
    with the reason for anything that cannot be followed."""
    head = words[0].lower() if words else ""
    if head == "startpos":
        base, rest = "startpos", words[1:]
    elif head == "fen":
        at = next((i for i, w in enumerate(words) if w.lower() == "moves"), len(words))
        base, rest = " ".join(words[1:at]), words[at:]
    else:
        raise PositionError("write position startpos | fen FEN, then moves M1 M2 ...")
    if rest and rest[0].lower() != "moves":
        raise PositionError(f"unexpected {shown(rest[0])!r} (moves come after 'moves')")
    moves = tuple(w.lower() for w in rest[1:])
    extends = current.base == base and current.moves == moves[:len(current.moves)]
    if extends:
        state, actions = current.state, list(current.actions)
    else:
        actions = []
        if base == "startpos":
            state = start_position(game).state
        else:
            try:
                state = np.asarray(game.from_fen(base))
            except ValueError as e:
                raise PositionError(f"bad FEN {shown(base)!r}: {shown(str(e))}") from None
    for i in range(len(actions), len(moves)):
        move = moves[i]
        if not UCI_MOVE.fullmatch(move):
            raise PositionError(f"move {i + 1}, {shown(move)!r}, is not a UCI move "
                                f"(e2e4, e7e8q)")
        try:
            rules = game
            if game.terminal(state[None])[0]:
                rules, state = played_on(game, state)
            action = rules.parse_action(state, move)
            state = rules.step(state[None], np.array([action], dtype=np.int64))[0]
        except ValueError as e:             # IllegalActionError among them
            raise PositionError(f"move {i + 1}, {move}, is illegal in {game.fen(state)}: "
                                f"{shown(str(e))}") from None
        actions.append(action)
    return Position(base, moves, tuple(actions), state), extends
