"""AlphaZero's 8x8x73 move encoding (4672 actions), in PettingZoo's and pgx's layout.

A move is seen from the side to move: for black, squares are mirrored rank-wise (a square s becomes
s ^ 56), so every player's pawns move "north". Then

    action = (file * 8 + rank) * 73 + plane          (file, rank of the from-square, 0..7)

    planes  0..55  queen-like moves: plane = (distance - 1) * 8 + direction, distance 1..7, and
                   direction counts (dx, dy) in {-1, 0, 1}^2 minus (0, 0) in lexicographic order:
                   0 (-1,-1) 1 (-1,0) 2 (-1,1) 3 (0,-1) 4 (0,1) 5 (1,-1) 6 (1,0) 7 (1,1);
                   castling is the king's two-square move (e1g1), queen promotions are plain pawn
                   moves onto the last rank
    planes 56..63  knight moves: (dx, dy) with |dx| + |dy| = 3, lexicographic from (-2, -1)
    planes 64..72  underpromotions: 64 + 3 * (dx + 1) + piece, piece 0 knight, 1 bishop, 2 rook,
                   dx = -1, 0, 1 (capture left, push, capture right)

Pure integer tables, built once at import; nothing here imports python-chess (its piece codes are
plain ints: knight 2, bishop 3, rook 4, queen 5).
"""
from __future__ import annotations

import numpy as np

NUM_PLANES = 73
NUM_ACTIONS = 64 * NUM_PLANES           # 4672
KNIGHT, BISHOP, ROOK, QUEEN = 2, 3, 4, 5  # python-chess piece types
UNDERPROMOTIONS = (KNIGHT, BISHOP, ROOK)

_QUEEN_DIRECTIONS = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1) if (dx, dy) != (0, 0)]
_KNIGHT_JUMPS = [(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3) if abs(dx) + abs(dy) == 3]


def _build_tables():
    """ACTION_OF[from * 64 + to]: the action of a non-underpromoting move between two squares
    of the mover's view (-1 where no queen or knight move joins them); and per action its
    from-square, to-square (-1 if it leaves the board) and underpromotion piece (0 if none)."""
    action_of = np.full(64 * 64, -1, dtype=np.int64)
    frm = np.zeros(NUM_ACTIONS, dtype=np.int64)
    to = np.full(NUM_ACTIONS, -1, dtype=np.int64)
    under = np.zeros(NUM_ACTIONS, dtype=np.int64)
    for square in range(64):
        file, rank = square % 8, square // 8
        base = (file * 8 + rank) * NUM_PLANES
        moves = [((distance - 1) * 8 + d, dx * distance, dy * distance)
                 for distance in range(1, 8) for d, (dx, dy) in enumerate(_QUEEN_DIRECTIONS)]
        moves += [(56 + k, dx, dy) for k, (dx, dy) in enumerate(_KNIGHT_JUMPS)]
        moves += [(64 + 3 * (dx + 1) + p, dx, 1) for dx in (-1, 0, 1) for p in range(3)]
        for plane, dx, dy in moves:
            action = base + plane
            frm[action] = square
            f, r = file + dx, rank + dy
            if 0 <= f < 8 and 0 <= r < 8:
                to[action] = r * 8 + f
                if plane < 64:
                    action_of[square * 64 + to[action]] = action
                else:
                    under[action] = UNDERPROMOTIONS[(plane - 64) % 3]
    for table in (action_of, frm, to, under):
        table.flags.writeable = False
    return action_of, frm, to, under


ACTION_OF, ACTION_FROM, ACTION_TO, ACTION_UNDERPROMOTION = _build_tables()
# Python lists of the same tables: per-move lookups in the rules' Python loops index these
# (a list index is several times faster than a NumPy scalar index).
_ACTION_OF = ACTION_OF.tolist()
_FROM, _TO, _UNDER = ACTION_FROM.tolist(), ACTION_TO.tolist(), ACTION_UNDERPROMOTION.tolist()


def _build_action_planes() -> np.ndarray:
    """float32 [4672, 3, 8, 8]: each action on the mover's board as the observation draws it
    (square s at row s // 8, column s % 8): plane 0 its from-square, plane 1 its to-square
    (none for an action that leaves the board), plane 2 the underpromotion piece on the
    to-square (knight 1/3, bishop 2/3, rook 1; queen promotions are plain moves)."""
    planes = np.zeros((NUM_ACTIONS, 3, 64), dtype=np.float32)
    actions = np.arange(NUM_ACTIONS)
    planes[actions, 0, ACTION_FROM] = 1.0
    on_board = ACTION_TO >= 0
    planes[actions[on_board], 1, ACTION_TO[on_board]] = 1.0
    under = on_board & (ACTION_UNDERPROMOTION > 0)
    planes[actions[under], 2, ACTION_TO[under]] = (ACTION_UNDERPROMOTION[under] - 1) / 3.0
    planes = planes.reshape(NUM_ACTIONS, 3, 8, 8)
    planes.flags.writeable = False
    return planes


ACTION_PLANES = _build_action_planes()


def encode(from_square: int, to_square: int, promotion: int | None, black: bool) -> int:
    """A move in board squares (a1 = 0 .. h8 = 63, python-chess's numbering) -> action; -1 if
    no action encodes it (not a chess move shape)."""
    if black:
        from_square ^= 56
        to_square ^= 56
    if promotion in UNDERPROMOTIONS:
        dx = (to_square & 7) - (from_square & 7)
        if to_square - from_square != 8 + dx or not -1 <= dx <= 1:
            return -1
        file, rank = from_square & 7, from_square >> 3
        return (file * 8 + rank) * NUM_PLANES + 64 + 3 * (dx + 1) + UNDERPROMOTIONS.index(promotion)
    return _ACTION_OF[from_square * 64 + to_square]


def decode(action: int, black: bool) -> tuple[int, int, int]:
    """action -> (from_square, to_square, underpromotion piece or 0) in board squares; to_square
    is -1 for an action that leaves the board. Whether a move onto the last rank promotes to a
    queen depends on the piece, which the caller knows."""
    from_square, to_square, under = _FROM[action], _TO[action], _UNDER[action]
    if black:
        from_square ^= 56
        if to_square >= 0:
            to_square ^= 56
    return from_square, to_square, under
