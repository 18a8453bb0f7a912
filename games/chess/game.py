"""Chess as a `Game` (see games/protocol.py): an adapter over python-chess (GPL-3.0, the optional
extra `pip install -e ".[chess]"`), batched like the numba games.

Conventions
  * state row: int64 [STATE_SIZE] (state.py): the position's bitboards, side to move, castling,
    en passant, clocks, status, the keys of the positions since the last irreversible move
    (repetitions) and the 7 previous positions (the network's history).
  * players: 0 white, 1 black; to_play is the side to move (a FEN may start with black).
    move_number = 2 * (fullmove - 1) + (1 if black to move), plies from the game's start.
  * actions: AlphaZero's 8x8x73 = 4672, PettingZoo's layout (encoding.py), from the side to
    move's view. legal_mask is [B, 4672]; the search stores only legal edges (~30 per node).
  * endings, all automatic (as OpenSpiel and most engines; FIDE makes threefold and fifty moves a
    claim): checkmate, stalemate, insufficient material (python-chess's: no sequence of legal
    moves can mate), fifty moves (100 plies) without a capture or pawn move, and the third
    occurrence of a position. result is -1 for the side to move when mated, else 0.
  * the move cap (max_game_length, 512 plies by default as AlphaZero's chess) truncates; play
    may go on past it (an engine keeps playing), with the rules above.
  * observation: float32 [119, 8, 8], AlphaZero's planes, from the side to move's view (ranks
    mirrored when black moves; H = rank 1..8 of the mover, W = files a..h):
        14 per position, for the current one and the 7 before it (zeros before the start):
            6 own pieces (P N B R Q K), 6 opponent pieces, and 2 repetition planes (the
            position occurred before once / twice)
        112 colour (1 when black moves), 113 plies played / max_game_length (at most 1),
        114-115 own castling rights (king side, queen side), 116-117 the opponent's,
        118 the no-progress clock / 100.
    AlphaZero's count: 8 x 14 + 7 = 119. The history lets the net see repetitions coming and
    what the opponent just did; the planes cost the first convolution only.
  * no symmetries (castling and pawn direction break them all).
"""
from __future__ import annotations

import chess
import numpy as np

from ..kernel_game import ArrayGame
from ..protocol import GameSpec, IllegalActionError
from . import encoding
from . import state as st
from .encoding import NUM_ACTIONS

DEFAULT_MAX_GAME_LENGTH = 512
MAX_FEN_COUNTER = 1 << 29        # a FEN's halfmove clock and move number: move_number is int32
HISTORY_POSITIONS = st.HISTORY_STEPS + 1
PLANES_PER_POSITION = 14
NUM_PLANES = HISTORY_POSITIONS * PLANES_PER_POSITION + 7        # 119
_MOVE_HELP = "write it in SAN (Nf3, O-O, exd5, e8=Q) or UCI (g1f3, e1g1, e7e8q)"
_CASTLING_SQUARES = ((chess.H1, chess.A1), (chess.H8, chess.A8))   # (king side, queen side)
# Observation tables: _CASTLING_BITS [2, 4] uint64, by the mover (0 white, 1 black), the
# castling-rights bits of its king side, queen side, then the opponent's (planes 114..117);
# _REPETITION_PLANES, the repetition count each repetition plane marks (at least 1, 2).
_CASTLING_BITS = np.array([[1 << sq for sq in _CASTLING_SQUARES[0] + _CASTLING_SQUARES[1]],
                           [1 << sq for sq in _CASTLING_SQUARES[1] + _CASTLING_SQUARES[0]]],
                          dtype=np.uint64)
_REPETITION_PLANES = np.array([1, 2])


class Chess(ArrayGame):
    def __init__(self, max_game_length: int = DEFAULT_MAX_GAME_LENGTH,
                 automatic_draws: bool = True):
        """automatic_draws=False: only checkmate and stalemate end a game; positions drawn by
        repetition, fifty moves or insufficient material keep their moves (perft counts through
        them; see perft_variant). REPS still counts repetitions for the observation."""
        if int(max_game_length) < 1:
            raise ValueError(f"max_game_length must be >= 1, got {max_game_length}")
        self.automatic_draws = bool(automatic_draws)
        self.spec = GameSpec(
            name="chess",
            num_actions=NUM_ACTIONS,
            observation_shape=(NUM_PLANES, 8, 8),
            state_size=st.STATE_SIZE,
            max_game_length=int(max_game_length),
            num_symmetries=1,
            action_permutations=np.arange(NUM_ACTIONS, dtype=np.int64)[None, :],
            board_shape=(8, 8),
            alternating_turns=True,       # every move passes the turn (chess has no pass)
            action_planes=encoding.ACTION_PLANES,
        )
        self._start = self.from_board(chess.Board())

    # ---------------------------------------------------------------- positions

    def initial_states(self, n: int) -> np.ndarray:
        """[n, S] copies of the starting position."""
        return np.tile(self._start, (n, 1))

    def from_fen(self, fen: str) -> np.ndarray:
        """A position in FEN -> state [S] (no history before it). ValueError naming what is
        wrong with a malformed FEN or an impossible position (no king, side not to move in
        check, pawns on the back rank, ...)."""
        try:
            board = chess.Board(str(fen))
        except ValueError as e:
            raise ValueError(f"bad FEN {fen!r}: {e}") from None
        problems = _invalid(board)
        if problems:
            raise ValueError(f"FEN {fen!r} is not a legal position: {problems}")
        return self._from_valid_board(board)

    def from_board(self, board: chess.Board) -> np.ndarray:
        """A python-chess board -> state [S], replaying its move stack from its root so that
        repetitions and history are those of the game played. ValueError as from_fen's for an
        impossible root position, IllegalActionError for an illegal move in the stack."""
        problems = _invalid(board.root())
        if problems:
            raise ValueError(f"position {board.root().fen()} is not legal: {problems}")
        return self._from_valid_board(board)

    def _from_valid_board(self, board: chess.Board) -> np.ndarray:
        root = board.root()
        row = np.empty(st.STATE_SIZE, dtype=np.int64)
        st.write_positions(row[None], [root], [any(root.generate_legal_moves())], None,
                           self.automatic_draws)
        for move in board.move_stack:
            row = self.step(row[None], np.array([self.action_of_move(row, move)]))[0]
        return row

    def perft_variant(self) -> "Chess":
        """The same game with automatic_draws=False, for perft (azero/bench/perft.py): perft
        counts every legal move sequence, through positions that draw rules would end."""
        return Chess(self.spec.max_game_length, automatic_draws=False)

    def board_of(self, state: np.ndarray) -> chess.Board:
        """The position of one state [S] as a python-chess board (no move stack)."""
        return st.board_of(self._single(state))

    def fen(self, state: np.ndarray) -> str:
        return self.board_of(state).fen()

    def status(self, state: np.ndarray) -> str:
        """Why the game is over ("checkmate", "threefold repetition", ...), or "" if it is not."""
        return st.STATUS_NAMES.get(int(self._single(state)[st.STATUS]), "")

    # ---------------------------------------------------------------- moves <-> actions

    def action_of_move(self, state: np.ndarray, move: chess.Move) -> int:
        """A legal move in the position `state` -> its action. IllegalActionError otherwise."""
        board = self.board_of(state)
        if not board.is_legal(move):
            raise IllegalActionError(f"{move.uci()} is not a legal move in {board.fen()}")
        return encoding.encode(move.from_square, move.to_square, move.promotion,
                               board.turn == chess.BLACK)

    def move_of_action(self, state: np.ndarray, action: int) -> chess.Move:
        """The legal move an action stands for in the position `state`. IllegalActionError
        if it stands for none."""
        board = self.board_of(state)
        move = _move_of_action(board, int(action))
        if move is None:
            raise IllegalActionError(f"action {action} is not a legal move in {board.fen()}")
        return move

    # ---------------------------------------------------------------- batched array API

    def step(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """states [B, S], actions [B] -> new states [B, S]; IllegalActionError naming the first
        bad row. `states` is never modified."""
        return self._step(states, actions, legal=None)

    def step_with_info(self, states: np.ndarray, actions: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """`step`, and the new states' legal mask [B, A], terminal [B] and result [B] from the
        same move generation."""
        legal = np.zeros((len(states), NUM_ACTIONS), dtype=np.bool_)
        out = self._step(states, actions, legal=legal)
        return out, legal, self.terminal(out), self.result(out)

    def _step(self, states, actions, legal: np.ndarray | None) -> np.ndarray:
        states, actions = self._batch(states), self._actions(actions, len(states))
        boards, has_moves = [], []
        legal_actions, legal_counts = [], []    # every row's legal actions, one after another
        # Each row's first KEYS columns as Python ints: a row's scalars are read without NumPy.
        for i, (fields, action) in enumerate(zip(states[:, :st.KEYS].tolist(), actions.tolist())):
            board = st.board_from_fields(fields) if fields[st.STATUS] == st.ONGOING else None
            move = None if board is None else _move_of_action(board, action)
            if move is None:
                raise IllegalActionError(self._illegal_message(states, actions, i))
            board.push(move)
            if legal is None:
                has_moves.append(any(board.generate_legal_moves()))
            else:
                moves = _legal_actions(board)
                has_moves.append(bool(moves))
                legal_actions += moves
                legal_counts.append(len(moves))
            boards.append(board)
        out = np.empty_like(states)
        st.write_positions(out, boards, has_moves, states, self.automatic_draws)
        if legal is not None:
            legal[np.repeat(np.arange(len(states)), legal_counts), legal_actions] = True
            # A drawn position has moves, but none are legal.
            legal[out[:, st.STATUS] != st.ONGOING] = False
        return out

    def legal_mask(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> bool [B, 4672]; all False once the game is over."""
        states = self._batch(states)
        out = np.zeros((len(states), NUM_ACTIONS), dtype=np.bool_)
        for i in np.flatnonzero(states[:, st.STATUS] == st.ONGOING):
            out[i, _legal_actions(st.board_of(states[i]))] = True
        return out

    def terminal(self, states: np.ndarray) -> np.ndarray:
        return self._batch(states)[:, st.STATUS] != st.ONGOING

    def truncated(self, states: np.ndarray) -> np.ndarray:
        states = self._batch(states)
        return (states[:, st.STATUS] == st.ONGOING) & (
            self.move_number(states) >= self.spec.max_game_length)

    def result(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> float32 [B]: -1 where the side to move is mated, 0 otherwise."""
        return np.where(self._batch(states)[:, st.STATUS] == st.CHECKMATE,
                        -1.0, 0.0).astype(np.float32)

    def to_play(self, states: np.ndarray) -> np.ndarray:
        return self._batch(states)[:, st.TURN].astype(np.int8)

    def move_number(self, states: np.ndarray) -> np.ndarray:
        states = self._batch(states)
        return (2 * (states[:, st.FULLMOVE] - 1) + states[:, st.TURN]).astype(np.int32)

    def observation(self, states: np.ndarray) -> np.ndarray:
        """[B, S] -> float32 [B, 119, 8, 8] (the planes in the module docstring)."""
        states = self._batch(states)
        b = len(states)
        # positions [B, 8, 9]: t = 0 the current position, t = 1..7 the ones before it.
        positions = np.empty((b, HISTORY_POSITIONS, st.HISTORY_WIDTH), dtype=np.int64)
        positions[:, 0, :8] = states[:, st.BOARD:st.BOARD + 8]
        positions[:, 0, 8] = states[:, st.REPS]
        positions[:, 1:] = states[:, st.HISTORY:].reshape(b, st.HISTORY_STEPS, st.HISTORY_WIDTH)
        boards = positions[:, :, :8].view(np.uint64)                       # [B, 8, 8]
        black = states[:, st.TURN] == 1
        sides = boards[:, :, 6:8].copy()                    # [B, 8, 2]: (own, opponent) pieces
        sides[black] = sides[black][:, :, ::-1]
        # [B, 8, 2, 6] -> [B, 8, 12]: own P N B R Q K, then the opponent's.
        planes = (boards[:, :, None, :6] & sides[:, :, :, None]).reshape(b, HISTORY_POSITIONS, 12)
        planes[black] = planes[black].byteswap()          # mirror ranks: byte r is rank r + 1
        bits = np.unpackbits(planes.view(np.uint8).reshape(b, HISTORY_POSITIONS, 12, 8),
                             axis=-1, bitorder="little")                   # [B, 8, 12, 64]
        out = np.empty((b, NUM_PLANES, 8, 8), dtype=np.float32)          # every plane is set
        per_position = out[:, :HISTORY_POSITIONS * PLANES_PER_POSITION].reshape(
            b, HISTORY_POSITIONS, PLANES_PER_POSITION, 64)
        per_position[:, :, :12] = bits
        reps = positions[:, :, 8]                                          # [B, 8]
        per_position[:, :, 12:] = (reps[:, :, None] >= _REPETITION_PLANES).astype(
            np.float32)[:, :, :, None]
        constants = np.empty((b, 7), dtype=np.float32)      # planes 112..118, one value each
        constants[:, 0] = black
        # At most 1: self-play stops at the cap, but a FEN (azero uci) may start past it.
        constants[:, 1] = np.minimum(self.move_number(states) / self.spec.max_game_length, 1.0)
        castling = states[:, st.CASTLING].view(np.uint64)
        constants[:, 2:6] = (castling[:, None] & _CASTLING_BITS[black.view(np.uint8)]) != 0
        constants[:, 6] = states[:, st.HALFMOVE] / st.FIFTY_MOVE_PLIES
        out[:, HISTORY_POSITIONS * PLANES_PER_POSITION:] = constants[:, :, None, None]
        return out

    # ---------------------------------------------------------------- symmetries (identity only)

    def transform_states(self, states: np.ndarray, k: int) -> np.ndarray:
        self._symmetry_indices(k, 1)
        return self._batch(states).copy()

    def transform_observations(self, obs: np.ndarray, k: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        self._symmetry_indices(k, len(obs))
        return obs.copy()

    # ---------------------------------------------------------------- notation and display

    def parse_action(self, state: np.ndarray, text: str) -> int:
        """A move in SAN ("Nf3", "O-O", "e8=Q") or UCI ("g1f3", "e1g1", "e7e8q") -> action.
        ValueError with the reason; IllegalActionError (naming the legal moves) for a
        well-formed move that is not legal here."""
        state = self._single(state)
        text = str(text).strip()
        if not text:
            raise ValueError(f"empty move; {_MOVE_HELP}")
        if state[st.STATUS] != st.ONGOING:
            raise IllegalActionError(f"the game is over ({self.status(state)})")
        board = st.board_of(state)
        move = None
        try:
            move = board.parse_uci(text.lower() if len(text) in (4, 5) else text)
        except chess.IllegalMoveError:
            pass
        except ValueError:
            move = _parse_san(board, text)
        if move is not None and not move:
            # python-chess reads "0000" (UCI) and "--", "Z0" (SAN) as the null move, a pass
            # without legality check: chess has no such move.
            raise ValueError(f"{text!r} is a null move (a pass), which chess does not have; "
                             f"{_MOVE_HELP}")
        if move is None:
            legal = " ".join(sorted(board.san(m) for m in board.legal_moves))
            raise IllegalActionError(f"{text!r} is not legal here; legal moves: {legal}")
        return encoding.encode(move.from_square, move.to_square, move.promotion,
                               board.turn == chess.BLACK)

    def format_action(self, state: np.ndarray, action: int) -> str:
        """The legal move `action` in SAN ("Nf3", "O-O", "exd8=N+"). ValueError if illegal."""
        board = self.board_of(state)
        move = _move_of_action(board, int(action))
        if move is None:
            raise ValueError(f"action {action} is not a legal move in {board.fen()}")
        return board.san(move)

    def render(self, state: np.ndarray, last_action: int | None = None, color: bool = False) -> str:
        """Unicode board, rank 8 on top, the squares of the last move in brackets (reverse video
        with `color`), then who moves and the game's status."""
        state = self._single(state)
        board = st.board_of(state)
        marked = set()
        if last_action is not None and 0 <= int(last_action) < NUM_ACTIONS:
            mover_was_black = board.turn == chess.WHITE           # the move led to this position
            frm, to, _ = encoding.decode(int(last_action), mover_was_black)
            marked = {frm, to}
        lines = []
        for rank in range(7, -1, -1):
            cells = []
            for file in range(8):
                square = chess.square(file, rank)
                piece = board.piece_at(square)
                glyph = piece.unicode_symbol() if piece else "·"
                if square in marked:
                    cells.append(f"\x1b[7m {glyph} \x1b[0m" if color else f"[{glyph}]")
                else:
                    cells.append(f" {glyph} ")
            lines.append(f"{rank + 1} " + "".join(cells))
        lines.append("   " + "".join(f" {f} " for f in "abcdefgh"))
        over = self.status(state)
        side = "white" if board.turn == chess.WHITE else "black"
        lines.append(f"{side} to move" + (" (in check)" if board.is_check() else "")
                     + (f"; game over: {over}" if over else ""))
        return "\n".join(lines)

    def describe(self, state: np.ndarray) -> str:
        state = self._single(state)
        over = self.status(state)
        return f"position {st.board_of(state).fen()}" + (f" ({over})" if over else "")

    def _illegal_reason(self, state: np.ndarray, action: int) -> str:
        if state[st.STATUS] != st.ONGOING:
            return f"the game is over ({self.status(state)})"
        if not 0 <= action < NUM_ACTIONS:
            return f"actions are 0..{NUM_ACTIONS - 1}"
        return "no legal move has this action here"


def _parse_san(board: chess.Board, text: str) -> chess.Move | None:
    """A move in SAN, also typed in lower case ("nf3", "o-o"; "bxc3" is the b-pawn's capture
    where that is legal, else the bishop's) -> the move; None for a well-formed move that is
    not legal here; ValueError for an ambiguous move or one that is no SAN."""
    spellings = [text]
    if text[:1] in "nbrqk":
        spellings.append(text[0].upper() + text[1:])
    elif text[:3] in ("o-o", "0-0"):
        spellings.append(text.upper())
    well_formed = False
    for san in spellings:
        try:
            return board.parse_san(san)
        except chess.AmbiguousMoveError:
            raise ValueError(f"{text!r} is ambiguous here; name the piece's file or rank "
                             f"(e.g. Nbd2) or write it in UCI") from None
        except chess.IllegalMoveError:
            well_formed = True
        except ValueError:
            pass
    if well_formed:
        return None
    raise ValueError(f"{text!r} is not a move; {_MOVE_HELP}")


def _invalid(board: chess.Board) -> str:
    """What makes `board` an impossible position (no king, the side not to move in check,
    castling rights without their rook, ...) or one the state row cannot hold (huge move
    counters), in words; "" if nothing."""
    status = board.status()
    problems = [flag.name.lower().replace("_", " ") for flag in chess.Status
                if flag and flag in status]
    if max(board.halfmove_clock, board.fullmove_number) > MAX_FEN_COUNTER:
        # The row holds them as int64 and move_number as int32: a larger number would overflow
        # (an OverflowError, or a negative move number).
        problems.append(f"the halfmove clock and the move number must be at most "
                        f"{MAX_FEN_COUNTER}")
    return ", ".join(problems)


def _move_of_action(board: chess.Board, action: int) -> chess.Move | None:
    """The legal move of `board` that `action` encodes, or None."""
    if not 0 <= action < NUM_ACTIONS:
        return None
    frm, to, under = encoding.decode(action, board.turn == chess.BLACK)
    if to < 0:
        return None
    promotion = under or None
    if not under and (board.pawns >> frm) & 1 and to >> 3 in (0, 7):
        promotion = chess.QUEEN                   # a pawn's plain move onto the last rank
    move = chess.Move(frm, to, promotion)
    return move if board.is_legal(move) else None


def _legal_actions(board: chess.Board) -> list[int]:
    """The actions of every legal move of `board` (a live position)."""
    turn = board.turn
    action_of = _ACTION_OF_SQUARES[turn]
    if board.pawns & board.occupied_co[turn] & _PROMOTING_RANK[turn]:      # may underpromote
        black = turn == chess.BLACK
        return [encoding.encode(m.from_square, m.to_square, m.promotion, black)
                for m in board.generate_legal_moves()]
    return [action_of[m.from_square * 64 + m.to_square] for m in board.generate_legal_moves()]


# Indexed by board.turn (False = black): the action of a move that does not underpromote, as a
# list over from_square * 64 + to_square in board squares (encoding.ACTION_OF in the mover's
# view, the squares mirrored for black); and the rank from which the mover's pawns promote.
_MIRROR = np.arange(64) ^ 56
_ACTION_OF_SQUARES = (
    encoding.ACTION_OF.reshape(64, 64)[_MIRROR[:, None], _MIRROR].ravel().tolist(),
    encoding.ACTION_OF.tolist())
_PROMOTING_RANK = (chess.BB_RANK_2, chess.BB_RANK_7)
