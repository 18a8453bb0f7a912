"""The chess state row: a python-chess position packed into int64 columns, with the history the
rules (repetitions) and the network (past positions) need.

Row layout (int64 [STATE_SIZE]; bitboards are python-chess's, bit s = square s, a1 = 0 .. h8 =
63, stored as the signed int64 with the same bits):
    0..7     BOARD: pawns, knights, bishops, rooks, queens, kings, white pieces, black pieces
    TURN     0 white to move, 1 black
    CASTLING python-chess's castling_rights (a bitboard of the rooks that may still castle)
    EP       the en passant square after a double pawn push, -1 if none
    HALFMOVE the no-progress (fifty-move) clock, in plies
    FULLMOVE the move number of the FEN
    STATUS   ONGOING, or why the game is over (CHECKMATE, STALEMATE, INSUFFICIENT, FIFTY_MOVES,
             THREEFOLD)
    REPS     how many times the current position occurred before in this game (0, 1, 2)
    KEYS + c for c in 0..100: the 64-bit key of the position whose no-progress clock was c (every
             position since the last capture or pawn move: only those can repeat); slots above
             HALFMOVE are stale, 0 = unknown (a game set up from a FEN)
    HISTORY + 9 * t + (0..7 BOARD, 8 REPS), t = 0..HISTORY_STEPS-1: the position t + 1 plies ago
             and its REPS, all 0 before the game's (or the FEN's) first position

Two positions are the same for repetitions when python-chess's transposition key is: pieces, side
to move, castling rights and an en passant capture that is actually legal (FIDE 9.2.3).
"""
from __future__ import annotations

import chess
import numpy as np

BOARD = 0                       # 8 bitboards
TURN, CASTLING, EP, HALFMOVE, FULLMOVE, STATUS, REPS = range(8, 15)
KEYS = 15
FIFTY_MOVE_PLIES = 100          # the no-progress clock that ends the game (draw)
HISTORY = KEYS + FIFTY_MOVE_PLIES + 1
HISTORY_STEPS = 7               # past positions kept: with the current one, AlphaZero's 8
HISTORY_WIDTH = 9
STATE_SIZE = HISTORY + HISTORY_STEPS * HISTORY_WIDTH

ONGOING, CHECKMATE, STALEMATE, INSUFFICIENT, FIFTY_MOVES, THREEFOLD = range(6)
STATUS_NAMES = {CHECKMATE: "checkmate", STALEMATE: "stalemate",
                INSUFFICIENT: "insufficient material", FIFTY_MOVES: "fifty-move rule",
                THREEFOLD: "threefold repetition"}

_MASK64 = (1 << 64) - 1
_SIGN = 1 << 63


def signed(value: int) -> int:
    """A 64-bit pattern as the int64 that holds it."""
    return value - (1 << 64) if value & _SIGN else value


def board_fields(board: chess.Board) -> list[int]:
    """The 8 BOARD bitboards of a position, as int64 values."""
    return [signed(board.pawns), signed(board.knights), signed(board.bishops),
            signed(board.rooks), signed(board.queens), signed(board.kings),
            signed(board.occupied_co[chess.WHITE]), signed(board.occupied_co[chess.BLACK])]


def position_key(board: chess.Board) -> int:
    """A 64-bit key (int64, never 0 in practice) of what makes positions equal for repetitions.
    Deterministic across processes and Python versions (a multiply-xorshift mix, not hash())."""
    ep = board.ep_square if board.ep_square is not None and board.has_legal_en_passant() else 64
    h = 0
    for value in (board.pawns, board.knights, board.bishops, board.rooks, board.queens,
                  board.kings, board.occupied_co[chess.WHITE], board.occupied_co[chess.BLACK],
                  board.clean_castling_rights(), ep, int(board.turn)):
        h = ((h ^ value) * 0x9E3779B97F4A7C15) & _MASK64
        h ^= h >> 29
    return signed(h) or 1


def board_of(row: np.ndarray) -> chess.Board:
    """The position of one state row, as a python-chess Board without a move stack."""
    return board_from_fields(row[:KEYS].tolist())


def board_from_fields(values: list[int]) -> chess.Board:
    """The position of a row's first KEYS columns, given as Python ints (`row[:KEYS].tolist()`;
    a batch's at once: `states[:, :KEYS].tolist()`), as a Board without a move stack."""
    board = chess.Board(None)
    (board.pawns, board.knights, board.bishops, board.rooks, board.queens, board.kings) = (
        v & _MASK64 for v in values[:6])
    white, black = values[6] & _MASK64, values[7] & _MASK64
    board.occupied_co[chess.WHITE], board.occupied_co[chess.BLACK] = white, black
    board.occupied = white | black
    board.turn = values[TURN] == 0
    board.castling_rights = values[CASTLING] & _MASK64
    board.ep_square = None if values[EP] < 0 else values[EP]
    board.halfmove_clock = values[HALFMOVE]
    board.fullmove_number = values[FULLMOVE]
    return board


def game_status(board: chess.Board, has_moves: bool, reps: int,
                automatic_draws: bool = True) -> int:
    """Why the game is over in `board` (ONGOING if it is not): checkmate and stalemate first (a
    mating move that also reaches the fifty-move limit mates), then insufficient material, the
    fifty-move rule and the third occurrence of a position, all applied automatically; without
    `automatic_draws` only checkmate and stalemate end the game (perft's convention)."""
    if not has_moves:
        return CHECKMATE if board.is_check() else STALEMATE
    if not automatic_draws:
        return ONGOING
    if board.is_insufficient_material():
        return INSUFFICIENT
    if board.halfmove_clock >= FIFTY_MOVE_PLIES:
        return FIFTY_MOVES
    if reps >= 2:
        return THREEFOLD
    return ONGOING


_KEY_SLOTS = np.arange(FIFTY_MOVE_PLIES + 1)      # the KEYS columns' no-progress clocks


def write_positions(out: np.ndarray, boards: list[chess.Board], has_moves: list[bool],
                    previous: np.ndarray | None, automatic_draws: bool = True) -> None:
    """Fills the rows `out` [B, STATE_SIZE] with `boards` [B], each reached by one move from the
    row `previous` [B, STATE_SIZE] beside it (None: first positions, with no history);
    `automatic_draws` as in game_status. The keys and history columns move as whole batches."""
    b = len(boards)
    if b == 0:
        return
    keys = np.array([position_key(board) for board in boards], dtype=np.int64)      # [B]
    clocks = np.array([board.halfmove_clock for board in boards], dtype=np.int64)   # [B]
    np.minimum(clocks, FIFTY_MOVE_PLIES, out=clocks)
    if previous is None:
        out[:, KEYS:] = 0
        reps = np.zeros(b, dtype=np.int64)
    else:
        since = _KEY_SLOTS < clocks[:, None]      # [B, 101]: every position since the last reset
        old_keys = previous[:, KEYS:HISTORY]
        reps = np.count_nonzero(since & (old_keys == keys[:, None]), axis=1)
        np.multiply(old_keys, since, out=out[:, KEYS:HISTORY])        # stale slots become 0
        # History: the previous position becomes t = 0, and every older one moves back a step.
        out[:, HISTORY:HISTORY + 8] = previous[:, BOARD:BOARD + 8]
        out[:, HISTORY + 8] = previous[:, REPS]
        out[:, HISTORY + HISTORY_WIDTH:] = previous[:, HISTORY:STATE_SIZE - HISTORY_WIDTH]
    out[np.arange(b), KEYS + clocks] = keys
    out[:, :KEYS] = [
        board_fields(board) + [
            0 if board.turn else 1, signed(board.castling_rights),
            -1 if board.ep_square is None else board.ep_square, board.halfmove_clock,
            board.fullmove_number, game_status(board, moves, r, automatic_draws), r]
        for board, moves, r in zip(boards, has_moves, reps.tolist())]
