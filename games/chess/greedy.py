"""Chess's move measure for the 1-ply greedy player (azero/players/greedy_player.py), the registry
hook `greedy_scores`: a mate in one scores MATE_SCORE; any other move, the material it wins at
once in pawns (the captured piece, en passant a pawn; a promotion adds the new piece less the
pawn). Quiet moves score 0, and the player breaks ties at random: it grabs the most valuable piece
it can, and never looks at the reply.
"""
from __future__ import annotations

import chess
import numpy as np

from . import encoding
from .encoding import NUM_ACTIONS

PIECE_VALUES = {chess.PAWN: 1.0, chess.KNIGHT: 3.0, chess.BISHOP: 3.0, chess.ROOK: 5.0,
                chess.QUEEN: 9.0, chess.KING: 0.0}
MATE_SCORE = 1000.0                   # above any material a move can win (at most 9 + 8)


def move_score(board: chess.Board, move: chess.Move) -> float:
    """The score of one legal move of `board` (see the module docstring). `board` is unchanged."""
    if board.is_en_passant(move):
        gain = PIECE_VALUES[chess.PAWN]
    else:
        captured = board.piece_type_at(move.to_square) if not board.is_castling(move) else None
        gain = PIECE_VALUES[captured] if captured else 0.0
    if move.promotion:
        gain += PIECE_VALUES[move.promotion] - PIECE_VALUES[chess.PAWN]
    board.push(move)
    try:
        return MATE_SCORE if board.is_checkmate() else gain
    finally:
        board.pop()


def move_scores(game, states: np.ndarray) -> np.ndarray:
    """states [R, S] (live positions) -> float32 [R, 4672]: each legal move's score at its
    action, 0 elsewhere (the player reads legal actions only)."""
    out = np.zeros((len(states), NUM_ACTIONS), dtype=np.float32)
    for r, state in enumerate(states):
        board = game.board_of(state)
        black = board.turn == chess.BLACK
        for move in board.generate_legal_moves():
            action = encoding.encode(move.from_square, move.to_square, move.promotion, black)
            out[r, action] = move_score(board, move)
    return out
