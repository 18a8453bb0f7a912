"""Go 9x9 rules: pure numba kernels over int64 state rows. No strings, no Python objects.

Rules (Tromp-Taylor, as used by computer Go): area scoring (stones + empty regions that reach only
one colour), komi in the state (KOMI2 = 2 x komi, so 7.5 is representable), positional superko (no
stone move may recreate any earlier whole-board colouring; a pass is always legal), suicide illegal,
two consecutive passes end the game. The move cap (MAX_GAME_LENGTH plies by default, passes
included) does not end the game: a live state past it is truncated (games/kernel_game.py), and
play may go on as long as the superko history has room (below).

Points and actions: point p = row * 9 + col, row 0 = the TOP row as drawn (GTP row 9, SGF "a"),
col 0 = the left column (GTP "A"); action p plays there, action PASS = 81. Black (player 0) moves
first; the side to move is PLY % 2.

Board representation: a bitboard is two int64 words (lo, hi): point p is bit p of lo for p < 64,
bit p - 64 of hi otherwise (hi uses 17 bits). Neighbour sets are shifts with carries between the
words; a string is a flood fill inside one colour's stones.

Incremental structure: ATARI holds every stone whose string has exactly one liberty. With it the
legal moves are pure bitboard algebra (E empty, own / opp the mover's and the opponent's stones,
N(x) the neighbours of x):
    legal = E & (N(E) | N(opp & ATARI) | N(own & ~ATARI))      [then minus superko repeats]
(an empty neighbour; or it captures: an adjacent opponent string in atari has this point as its
only liberty; or it joins an own string that keeps a liberty). `step` recomputes ATARI only for
the strings whose liberties changed: the new stone's string, the opponent strings next to it, and
own strings next to captured stones.

Positional superko: for every stone move played, the history keeps the position before it as a
stone count (COUNTS, one byte per entry, 8 per word) and the low 32 bits of its Zobrist hash
(HASHES, two per word). The row width sets how many entries fit (`history_capacity`): the
default row holds MAX_GAME_LENGTH, a wider row more (`state_size_for`; kernels read the width from
`states.shape[1]`). Once the history is full only a pass is legal, so a state never forgets a
position it must refuse. Three facts keep the checks cheap:
  * a repeat has the stone count of the candidate position (now + 1 - captured stones), so scans
    look at the count bytes first, 8 at a time (SWAR), and at few hashes;
  * positions after the last capture are subsets of the current one, so no move can repeat them:
    scans stop at LAST_CAPTURE;
  * every key carries its own index (colour * 81 + point) in its low 8 bits, so all
    non-capturing candidates are checked in one pass over the history: entry H repeats after the
    stone (colour, p) iff H ^ HASH == KEY[colour, p] (on the stored 32 bits), and then the low 8
    bits of H ^ HASH name the move. Capturing candidates (few) compute their own hash.
A false "repeat" needs a 32-bit hash match between positions of equal stone count (24 random bits
for the one-pass check): about one move wrongly refused per 10^8 positions of random play, far
below anything the tests or training can see; real repeats are always found.

Symmetries and hashes: the eight symmetries permute the points (POINT_PERM). So that a transformed
state is exactly what stepping the transformed moves would have given, hashes are kept in a
reference frame: FRAME = f means the stored hashes are those of T_f^-1 applied to the boards, and
the key of a stone at point p is KEY[colour, T_f^-1(p)] (table FRAME_KEYS). transform_states(k)
permutes the boards and sets FRAME to k o f; the hashes stay as they are. Two rows that differ only
in FRAME (and hence hashes) describe the same game.

State row, int64 [STATE_SIZE = 153] by default; the size matters: search keeps one row per tree node, and
`step` copies the row (at B = 4096 the copy is a large part of a random move's cost):
    BLACK, WHITE   bitboards (2 words each) of the current position
    ATARI          bitboard (2 words): stones of strings with exactly one liberty
    HASH           Zobrist hash of the current position (reference frame)
    PLY            plies played (passes included); the side to move is PLY % 2
    PASSES         consecutive passes just played (0, 1; 2 ends the game)
    STATUS         ONGOING or OVER
    SCORE          when OVER: 2 x (black area - white area) - KOMI2 (black's view, doubled)
    KOMI2          2 x komi
    FRAME          symmetry frame of the hashes, 0..7
    NUM_HASHES     history entries used
    LAST_CAPTURE   history entries up to and including the position before the last capture
    CAPTURED       2 bitboards (Black, White; 2 words each): points where a stone of that colour
                   has been captured. A repeat puts a stone of the mover on a point where the
                   mover's stone was captured since, so only capturing candidates on CAPTURED
                   [mover] are hashed (about 1 in 6 of them in random games).
    PREV           NUM_PREV earlier boards, most recent first (the position 1, 2, ... plies ago;
                   empty before the game start), 3 words each: black lo, white lo,
                   black hi | white hi << 17
    COUNTS         history: stone counts, bytes (entry j in byte j % 8 of word j // 8); 0 unused
    HASHES         history: low 32 bits of the hashes (entry j in half j % 2 of word j // 2); the
                   default row's offset; a row of width W has them at hashes_offset(W)

Every kernel reads `states` and writes only to the output arrays it is given; none allocates.
play, legal_points and _write_mask are inlined into the batch loops (numba inline='always'): as
calls, each passed its arrays field by field on the stack and changed their reference counts
(atomic), for ~5% of step_with_info.
Kernels that validate actions return the first offending row index, or -1 if all were legal.
Numba notes (as in connect4/rules.py): explicit comparisons (`(x & m) != 0`), no integer
truthiness; words are int64, so right shifts are arithmetic and are masked where bit 63 may be set.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from llvmlite import ir
from numba.core import cgutils, types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic

SIZE = 9
NUM_POINTS = SIZE * SIZE          # 81
PASS = NUM_POINTS                 # action 81
NUM_ACTIONS = NUM_POINTS + 1      # 82
# The default move cap (a truncation, not an end) and superko history capacity: 2 x 81 + 18,
# twice the board plus room for ko fights; well beyond the length of real 9x9 games (60-120 plies).
MAX_GAME_LENGTH = 180
NUM_PREV = 7                      # earlier boards kept for the observation (8 positions in all)
DEFAULT_KOMI = 7.0

BLACK, WHITE, ATARI = 0, 2, 4     # 2 words each
HASH, PLY, PASSES, STATUS, SCORE, KOMI2, FRAME, NUM_HASHES, LAST_CAPTURE = range(6, 15)
CAPTURED = 15                     # 2 bitboards: points where a Black / a White stone was captured
PREV = 19
BOARD_WORDS = 3                                       # a packed earlier board
COUNTS = PREV + BOARD_WORDS * NUM_PREV                # 40
HASHES = COUNTS + (MAX_GAME_LENGTH + 7) // 8          # 63
STATE_SIZE = HASHES + (MAX_GAME_LENGTH + 1) // 2      # 153


def state_size_for(history: int) -> int:
    """Row width holding a superko history of at least `history` stone moves."""
    return COUNTS + (history + 7) // 8 + (history + 1) // 2


@njit(cache=True)
def hashes_offset(width):
    """HASHES of a row `width` words wide: the history takes 5 words per 8 entries (1 of counts,
    4 of hashes) plus a partial block, so the count words are (width - COUNTS + 4) // 5."""
    return COUNTS + (width - COUNTS + 4) // 5


@njit(cache=True)
def history_capacity(width):
    """History entries a row `width` words wide holds (two hashes per word; the count words
    always have room for them)."""
    return 2 * (width - hashes_offset(width))

ONGOING, OVER = 0, 1

# Observation planes, from the side to move's view. Eight positions of stones as in AlphaGo Zero;
# the legal plane makes ko and superko bans visible (the boards alone cannot show a ban from a
# long cycle); atari planes are free (ATARI) and liberty features help nets (KataGo); the pass
# plane tells that passing now ends the game; ones mark the edge under zero padding; komi is a
# plane because it is a per-game setting.
OBS_HISTORY = 0       # planes 2t, 2t+1: own / opponent stones t plies ago, t = 0..7
OBS_BLACK_TO_MOVE = 16
OBS_KOMI = 17         # komi for the side to move / 10 (+ for White, - for Black), every point
OBS_LEGAL = 18        # legal stone moves (superko applied)
OBS_OWN_ATARI = 19    # own stones whose string has one liberty
OBS_OPP_ATARI = 20
OBS_PASSED = 21       # ones if the previous ply was a pass (passing now would end the game)
OBS_ONES = 22         # ones: marks the board inside zero padding
NUM_PLANES = 23

# ---------------------------------------------------------------- tables (NumPy, at import)

_HI_BITS = NUM_POINTS - 64                       # 17
HI_MASK = (1 << _HI_BITS) - 1
LOW55 = (1 << 55) - 1
LOW63 = (1 << 63) - 1
KEY_INDEX_MASK = 255
LOW32 = (1 << 32) - 1
BYTE_ONES = 0x0101010101010101
LOW7S = 0x7F7F7F7F7F7F7F7F


def _bitboard(points) -> tuple[int, int]:
    lo = hi = 0
    for p in points:
        if p < 64:
            lo |= 1 << p
        else:
            hi |= 1 << (p - 64)
    return _signed(lo), hi


def _signed(x: int) -> int:
    return x - (1 << 64) if x >= 1 << 63 else x


_NOT_COL0 = _bitboard([p for p in range(NUM_POINTS) if p % SIZE != 0])
_NOT_COL8 = _bitboard([p for p in range(NUM_POINTS) if p % SIZE != SIZE - 1])
NOT_COL0_LO, NOT_COL0_HI = _NOT_COL0
NOT_COL8_LO, NOT_COL8_HI = _NOT_COL8
FULL_LO, FULL_HI = -1, HI_MASK

BIT_LO = np.array([_bitboard([p])[0] for p in range(NUM_POINTS)], dtype=np.int64)   # [81]
BIT_HI = np.array([_bitboard([p])[1] for p in range(NUM_POINTS)], dtype=np.int64)   # [81]
# BYTE_SPREAD[b] = the bits of the byte b as eight bytes, 0 or 1 (bit k -> byte k, little-endian):
# a bitboard becomes bool mask entries eight at a time
BYTE_SPREAD = np.array([sum(((b >> k) & 1) << (8 * k) for k in range(8)) for b in range(256)],
                       dtype=np.int64)                                      # [256]
# FLOAT_SPREAD[b] = the bits of the byte b as eight float32 0.0 / 1.0 (bit k -> entry k): a
# bitboard becomes an observation plane eight points per table row (one vector copy each)
FLOAT_SPREAD = np.array([[(b >> k) & 1 for k in range(8)] for b in range(256)],
                        dtype=np.float32)                                   # [256, 8]


def _neighbours(p: int) -> list[int]:
    r, c = divmod(p, SIZE)
    out = []
    for dr, dc in ((-1, 0), (0, -1), (0, 1), (1, 0)):
        if 0 <= r + dr < SIZE and 0 <= c + dc < SIZE:
            out.append((r + dr) * SIZE + c + dc)
    return out


NEIGHBOURS = np.full((NUM_POINTS, 4), -1, dtype=np.int64)      # [81, 4], -1 padded
NUM_NEIGHBOURS = np.zeros(NUM_POINTS, dtype=np.int64)           # [81]
NB_LO = np.zeros(NUM_POINTS, dtype=np.int64)                    # [81] neighbour bitboards
NB_HI = np.zeros(NUM_POINTS, dtype=np.int64)
for _p in range(NUM_POINTS):
    _ns = _neighbours(_p)
    NEIGHBOURS[_p, :len(_ns)] = _ns
    NUM_NEIGHBOURS[_p] = len(_ns)
    NB_LO[_p], NB_HI[_p] = _bitboard(_ns)


def symmetry_point(k: int, r: int, c: int) -> tuple[int, int]:
    """Symmetry k (0..7) of the point (row r, col c): transpose if k & 4, then flip the rows if
    k & 1, then flip the columns if k & 2. k = 0 is the identity."""
    if k & 4:
        r, c = c, r
    if k & 1:
        r = SIZE - 1 - r
    if k & 2:
        c = SIZE - 1 - c
    return r, c


NUM_SYMMETRIES = 8
POINT_PERM = np.array([[symmetry_point(k, p // SIZE, p % SIZE)[0] * SIZE
                        + symmetry_point(k, p // SIZE, p % SIZE)[1] for p in range(NUM_POINTS)]
                       for k in range(NUM_SYMMETRIES)], dtype=np.int64)    # [8, 81]
INVERSE_PERM = np.argsort(POINT_PERM, axis=1).astype(np.int64)              # [8, 81]
# COMPOSE[a, b] = the symmetry "apply b, then a".
COMPOSE = np.array([[next(k for k in range(NUM_SYMMETRIES)
                          if np.array_equal(POINT_PERM[k], POINT_PERM[a][POINT_PERM[b]]))
                     for b in range(NUM_SYMMETRIES)] for a in range(NUM_SYMMETRIES)],
                   dtype=np.int64)

# Zobrist keys: KEYS[colour * 81 + p] has random high bits and its own index in the low 8 bits.
_rng = np.random.default_rng(0x60_9_9)
KEYS = ((_rng.integers(0, 2**64, size=2 * NUM_POINTS, dtype=np.uint64).view(np.int64)
         & ~np.int64(255))
        | np.arange(2 * NUM_POINTS, dtype=np.int64))                        # [162]
# KEY32_BY_INDEX[i] = low 32 bits of KEYS[i] for i < 162, 0 beyond (low byte 0 != i: no match).
KEY32_BY_INDEX = np.zeros(256, dtype=np.int64)
KEY32_BY_INDEX[:2 * NUM_POINTS] = KEYS & LOW32
# FRAME_KEYS[f, colour, p]: key of a stone of `colour` at point p in a state with FRAME f.
FRAME_KEYS = np.array([[[KEYS[colour * NUM_POINTS + INVERSE_PERM[f, p]] for p in range(NUM_POINTS)]
                        for colour in range(2)] for f in range(NUM_SYMMETRIES)], dtype=np.int64)

for _t in (BYTE_SPREAD, BIT_LO, BIT_HI, NEIGHBOURS, NUM_NEIGHBOURS, NB_LO, NB_HI, POINT_PERM,
           INVERSE_PERM, COMPOSE, KEYS, KEY32_BY_INDEX, FRAME_KEYS):
    _t.flags.writeable = False

# ---------------------------------------------------------------- bitboard primitives


@njit(cache=True)
def neighbours_of(lo, hi):
    """The points adjacent (orthogonally) to some point of the bitboard (lo, hi)."""
    up_lo = ((lo >> 9) & LOW55) | ((hi & 0x1FF) << 55)
    up_hi = hi >> 9
    down_lo = lo << 9
    down_hi = ((hi << 9) | ((lo >> 55) & 0x1FF)) & HI_MASK
    a_lo = lo & NOT_COL8_LO
    a_hi = hi & NOT_COL8_HI
    right_lo = a_lo << 1
    right_hi = ((a_hi << 1) | ((a_lo >> 63) & 1)) & HI_MASK
    b_lo = lo & NOT_COL0_LO
    b_hi = hi & NOT_COL0_HI
    left_lo = ((b_lo >> 1) & LOW63) | ((b_hi & 1) << 63)
    left_hi = b_hi >> 1
    return up_lo | down_lo | right_lo | left_lo, up_hi | down_hi | right_hi | left_hi


@njit(cache=True)
def flood(lo, hi, within_lo, within_hi):
    """The points of (within) connected to the seed (lo, hi) through (within); the seed must lie
    inside (within)."""
    while True:
        n_lo, n_hi = neighbours_of(lo, hi)
        n_lo = (n_lo & within_lo) | lo
        n_hi = (n_hi & within_hi) | hi
        if n_lo == lo and n_hi == hi:
            return lo, hi
        lo = n_lo
        hi = n_hi


@intrinsic
def _ctpop(typingctx, x):
    """llvm.ctpop on an int64 (one POPCNT instruction where the CPU has it)."""
    sig = types.int64(types.int64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i64, [i64]),
                                            "llvm.ctpop.i64")
        return builder.call(fn, [args[0]])
    return sig, codegen


@intrinsic
def _copy_words(typingctx, dst, dst_start, src, src_start, count):
    """dst[dst_start:dst_start + count] = src[src_start:src_start + count] for 1-D int64 arrays
    that do not overlap: one llvm.memcpy (numba's slice assignment checks for overlap and may
    copy through a temporary; a plain loop measured ~15% slower)."""
    sig = types.void(dst, dst_start, src, src_start, count)

    def codegen(context, builder, signature, args):
        dst_type, _, src_type, _, _ = signature.args
        d = context.make_array(dst_type)(context, builder, args[0])
        s = context.make_array(src_type)(context, builder, args[2])
        dst_ptr = cgutils.get_item_pointer(context, builder, dst_type, d, [args[1]],
                                           wraparound=False)
        src_ptr = cgutils.get_item_pointer(context, builder, src_type, s, [args[3]],
                                           wraparound=False)
        i8p = ir.IntType(8).as_pointer()
        cgutils.raw_memcpy(builder, builder.bitcast(dst_ptr, i8p), builder.bitcast(src_ptr, i8p),
                           args[4], 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def _store_8_bools(typingctx, out, row, col, word):
    """out[row, col:col + 8] = the eight bytes of `word` (little-endian, each 0 or 1) for a 2-D
    bool array: one unaligned 8-byte store where `out` is C-contiguous, else eight byte stores."""
    sig = types.void(out, row, col, word)

    def codegen(context, builder, signature, args):
        out_type = signature.args[0]
        a = context.make_array(out_type)(context, builder, args[0])
        i8, i64 = ir.IntType(8), ir.IntType(64)
        if out_type.layout == "C":
            ptr = cgutils.get_item_pointer(context, builder, out_type, a, [args[1], args[2]],
                                           wraparound=False)
            builder.store(args[3], builder.bitcast(ptr, i64.as_pointer()), align=1)
        else:
            for k in range(8):
                col_k = builder.add(args[2], ir.Constant(i64, k))
                ptr = cgutils.get_item_pointer(context, builder, out_type, a, [args[1], col_k],
                                               wraparound=False)
                byte = builder.trunc(builder.lshr(args[3], ir.Constant(i64, 8 * k)), i8)
                builder.store(byte, builder.bitcast(ptr, i8.as_pointer()))
        return context.get_dummy_value()
    return sig, codegen


def _prefetch_row_intrinsic(write: int):
    """An intrinsic prefetch_row(arr, row): llvm.prefetch of every 64-byte line of the row stride
    from the start of row `row` of a 2-D array (that row, where the array is C-contiguous), for
    reading (write = 0) or writing (1). A hint only: no effect on results, and never a fault
    (callers still keep `row` in range)."""
    @intrinsic
    def prefetch_row(typingctx, arr, row):
        sig = types.void(arr, row)

        def codegen(context, builder, signature, args):
            arr_type = signature.args[0]
            a = context.make_array(arr_type)(context, builder, args[0])
            i64, i32 = ir.IntType(64), ir.IntType(32)
            i8p = ir.IntType(8).as_pointer()
            zero = ir.Constant(i64, 0)
            start = builder.bitcast(cgutils.get_item_pointer(
                context, builder, arr_type, a, [args[1], zero], wraparound=False), i8p)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                "llvm.prefetch.p0")
            row_bytes = cgutils.unpack_tuple(builder, a.strides, 2)[0]
            line = ir.Constant(i64, 64)
            with cgutils.for_range_slice(builder, zero, row_bytes, line) as (off, _):
                # (address, write, locality 3 = keep in all cache levels, data cache)
                builder.call(fn, [builder.gep(start, [off]), ir.Constant(i32, write),
                                  ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()
        return sig, codegen
    return prefetch_row


_prefetch_read = _prefetch_row_intrinsic(0)
_prefetch_write = _prefetch_row_intrinsic(1)
# Rows ahead that the batch loops of `step` prefetch: a row is 1.2 KB read cold from the input
# batch and written to a fresh output batch (each 5 MB at B = 4096, past the core's L2), and the
# copy stalled on both; prefetching the input row (read) and the output row (write, which spares
# the stall of fetching its lines for ownership) made step_with_info ~20% faster per row at
# B = 4096. 2 to 8 rows ahead measured alike.
PREFETCH_AHEAD = 4


@njit(cache=True)
def prefetch_rows(states, out, i):
    """Prefetches row i + PREFETCH_AHEAD of `states` (to be read) and of `out` (to be written)."""
    if i + PREFETCH_AHEAD < states.shape[0]:
        _prefetch_read(states, i + PREFETCH_AHEAD)
        _prefetch_write(out, i + PREFETCH_AHEAD)


@njit(cache=True)
def popcount(x):
    """Number of set bits of an int64."""
    return _ctpop(np.int64(x))


@njit(cache=True)
def single_point(lo, hi):
    """True if the bitboard holds exactly one point."""
    if lo == 0:
        return hi != 0 and (hi & (hi - 1)) == 0
    return hi == 0 and (lo & (lo - 1)) == 0


@njit(cache=True)
def two_or_more(lo, hi):
    """True if the bitboard holds at least two points."""
    return (lo & (lo - 1)) != 0 or (hi & (hi - 1)) != 0 or (lo != 0 and hi != 0)


@njit(cache=True)
def lowest_point(lo, hi):
    """The lowest point of a non-empty bitboard."""
    if lo != 0:
        return trailing_zeros(lo)
    return 64 + trailing_zeros(hi)


@njit(cache=True)
def has_point(lo, hi, p):
    return ((lo & BIT_LO[p]) | (hi & BIT_HI[p])) != 0


@njit(cache=True)
def keys_of(lo, hi, keys):
    """XOR of keys[p] over the points p of the bitboard."""
    h = np.int64(0)
    while lo != 0:
        h ^= keys[trailing_zeros(lo)]
        lo &= lo - 1
    while hi != 0:
        h ^= keys[64 + trailing_zeros(hi)]
        hi &= hi - 1
    return h


@njit(cache=True)
def frame_keys_of(lo, hi, frame, colour):
    """XOR of the keys of stones of `colour` on the points of the bitboard, in `frame`."""
    h = np.int64(0)
    while lo != 0:
        h ^= FRAME_KEYS[frame, colour, trailing_zeros(lo)]
        lo &= lo - 1
    while hi != 0:
        h ^= FRAME_KEYS[frame, colour, 64 + trailing_zeros(hi)]
        hi &= hi - 1
    return h


@njit(cache=True)
def areas(b_lo, b_hi, w_lo, w_hi):
    """Tromp-Taylor areas (black lo, black hi, white lo, white hi): a colour's stones and the
    empty points that reach only that colour's stones."""
    e_lo = ~(b_lo | w_lo)
    e_hi = ~(b_hi | w_hi) & HI_MASK
    n_lo, n_hi = neighbours_of(b_lo, b_hi)
    rb_lo, rb_hi = flood(n_lo & e_lo, n_hi & e_hi, e_lo, e_hi)
    n_lo, n_hi = neighbours_of(w_lo, w_hi)
    rw_lo, rw_hi = flood(n_lo & e_lo, n_hi & e_hi, e_lo, e_hi)
    return (b_lo | (rb_lo & ~rw_lo), b_hi | (rb_hi & ~rw_hi),
            w_lo | (rw_lo & ~rb_lo), w_hi | (rw_hi & ~rb_hi))


@njit(cache=True)
def area_difference(b_lo, b_hi, w_lo, w_hi):
    """Tromp-Taylor: black area - white area."""
    black_lo, black_hi, white_lo, white_hi = areas(b_lo, b_hi, w_lo, w_hi)
    return popcount(black_lo) + popcount(black_hi) - popcount(white_lo) - popcount(white_hi)


@njit(cache=True)
def has_string_without_liberty(b_lo, b_hi, w_lo, w_hi):
    """Whether some string of either colour has no empty neighbour (not a Go position)."""
    e_lo = ~(b_lo | w_lo)
    e_hi = ~(b_hi | w_hi) & HI_MASK
    n_lo, n_hi = neighbours_of(e_lo, e_hi)            # points next to an empty point
    alive_lo, alive_hi = flood(n_lo & b_lo, n_hi & b_hi, b_lo, b_hi)
    if alive_lo != b_lo or alive_hi != b_hi:
        return True
    alive_lo, alive_hi = flood(n_lo & w_lo, n_hi & w_hi, w_lo, w_hi)
    return alive_lo != w_lo or alive_hi != w_hi


@njit(cache=True)
def captured_by(p, opp_lo, opp_hi, at_lo, at_hi):
    """Stones captured by a stone at the empty point p: the opponent strings in atari next to p."""
    c_lo = np.int64(0)
    c_hi = np.int64(0)
    for j in range(NUM_NEIGHBOURS[p]):
        q = NEIGHBOURS[p, j]
        if ((opp_lo & at_lo & BIT_LO[q]) | (opp_hi & at_hi & BIT_HI[q])) != 0 \
                and ((c_lo & BIT_LO[q]) | (c_hi & BIT_HI[q])) == 0:
            if ((NB_LO[q] & opp_lo) | (NB_HI[q] & opp_hi)) == 0:      # a lone stone
                c_lo |= BIT_LO[q]
                c_hi |= BIT_HI[q]
            else:
                s_lo, s_hi = flood(BIT_LO[q], BIT_HI[q], opp_lo, opp_hi)
                c_lo |= s_lo
                c_hi |= s_hi
    return c_lo, c_hi


# ---------------------------------------------------------------- legality


@njit(cache=True)
def entry_count(states, i, j):
    """Stone count of history entry j of row i."""
    return (states[i, COUNTS + (j >> 3)] >> ((j & 7) << 3)) & 0xFF


@njit(cache=True)
def entry_hash(states, i, j, hashes):
    """Low 32 bits of the hash of history entry j of row i (hashes: hashes_offset of the row)."""
    return (states[i, hashes + (j >> 1)] >> ((j & 1) << 5)) & LOW32


@njit(cache=True)
def count_matches(states, i, w, count, n):
    """Word w of row i's COUNTS with the high bit of byte b set iff entry 8w + b (< n) has this
    stone count, all other bits clear (exact SWAR zero-byte test, no carries between bytes)."""
    x = states[i, COUNTS + w] ^ (count * BYTE_ONES)
    y = ((x & LOW7S) + LOW7S) | x | LOW7S
    matches = ~y
    rest = n - (w << 3)
    if rest < 8:
        matches &= (np.int64(1) << (rest << 3)) - 1
    return matches


@njit(cache=True)
def seen_before(states, i, h, count, n):
    """True if one of the first n history entries of row i has this stone count and hash."""
    h32 = h & LOW32
    hashes = hashes_offset(states.shape[1])
    for w in range((n + 7) >> 3):
        matches = count_matches(states, i, w, count, n)
        while matches != 0:
            j = (w << 3) + (trailing_zeros(matches) >> 3)
            if entry_hash(states, i, j, hashes) == h32:
                return True
            matches &= matches - 1
    return False


@njit(cache=True, inline='always')
def legal_points(states, i):
    """Bitboard of the legal stone moves of row i (empty if the game is over or the superko
    history is full)."""
    width = states.shape[1]
    if states[i, STATUS] != ONGOING or states[i, NUM_HASHES] >= history_capacity(width):
        return np.int64(0), np.int64(0)
    hashes = hashes_offset(width)
    mover = states[i, PLY] & 1
    own_lo = states[i, BLACK + 2 * mover]
    own_hi = states[i, BLACK + 2 * mover + 1]
    opp_lo = states[i, WHITE - 2 * mover]
    opp_hi = states[i, WHITE - 2 * mover + 1]
    at_lo = states[i, ATARI]
    at_hi = states[i, ATARI + 1]
    e_lo = ~(own_lo | opp_lo)
    e_hi = ~(own_hi | opp_hi) & HI_MASK
    libs_lo, libs_hi = neighbours_of(e_lo, e_hi)
    cap_lo, cap_hi = neighbours_of(opp_lo & at_lo, opp_hi & at_hi)
    safe_lo, safe_hi = neighbours_of(own_lo & ~at_lo, own_hi & ~at_hi)
    cap_lo &= e_lo
    cap_hi &= e_hi
    legal_lo = e_lo & (libs_lo | cap_lo | safe_lo)
    legal_hi = e_hi & (libs_hi | cap_hi | safe_hi)
    h = states[i, HASH]
    frame = states[i, FRAME]
    last = states[i, LAST_CAPTURE]
    count = popcount(own_lo | opp_lo) + popcount(own_hi | opp_hi)
    # Non-capturing moves: a repeat has one stone more than now; the key names the move.
    for w in range((last + 7) >> 3):
        matches = count_matches(states, i, w, count + 1, last)
        while matches != 0:
            j = (w << 3) + (trailing_zeros(matches) >> 3)
            matches &= matches - 1
            d = (entry_hash(states, i, j, hashes) ^ h) & LOW32
            index = d & KEY_INDEX_MASK
            if KEY32_BY_INDEX[index] == d and index // NUM_POINTS == mover:
                p = POINT_PERM[frame, index - mover * NUM_POINTS]
                if ((cap_lo & BIT_LO[p]) | (cap_hi & BIT_HI[p])) == 0:
                    legal_lo &= ~BIT_LO[p]
                    legal_hi &= ~BIT_HI[p]
    # Capturing moves (only where a stone of the mover was once captured: a repeat has a stone of
    # the mover on p, which must have been captured since): own hash and count vs the history.
    todo_lo = cap_lo & legal_lo & states[i, CAPTURED + 2 * mover]
    todo_hi = cap_hi & legal_hi & states[i, CAPTURED + 2 * mover + 1]
    if last == 0:
        todo_lo = 0
        todo_hi = 0
    while todo_lo != 0 or todo_hi != 0:
        p = lowest_point(todo_lo, todo_hi)
        todo_lo &= ~BIT_LO[p]
        todo_hi &= ~BIT_HI[p]
        c_lo, c_hi = captured_by(p, opp_lo, opp_hi, at_lo, at_hi)
        h2 = h ^ FRAME_KEYS[frame, mover, p] ^ frame_keys_of(c_lo, c_hi, frame, 1 - mover)
        if seen_before(states, i, h2, count + 1 - popcount(c_lo) - popcount(c_hi), last):
            legal_lo &= ~BIT_LO[p]
            legal_hi &= ~BIT_HI[p]
    return legal_lo, legal_hi


@njit(cache=True, inline='always')
def _write_mask(states, i, out):
    """out[i] <- the legal mask [82] of row i, as legal_mask."""
    lo, hi = legal_points(states, i)
    if states[i, STATUS] == ONGOING:
        hi |= np.int64(1) << (PASS - 64)                  # bit 17 of hi: action 81
    # Eight entries per store, from a table (82 one-byte stores with a table load each took
    # ~10% of a random move); the last store covers actions 74..81, overlapping the one before.
    for byte in range(8):
        _store_8_bools(out, i, 8 * byte, BYTE_SPREAD[(lo >> (8 * byte)) & 0xFF])
    _store_8_bools(out, i, 64, BYTE_SPREAD[hi & 0xFF])
    _store_8_bools(out, i, 72, BYTE_SPREAD[(hi >> 8) & 0xFF])
    _store_8_bools(out, i, 74, BYTE_SPREAD[(hi >> 10) & 0xFF])


@njit(cache=True)
def legal_mask(states, out):
    """states [B, S] -> out [B, 82] bool. Pass is legal until the game is over."""
    for i in range(states.shape[0]):
        _write_mask(states, i, out)


# ---------------------------------------------------------------- playing a move


@njit(cache=True)
def _finish(out, i):
    out[i, STATUS] = OVER
    out[i, SCORE] = 2 * area_difference(out[i, BLACK], out[i, BLACK + 1],
                                        out[i, WHITE], out[i, WHITE + 1]) - out[i, KOMI2]


@njit(cache=True)
def _advance(states, i, out):
    """Copies row i to out[i] with the board history moved on by one ply (the current board
    becomes the most recent earlier board) and PLY + 1. `out` must not be `states`."""
    src = states[i]
    dst = out[i]
    _copy_words(dst, 0, src, 0, PREV)
    _copy_words(dst, PREV + BOARD_WORDS, src, PREV, COUNTS - PREV - BOARD_WORDS)
    _copy_words(dst, COUNTS, src, COUNTS, states.shape[1] - COUNTS)
    dst[PREV] = src[BLACK]
    dst[PREV + 1] = src[WHITE]
    dst[PREV + 2] = src[BLACK + 1] | (src[WHITE + 1] << _HI_BITS)
    dst[PLY] += 1


@njit(cache=True, inline='always')
def play(states, i, action, out):
    """out[i] <- the position after `action` in states[i]. Returns the new STATUS, or -1 (and
    leaves out[i] untouched) if the action is out of range or illegal or the game is over, or
    for a stone once the superko history is full. `out` must be another array than `states`."""
    if states[i, STATUS] != ONGOING or action < 0 or action > PASS:
        return -1
    if action == PASS:
        _advance(states, i, out)
        out[i, PASSES] += 1
        if out[i, PASSES] >= 2:
            _finish(out, i)
        return out[i, STATUS]
    n = states[i, NUM_HASHES]
    width = states.shape[1]
    if n >= history_capacity(width):
        return -1                                            # no room to remember the position
    p = action
    mover = states[i, PLY] & 1
    own_lo = states[i, BLACK + 2 * mover]
    own_hi = states[i, BLACK + 2 * mover + 1]
    opp_lo = states[i, WHITE - 2 * mover]
    opp_hi = states[i, WHITE - 2 * mover + 1]
    bit_lo = BIT_LO[p]
    bit_hi = BIT_HI[p]
    if (((own_lo | opp_lo) & bit_lo) | ((own_hi | opp_hi) & bit_hi)) != 0:
        return -1                                            # occupied
    at_lo = states[i, ATARI]
    at_hi = states[i, ATARI + 1]
    c_lo, c_hi = captured_by(p, opp_lo, opp_hi, at_lo, at_hi)
    captures = c_lo != 0 or c_hi != 0
    if not captures:
        e_lo = ~(own_lo | opp_lo)
        e_hi = ~(own_hi | opp_hi)
        if (NB_LO[p] & e_lo) == 0 and (NB_HI[p] & e_hi) == 0 \
                and (NB_LO[p] & own_lo & ~at_lo) == 0 and (NB_HI[p] & own_hi & ~at_hi) == 0:
            return -1                                        # suicide
    frame = states[i, FRAME]
    h = states[i, HASH]
    h2 = h ^ FRAME_KEYS[frame, mover, p]
    count = popcount(own_lo | opp_lo) + popcount(own_hi | opp_hi)
    if captures:
        h2 ^= frame_keys_of(c_lo, c_hi, frame, 1 - mover)
    # Positions after the last capture are subsets of this one: no move can repeat them.
    if seen_before(states, i, h2, count + 1 - popcount(c_lo) - popcount(c_hi),
                   states[i, LAST_CAPTURE]):
        return -1                                            # positional superko
    _advance(states, i, out)
    own_lo |= bit_lo
    own_hi |= bit_hi
    opp_lo &= ~c_lo
    opp_hi &= ~c_hi
    e_lo = ~(own_lo | opp_lo)
    e_hi = ~(own_hi | opp_hi) & HI_MASK
    # Strings whose liberties changed: the new stone's, the opponent's next to it, and own strings
    # next to captured stones. Most need no flood fill: a stone with two empty neighbours is not in
    # atari, and own strings next to captured stones only gained liberties (they leave atari).
    seed_lo = np.int64(0)
    seed_hi = np.int64(0)
    if not two_or_more(NB_LO[p] & e_lo, NB_HI[p] & e_hi) \
            or ((NB_LO[p] & own_lo & at_lo) | (NB_HI[p] & own_hi & at_hi)) != 0:
        seed_lo = bit_lo
        seed_hi = bit_hi
    for j in range(NUM_NEIGHBOURS[p]):
        q = NEIGHBOURS[p, j]
        if ((opp_lo & BIT_LO[q]) | (opp_hi & BIT_HI[q])) != 0 \
                and not two_or_more(NB_LO[q] & e_lo, NB_HI[q] & e_hi):
            seed_lo |= BIT_LO[q]
            seed_hi |= BIT_HI[q]
    if captures:
        n_lo, n_hi = neighbours_of(c_lo, c_hi)
        seed_lo |= n_lo & own_lo & at_lo
        seed_hi |= n_hi & own_hi & at_hi
    at_lo &= ~c_lo
    at_hi &= ~c_hi
    while seed_lo != 0 or seed_hi != 0:
        q = lowest_point(seed_lo, seed_hi)
        if ((own_lo & BIT_LO[q]) | (own_hi & BIT_HI[q])) != 0:
            s_lo, s_hi = flood(BIT_LO[q], BIT_HI[q], own_lo, own_hi)
        else:
            s_lo, s_hi = flood(BIT_LO[q], BIT_HI[q], opp_lo, opp_hi)
        seed_lo &= ~s_lo
        seed_hi &= ~s_hi
        l_lo, l_hi = neighbours_of(s_lo, s_hi)
        if single_point(l_lo & e_lo, l_hi & e_hi):
            at_lo |= s_lo
            at_hi |= s_hi
        else:
            at_lo &= ~s_lo
            at_hi &= ~s_hi
    out[i, BLACK + 2 * mover] = own_lo
    out[i, BLACK + 2 * mover + 1] = own_hi
    out[i, WHITE - 2 * mover] = opp_lo
    out[i, WHITE - 2 * mover + 1] = opp_hi
    out[i, ATARI] = at_lo
    out[i, ATARI + 1] = at_hi
    out[i, COUNTS + (n >> 3)] |= count << ((n & 7) << 3)
    out[i, hashes_offset(width) + (n >> 1)] |= (h & LOW32) << ((n & 1) << 5)
    out[i, NUM_HASHES] = n + 1
    if captures:
        out[i, LAST_CAPTURE] = n + 1
        out[i, CAPTURED + 2 - 2 * mover] |= c_lo
        out[i, CAPTURED + 3 - 2 * mover] |= c_hi
    out[i, HASH] = h2
    out[i, PASSES] = 0
    return out[i, STATUS]


@njit(cache=True)
def step(states, actions, out):
    """states [B, S], actions [B] int64 -> out [B, S]. Returns the first row whose action is
    illegal (or whose game is over), else -1."""
    for i in range(states.shape[0]):
        prefetch_rows(states, out, i)
        if play(states, i, actions[i], out) < 0:
            return i
    return -1


@njit(cache=True)
def _result_of(states, i):
    if states[i, STATUS] == ONGOING or states[i, SCORE] == 0:
        return 0.0
    black_wins = states[i, SCORE] > 0
    black_to_move = (states[i, PLY] & 1) == 0
    return 1.0 if black_wins == black_to_move else -1.0


@njit(cache=True)
def step_with_info(states, actions, out, legal, terminal, result):
    """`step`, also filling for the NEW states legal [B, 82] bool, terminal [B] bool and result
    [B] float32 (side to move's view). Returns the first illegal row, else -1."""
    for i in range(states.shape[0]):
        prefetch_rows(states, out, i)
        status = play(states, i, actions[i], out)
        if status < 0:
            return i
        terminal[i] = status != ONGOING
        result[i] = _result_of(out, i)
        _write_mask(out, i, legal)
    return -1


@njit(cache=True)
def result(states, out):
    """states [B, S] -> out [B] float32: +1 / 0 / -1 for the side to move once the game is over
    (0 also for a drawn score), 0 before."""
    for i in range(states.shape[0]):
        out[i] = _result_of(states, i)


# ---------------------------------------------------------------- derived views


@njit(cache=True)
def area_score(states, out):
    """states [B, S] -> out [B] float64: Tromp-Taylor area of Black minus White, minus komi, of
    the CURRENT board (the final score for a finished game)."""
    for i in range(states.shape[0]):
        out[i] = area_difference(states[i, BLACK], states[i, BLACK + 1],
                                 states[i, WHITE], states[i, WHITE + 1]) - 0.5 * states[i, KOMI2]


@njit(cache=True)
def ownership(states, out):
    """states [B, S] -> out [B, 9, 9] int8: Tromp-Taylor area of the current board from the side
    to move's view: +1 own stone or empty point reaching only own stones, -1 the opponent's, 0
    an empty point reaching both or neither."""
    for i in range(states.shape[0]):
        black_lo, black_hi, white_lo, white_hi = areas(
            states[i, BLACK], states[i, BLACK + 1], states[i, WHITE], states[i, WHITE + 1])
        sign = 1 if (states[i, PLY] & 1) == 0 else -1
        for p in range(NUM_POINTS):
            v = 0
            if has_point(black_lo, black_hi, p):
                v = sign
            elif has_point(white_lo, white_hi, p):
                v = -sign
            out[i, p // SIZE, p % SIZE] = v


@njit(cache=True)
def earlier_board(states, i, t):
    """(black lo, black hi, white lo, white hi) of the position t + 1 plies before row i's."""
    base = PREV + BOARD_WORDS * t
    packed_hi = states[i, base + 2]
    return (states[i, base], packed_hi & HI_MASK, states[i, base + 1],
            (packed_hi >> _HI_BITS) & HI_MASK)


@njit(cache=True, inline='always')
def _write_points(flat, i, at, lo, hi):
    """flat[i, at + p] = 1.0 where point p is in the bitboard (lo, hi), else 0.0; p = 0..80."""
    for byte in range(8):
        spread = FLOAT_SPREAD[(lo >> (8 * byte)) & 0xFF]
        for k in range(8):
            flat[i, at + 8 * byte + k] = spread[k]
    for byte in range(2):
        spread = FLOAT_SPREAD[(hi >> (8 * byte)) & 0xFF]
        for k in range(8):
            flat[i, at + 64 + 8 * byte + k] = spread[k]
    flat[i, at + NUM_POINTS - 1] = np.float32((hi >> (NUM_POINTS - 1 - 64)) & 1)


@njit(cache=True, inline='always')
def _fill_plane(flat, i, at, value):
    """flat[i, at:at + 81] = value."""
    for p in range(NUM_POINTS):
        flat[i, at + p] = value


@njit(cache=True, nogil=True)   # the trainer's prefetch thread runs it beside a step
def observation(states, out):
    """states [B, S] -> out [B, NUM_PLANES, 9, 9] float32 (C-contiguous) from the side to move's
    view; planes as listed by the OBS_* constants. Each plane is written in one pass over its 81
    contiguous floats: board planes eight points per FLOAT_SPREAD row (on the 2-core EPYC 3.6x
    the earlier point-by-point loop over all planes through game.observation, 4.6-4.8M against
    0.6M positions/s into a preallocated output: BENCHMARKS.md, "Trainer host side";
    tests/test_go9_observation.py checks it against that loop bit for bit)."""
    flat = out.reshape((out.shape[0], NUM_PLANES * NUM_POINTS))   # a view: out is contiguous
    for i in range(states.shape[0]):
        mover = states[i, PLY] & 1
        legal_lo, legal_hi = legal_points(states, i)
        at_lo = states[i, ATARI]
        at_hi = states[i, ATARI + 1]
        own_lo = states[i, BLACK + 2 * mover]
        own_hi = states[i, BLACK + 2 * mover + 1]
        opp_lo = states[i, WHITE - 2 * mover]
        opp_hi = states[i, WHITE - 2 * mover + 1]
        _write_points(flat, i, 0, own_lo, own_hi)
        _write_points(flat, i, NUM_POINTS, opp_lo, opp_hi)
        for t in range(NUM_PREV):
            b_lo, b_hi, w_lo, w_hi = earlier_board(states, i, t)
            own_at = (2 + 2 * t) * NUM_POINTS              # own stones t + 1 plies ago
            opp_at = own_at + NUM_POINTS
            if mover == 0:
                _write_points(flat, i, own_at, b_lo, b_hi)
                _write_points(flat, i, opp_at, w_lo, w_hi)
            else:
                _write_points(flat, i, own_at, w_lo, w_hi)
                _write_points(flat, i, opp_at, b_lo, b_hi)
        _fill_plane(flat, i, OBS_BLACK_TO_MOVE * NUM_POINTS, np.float32(1.0 if mover == 0 else 0.0))
        # rounded from float64 to float32 once, as the earlier loop's stores did
        _fill_plane(flat, i, OBS_KOMI * NUM_POINTS,
                    np.float32(0.05 * states[i, KOMI2] * (1.0 if mover == 1 else -1.0)))
        _write_points(flat, i, OBS_LEGAL * NUM_POINTS, legal_lo, legal_hi)
        _write_points(flat, i, OBS_OWN_ATARI * NUM_POINTS, own_lo & at_lo, own_hi & at_hi)
        _write_points(flat, i, OBS_OPP_ATARI * NUM_POINTS, opp_lo & at_lo, opp_hi & at_hi)
        _fill_plane(flat, i, OBS_PASSED * NUM_POINTS,
                    np.float32(1.0 if states[i, PASSES] > 0 else 0.0))
        _fill_plane(flat, i, OBS_ONES * NUM_POINTS, np.float32(1.0))


# ---------------------------------------------------------------- symmetries and setup


@njit(cache=True)
def permute_bits(lo, hi, perm):
    """Bitboard with point p moved to perm[p]."""
    r_lo = np.int64(0)
    r_hi = np.int64(0)
    while lo != 0:
        q = perm[trailing_zeros(lo)]
        r_lo |= BIT_LO[q]
        r_hi |= BIT_HI[q]
        lo &= lo - 1
    while hi != 0:
        q = perm[64 + trailing_zeros(hi)]
        r_lo |= BIT_LO[q]
        r_hi |= BIT_HI[q]
        hi &= hi - 1
    return r_lo, r_hi


@njit(cache=True, nogil=True)   # the trainer's prefetch thread runs it beside a step
def transform_states(states, k, out):
    """states [B, S] -> out [B, S] with symmetry k applied: boards permuted, FRAME composed."""
    perm = POINT_PERM[k]
    for i in range(states.shape[0]):
        for j in range(states.shape[1]):
            out[i, j] = states[i, j]
        for base in (BLACK, WHITE, ATARI, CAPTURED, CAPTURED + 2):
            out[i, base], out[i, base + 1] = permute_bits(states[i, base], states[i, base + 1],
                                                          perm)
        for t in range(NUM_PREV):
            b_lo, b_hi, w_lo, w_hi = earlier_board(states, i, t)
            b_lo, b_hi = permute_bits(b_lo, b_hi, perm)
            w_lo, w_hi = permute_bits(w_lo, w_hi, perm)
            base = PREV + BOARD_WORDS * t
            out[i, base] = b_lo
            out[i, base + 1] = w_lo
            out[i, base + 2] = b_hi | (w_hi << _HI_BITS)
        out[i, FRAME] = COMPOSE[k, states[i, FRAME]]


@njit(cache=True)
def recompute_derived(states, out):
    """The fields derived from the board, from scratch: out [B, 3] = (ATARI lo, ATARI hi, HASH)
    for the current boards and FRAMEs. For setting up positions, and for checking `step`."""
    for i in range(states.shape[0]):
        frame = states[i, FRAME]
        at_lo = np.int64(0)
        at_hi = np.int64(0)
        h = np.int64(0)
        e_lo = ~(states[i, BLACK] | states[i, WHITE])
        e_hi = ~(states[i, BLACK + 1] | states[i, WHITE + 1]) & HI_MASK
        for colour in range(2):
            st_lo = states[i, BLACK + 2 * colour]
            st_hi = states[i, BLACK + 2 * colour + 1]
            h ^= keys_of(st_lo, st_hi, FRAME_KEYS[frame, colour])
            todo_lo = st_lo
            todo_hi = st_hi
            while todo_lo != 0 or todo_hi != 0:
                q = lowest_point(todo_lo, todo_hi)
                s_lo, s_hi = flood(BIT_LO[q], BIT_HI[q], st_lo, st_hi)
                todo_lo &= ~s_lo
                todo_hi &= ~s_hi
                l_lo, l_hi = neighbours_of(s_lo, s_hi)
                if single_point(l_lo & e_lo, l_hi & e_hi):
                    at_lo |= s_lo
                    at_hi |= s_hi
        out[i, 0] = at_lo
        out[i, 1] = at_hi
        out[i, 2] = h
