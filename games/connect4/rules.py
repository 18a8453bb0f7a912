"""Connect Four rules: pure numba kernels over bitboard state rows. No strings, no Python objects.

Board: 7 columns x 6 rows; an action is a column 0..6. The first player (player 0) moves first.

Bitboard layout (John Tromp's / Pascal Pons's): cell (col, row) is bit `col * 7 + row`, with row 0
the BOTTOM row. Each column holds 6 playable bits plus one always-empty sentinel bit on top, so the
four-in-a-row shifts (1 vertical, 7 horizontal, 6 and 8 diagonal) never wrap between columns.

State row, int64 [STATE_SIZE]:
    OWN    stones of the side to move
    ALL    all stones (either side)
    PLY    plies played so far (= number of stones); the side to move is PLY % 2
    STATUS ONGOING, DRAW (board full), or LOSS: the previous mover connected four, so the side to
           move has lost. terminal() and result() read only this field: O(1).

Every kernel reads `states` and writes only to the output arrays it is given; none allocates.
Numba performance notes (numba 0.6x, measured): write conditions as explicit comparisons
(`(x & m) != 0`, `a < 0 or a >= 7`), not integer truthiness or chained comparisons, and do not use
`inline="always"` for the helpers (LLVM inlines them anyway): either made `step` ~8x slower.
Kernels that validate actions return the first offending row index, or -1 if all rows were legal,
and leave the raising (with a readable message) to the Python wrapper in game.py.
"""
from __future__ import annotations

import numpy as np
from numba import njit

COLUMNS = 7
ROWS = 6
NUM_CELLS = COLUMNS * ROWS          # 42, also the longest possible game
COLUMN_STRIDE = ROWS + 1            # 7 bits per column: 6 cells + the sentinel

OWN, ALL, PLY, STATUS = 0, 1, 2, 3
STATE_SIZE = 4

ONGOING, DRAW, LOSS = 0, 1, 2

# Lookup tables, built in NumPy at import (numba freezes global arrays as constants).
BOTTOM_BIT = np.array([1 << (c * COLUMN_STRIDE) for c in range(COLUMNS)], dtype=np.int64)  # [7]
TOP_BIT = np.array([1 << (c * COLUMN_STRIDE + ROWS - 1) for c in range(COLUMNS)], dtype=np.int64)
TOP_ALL = np.int64(TOP_BIT.sum())          # the top cell of every column


@njit(cache=True)
def connected_four(stones):
    """True if the bitboard `stones` holds four in a row in any direction."""
    m = stones & (stones >> 7)          # horizontal
    if (m & (m >> 14)) != 0:
        return True
    m = stones & (stones >> 6)          # diagonal: up-left to down-right
    if (m & (m >> 12)) != 0:
        return True
    m = stones & (stones >> 8)          # diagonal: down-left to up-right
    if (m & (m >> 16)) != 0:
        return True
    m = stones & (stones >> 1)          # vertical
    if (m & (m >> 2)) != 0:
        return True
    return False


@njit(cache=True)
def _legal_row(stones, status, out, i):
    """out[i, c] <- column c is playable (not full, game not over), written without branches."""
    free = ~stones & TOP_ALL
    if status != ONGOING:
        free = 0
    for c in range(COLUMNS):
        out[i, c] = ((free >> (c * COLUMN_STRIDE + ROWS - 1)) & 1) != 0


@njit(cache=True)
def _play(states, i, action, out):
    """out[i] <- the position after `action` in states[i]; returns the new STATUS, or -1 (and
    writes nothing) if the action is out of range, the column full or the game over. `out` may be
    `states`: every read happens before the first write."""
    stones = states[i, ALL]
    if (action < 0 or action >= COLUMNS or states[i, STATUS] != ONGOING
            or (stones & TOP_BIT[action]) != 0):
        return -1
    new_stones = stones | (stones + BOTTOM_BIT[action])
    mover = states[i, OWN] | (new_stones ^ stones)
    ply = states[i, PLY] + 1
    if connected_four(mover):
        status = LOSS
    elif ply == NUM_CELLS:
        status = DRAW
    else:
        status = ONGOING
    out[i, OWN] = mover ^ new_stones    # the opponent of the mover is the new side to move
    out[i, ALL] = new_stones
    out[i, PLY] = ply
    out[i, STATUS] = status
    return status


@njit(cache=True)
def step(states, actions, out):
    """states [B, S], actions [B] int64 -> out [B, S]. Returns the first row whose action is
    illegal (or whose game is over), else -1."""
    for i in range(states.shape[0]):
        if _play(states, i, actions[i], out) < 0:
            return i
    return -1


@njit(cache=True)
def step_with_info(states, actions, out, legal, terminal, result):
    """One pass of `step` that also fills, for the NEW states, legal [B, 7] bool, terminal [B] bool
    and result [B] float32 (side to move's view). Returns the first illegal row, else -1."""
    for i in range(states.shape[0]):
        status = _play(states, i, actions[i], out)
        if status < 0:
            return i
        terminal[i] = status != ONGOING
        result[i] = -1.0 if status == LOSS else 0.0
        _legal_row(out[i, ALL], status, legal, i)
    return -1


@njit(cache=True)
def legal_mask(states, out):
    """states [B, S] -> out [B, 7] bool: column not full and game not over."""
    for i in range(states.shape[0]):
        _legal_row(states[i, ALL], states[i, STATUS], out, i)


@njit(cache=True)
def terminal(states, out):
    """states [B, S] -> out [B] bool."""
    for i in range(states.shape[0]):
        out[i] = states[i, STATUS] != ONGOING


@njit(cache=True)
def result(states, out):
    """states [B, S] -> out [B] float32: -1 if the side to move has lost, else 0 (draw or not
    over). The side to move can never have won: the game ends on the winner's move."""
    for i in range(states.shape[0]):
        out[i] = -1.0 if states[i, STATUS] == LOSS else 0.0


@njit(cache=True)
def observation(states, out):
    """states [B, S] -> out [B, 3, 6, 7] float32, from the side to move's view, row 0 = TOP:
    channel 0 own stones, 1 opponent stones, 2 all ones if the side to move is the second player."""
    for i in range(states.shape[0]):
        own = states[i, OWN]
        opp = own ^ states[i, ALL]
        second = np.float32(states[i, PLY] & 1)
        for r in range(ROWS):
            for c in range(COLUMNS):
                bit = np.int64(1) << (c * COLUMN_STRIDE + (ROWS - 1 - r))
                out[i, 0, r, c] = 1.0 if own & bit else 0.0
                out[i, 1, r, c] = 1.0 if opp & bit else 0.0
                out[i, 2, r, c] = second


@njit(cache=True)
def mirror_bits(bits):
    """Left-right mirror of a bitboard: column c moves to column 6 - c."""
    mirrored = np.int64(0)
    for c in range(COLUMNS):
        column = (bits >> (c * COLUMN_STRIDE)) & ((1 << COLUMN_STRIDE) - 1)
        mirrored |= column << ((COLUMNS - 1 - c) * COLUMN_STRIDE)
    return mirrored


@njit(cache=True)
def mirror_states(states, out):
    """states [B, S] -> out [B, S] mirrored left-right."""
    for i in range(states.shape[0]):
        out[i, OWN] = mirror_bits(states[i, OWN])
        out[i, ALL] = mirror_bits(states[i, ALL])
        out[i, PLY] = states[i, PLY]
        out[i, STATUS] = states[i, STATUS]


@njit(cache=True)
def random_playouts(num_games, seed):
    """Reference loop for the benchmark: plays `num_games` uniformly random games one after the
    other straight on the bitboards (no batching, no API). Returns the number of moves played."""
    np.random.seed(seed)
    states = np.zeros((2, STATE_SIZE), dtype=np.int64)
    moves = 0
    for _ in range(num_games):
        states[0, :] = 0
        while states[0, STATUS] == ONGOING:
            free = ~states[0, ALL] & TOP_ALL
            count = 0
            for c in range(COLUMNS):
                count += (free >> (c * COLUMN_STRIDE + ROWS - 1)) & 1
            k = np.random.randint(count)
            for c in range(COLUMNS):
                if ((free >> (c * COLUMN_STRIDE + ROWS - 1)) & 1) != 0:
                    if k == 0:
                        _play(states, 0, c, states)
                        break
                    k -= 1
            moves += 1
    return moves
