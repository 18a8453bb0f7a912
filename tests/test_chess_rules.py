"""Targeted chess rules through the game's API (games/chess): castling, en passant, promotion,
the endings (checkmate, stalemate, threefold repetition, fifty moves, insufficient material),
FEN errors, from_board's replayed history, the observation's point of view and move notation."""
import numpy as np
import pytest

chess = pytest.importorskip("chess")

from azero import games  # noqa: E402
from azero.games import IllegalActionError  # noqa: E402


@pytest.fixture(scope="module")
def game():
    return games.make("chess")


def play(game, state, *moves):
    """state [S] after `moves` (SAN or UCI, through parse_action and step)."""
    for text in moves:
        action = game.parse_action(state, text)
        state = game.step(state[None], np.array([action]))[0]
    return state


def legal_uci(game, state) -> set[str]:
    return {game.move_of_action(state, a).uci()
            for a in np.flatnonzero(game.legal_mask(state[None])[0])}


def over(game, state) -> tuple[bool, float, str]:
    row = state[None]
    return bool(game.terminal(row)[0]), float(game.result(row)[0]), game.status(state)


# ------------------------------------------------------------------ castling

CASTLE = "r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1"


@pytest.mark.parametrize("side, uci, san, king, rook", [
    ("white", "e1g1", "O-O", chess.G1, chess.F1),
    ("white", "e1c1", "O-O-O", chess.C1, chess.D1),
    ("black", "e8g8", "O-O", chess.G8, chess.F8),
    ("black", "e8c8", "O-O-O", chess.C8, chess.D8),
])
def test_castling_both_sides_both_colours(game, side, uci, san, king, rook):
    state = game.from_fen(CASTLE if side == "white" else CASTLE.replace(" w ", " b "))
    action = game.parse_action(state, san)
    assert game.parse_action(state, uci) == action
    assert game.move_of_action(state, action).uci() == uci         # the king's move, e1g1
    assert game.format_action(state, action) == san
    # The mover's view: black's castling is white's mirrored, the same action id.
    mirrored = game.from_fen(CASTLE)
    assert action == game.parse_action(mirrored, uci[0] + "1" + uci[2] + "1")
    board = game.board_of(play(game, state, san))
    colour = chess.WHITE if side == "white" else chess.BLACK
    assert board.piece_at(king) == chess.Piece(chess.KING, colour)
    assert board.piece_at(rook) == chess.Piece(chess.ROOK, colour)
    assert not board.has_castling_rights(colour)


def test_castling_through_into_or_out_of_check_is_illegal(game):
    # f1 attacked by the rook on f8: no O-O; the queen side is free.
    state = game.from_fen("4kr2/8/8/8/8/8/8/R3K2R w KQ - 0 1")
    assert "e1g1" not in legal_uci(game, state) and "e1c1" in legal_uci(game, state)
    with pytest.raises(IllegalActionError, match="legal moves"):
        game.parse_action(state, "O-O")
    # g1 attacked (into check) and the king in check (out of check).
    assert "e1g1" not in legal_uci(game, game.from_fen("4k1r1/8/8/8/8/8/8/R3K2R w KQ - 0 1"))
    in_check = legal_uci(game, game.from_fen("4r1k1/8/8/8/8/8/8/R3K2R w KQ - 0 1"))
    assert not {"e1g1", "e1c1"} & in_check
    # b1 attacked does not matter (the king does not cross it); a piece on b1 does.
    assert "e1c1" in legal_uci(game, game.from_fen("1r2k3/8/8/8/8/8/8/R3K2R w KQ - 0 1"))
    assert "e1c1" not in legal_uci(game, game.from_fen("4k3/8/8/8/8/8/8/RN2K2R w KQ - 0 1"))


# ------------------------------------------------------------------ en passant

@pytest.mark.parametrize("fen, uci, taken", [
    ("4k3/8/8/3pP3/8/8/8/4K3 w - d6 0 2", "e5d6", chess.D5),
    ("4k3/8/8/8/3Pp3/8/8/4K3 b - d3 0 2", "e4d3", chess.D4),
])
def test_en_passant_both_colours(game, fen, uci, taken):
    state = game.from_fen(fen)
    assert uci in legal_uci(game, state)
    board = game.board_of(play(game, state, uci))
    assert board.piece_at(taken) is None
    assert board.piece_at(chess.parse_square(uci[2:])).piece_type == chess.PAWN


def test_en_passant_right_after_the_double_push_only(game):
    state = play(game, game.from_fen("4k3/3p4/8/4P3/8/8/8/4K2N b - - 0 1"), "d7d5")
    assert "e5d6" in legal_uci(game, state)
    later = play(game, state, "h1g3", "e8e7")
    assert "e5d6" not in legal_uci(game, later)


def test_pinned_en_passant_is_illegal(game):
    # b5xc6 e.p. would empty the fifth rank between the king on a5 and the rook on h5.
    pinned = game.from_fen("8/8/8/KPp4r/8/8/8/4k3 w - c6 0 2")
    assert "b5c6" not in legal_uci(game, pinned)
    assert "b5c6" in legal_uci(game, game.from_fen("8/8/8/KPp5/8/8/8/4k3 w - c6 0 2"))


# ------------------------------------------------------------------ promotion

@pytest.mark.parametrize("fen, base", [
    ("1n5k/P7/8/8/8/8/7p/K5N1 w - - 0 1", "a7"),
    ("1n5k/P7/8/8/8/8/7p/K5N1 b - - 0 1", "h2"),
])
def test_promotion_and_underpromotion(game, fen, base):
    state = game.from_fen(fen)
    white = base == "a7"
    targets = ["a8", "b8"] if white else ["h1", "g1"]        # a push and a capture
    actions = set()
    for target in targets:
        for piece in "qrbn":
            uci = base + target + piece
            action = game.parse_action(state, uci)
            assert game.move_of_action(state, action).uci() == uci
            actions.add(action)
            board = game.board_of(play(game, state, uci))
            promoted = board.piece_at(chess.parse_square(target))
            assert promoted.symbol() == (piece.upper() if white else piece)
    assert len(actions) == 8                                 # eight distinct actions
    # SAN: "=Q" and the UCI without the letter both mean the queen.
    san = f"{targets[0]}=Q"
    assert game.parse_action(state, san) == game.parse_action(state, base + targets[0] + "q")
    with pytest.raises(ValueError):
        game.parse_action(state, base + targets[0])          # a promotion needs its piece


# ------------------------------------------------------------------ endings

def test_checkmate_gives_the_side_to_move_minus_one(game):
    state = play(game, game.initial_states(1)[0], "f3", "e5", "g4")
    assert over(game, state) == (False, 0.0, "")
    action = game.parse_action(state, "Qh4")
    out, mask, terminal, result = game.step_with_info(state[None], np.array([action]))
    assert over(game, out[0]) == (True, -1.0, "checkmate")         # white to move, mated
    assert terminal[0] and result[0] == -1.0 and not mask.any()
    assert game.to_play(out)[0] == 0
    # Black mated: the result is again -1, for black.
    black_mated = play(game, game.initial_states(1)[0], "e4", "f6", "d4", "g5", "Qh5")
    assert over(game, black_mated) == (True, -1.0, "checkmate")
    assert game.to_play(black_mated[None])[0] == 1


def test_stalemate_is_a_draw(game):
    state = game.from_fen("7k/8/6K1/8/8/8/5Q2/8 w - - 0 1")
    assert over(game, play(game, state, "Qf7")) == (True, 0.0, "stalemate")
    assert not game.legal_mask(play(game, state, "Qf7")[None]).any()


def test_threefold_repetition(game):
    start = game.initial_states(1)[0]
    tour = ["Nf3", "Nf6", "Ng1", "Ng8"]
    twice = play(game, start, *tour)                 # the start position, second time
    assert over(game, twice) == (False, 0.0, "")
    assert game.observation(twice[None])[0, 12].all()          # "occurred before once" plane
    almost = play(game, twice, *tour[:3])
    assert not game.terminal(almost[None])[0]
    thrice = play(game, almost, tour[3])
    assert over(game, thrice) == (True, 0.0, "threefold repetition")


def test_a_position_with_other_castling_rights_is_not_the_same(game):
    # The rook's tour h1-g1-h1 loses white's king-side right: the root's placement comes back
    # after each tour, with other rights, so the root is not one of its occurrences.
    root = game.from_fen("1n2k3/8/8/8/8/8/8/R3K2R w KQ - 0 1")
    tour = ["Rg1", "Nc6", "Rh1", "Nb8"]
    twice = play(game, root, *tour, *tour)          # the placement's third time, rights' second
    assert over(game, twice) == (False, 0.0, "")
    # The position after Rg1 had the same rights each time: its third time ends the game.
    assert over(game, play(game, twice, "Rg1")) == (True, 0.0, "threefold repetition")


def test_fifty_move_rule(game):
    state = game.from_fen("4k3/8/8/8/8/8/P7/R3K3 w - - 99 80")
    assert over(game, play(game, state, "Rb1")) == (True, 0.0, "fifty-move rule")
    assert over(game, play(game, state, "a3")) == (False, 0.0, "")          # a pawn move resets
    assert game.board_of(play(game, state, "a3")).halfmove_clock == 0
    assert not game.terminal(game.from_fen("4k3/8/8/8/8/8/P7/R3K3 w - - 98 80")[None])[0]
    # A mate on the hundredth ply is a mate.
    mate = game.from_fen("6k1/5ppp/8/8/8/8/8/R5K1 w - - 99 80")
    assert over(game, play(game, mate, "Ra8")) == (True, -1.0, "checkmate")


@pytest.mark.parametrize("fen, insufficient", [
    ("4k3/8/8/8/8/8/8/4K3 w - - 0 1", True),                 # K v K
    ("4k3/8/8/8/8/8/8/4KN2 w - - 0 1", True),                # K+N v K
    ("4k3/8/8/8/8/8/8/4KB2 w - - 0 1", True),                # K+B v K
    ("4kb2/8/8/8/8/8/8/2B1K3 w - - 0 1", True),              # bishops on one colour (c1, f8)
    ("4k1b1/8/8/8/8/8/8/2B1K3 w - - 0 1", False),            # opposite colours (c1, g8)
    ("4kn2/8/8/8/8/8/8/4KN2 w - - 0 1", False),              # K+N v K+N (helpmate exists)
    ("4k3/8/8/8/8/8/8/3NKN2 w - - 0 1", False),              # two knights
    ("4k3/8/8/8/8/8/8/4KR2 w - - 0 1", False),
    ("4k3/8/8/8/8/8/4P3/4K3 w - - 0 1", False),
])
def test_insufficient_material(game, fen, insufficient):
    assert over(game, game.from_fen(fen)) == (
        (True, 0.0, "insufficient material") if insufficient else (False, 0.0, ""))


def test_a_capture_into_insufficient_material_ends_the_game(game):
    state = game.from_fen("4k3/8/8/8/8/8/3p4/4KN2 w - - 0 1")
    assert over(game, play(game, state, "Kxd2")) == (True, 0.0, "insufficient material")
    assert over(game, play(game, state, "Ke2")) == (False, 0.0, "")


# ------------------------------------------------------------------ FEN and from_board

@pytest.mark.parametrize("fen, message", [
    ("rnbqkbnr/pppppppp/8 w", "bad FEN"),
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR x KQkq - 0 1", "bad FEN"),
    ("", "bad FEN"),
    ("8/8/8/8/8/8/8/4K3 w - - 0 1", "no black king"),
    ("4k3/4R3/8/8/8/8/8/4K3 w - - 0 1", "opposite check"),
    ("P3k3/8/8/8/8/8/8/4K3 w - - 0 1", "pawns on backrank"),
    # counters too large for the row (an OverflowError) or for move_number (int32, wrapped)
    ("4k3/8/8/8/8/8/8/4K3 w - - 0 99999999999999999999999", "move number must be at most"),
    ("4k3/8/8/8/8/8/8/4K3 w - - 99999999999999999999 1", "move number must be at most"),
    ("4k3/8/8/8/8/8/8/4K3 w - - 0 2000000000", "move number must be at most"),
])
def test_from_fen_errors_say_what_is_wrong(game, fen, message):
    with pytest.raises(ValueError, match=message):
        game.from_fen(fen)


def test_from_fen_round_trips(game):
    fen = "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 3 17"
    assert game.fen(game.from_fen(fen)) == fen
    late = game.from_fen("4k3/8/8/8/8/8/8/4K2R b - - 7 536870912")     # the largest move number
    assert game.move_number(late[None])[0] == 2 * (536870912 - 1) + 1
    assert game.fen(game.initial_states(1)[0]) == chess.STARTING_FEN


@pytest.mark.parametrize("fen, message", [
    ("8/8/8/8/8/8/8/8 w - - 0 1", "no white king"),           # was a 'stalemate'
    ("4k3/8/8/8/8/8/8/4K3 w KQ - 0 1", "bad castling rights"),  # castling planes set, no rook
    ("4k3/8/8/8/8/8/8/R3K2R w KQ e3 0 1", "invalid ep square"),
    ("4k3/8/8/8/8/8/8/4K3 w - - 0 99999999999999999999999", "move number must be at most"),
])
def test_from_board_refuses_an_impossible_root_as_from_fen_does(game, fen, message):
    board = chess.Board(fen)                                   # python-chess builds it as given
    with pytest.raises(ValueError, match=message):
        game.from_board(board)
    with pytest.raises(ValueError, match=message):
        game.from_fen(fen)


def test_from_board_replays_the_move_stack(game):
    board = chess.Board()
    for san in "Nf3 Nf6 Ng1 Ng8 Nf3 Nf6 Ng1".split():
        board.push_san(san)
    replayed = game.from_board(board)
    stepped = play(game, game.initial_states(1)[0], *"Nf3 Nf6 Ng1 Ng8 Nf3 Nf6 Ng1".split())
    assert np.array_equal(replayed, stepped)
    assert game.status(play(game, replayed, "Ng8")) == "threefold repetition"
    # From the FEN alone the history is unknown: the same move repeats nothing.
    assert game.status(play(game, game.from_fen(board.fen()), "Ng8")) == ""


# ------------------------------------------------------------------ observation

def test_black_sees_the_board_rank_mirrored_own_pieces_first(game):
    state = play(game, game.initial_states(1)[0], "e4")          # black to move
    obs = game.observation(state[None])[0]
    own_pawns, own_king, their_pawns, their_king = obs[0], obs[5], obs[6], obs[11]
    # Rows are the mover's ranks 1..8: black's pawns on rank 7 are on the mover's second row.
    assert own_pawns[1].all() and own_pawns.sum() == 8
    assert own_king[0, 4] == 1 and own_king.sum() == 1                 # e8 -> row 0, file e
    assert their_king[7, 4] == 1
    assert their_pawns[6].sum() == 7 and their_pawns[4, 4] == 1       # e4 is black's rank 5
    assert obs[112].all()                                               # black to move
    # The colour-flipped position with white to move gives the same piece planes.
    flipped = game.from_board(game.board_of(state).mirror())
    assert np.array_equal(game.observation(flipped[None])[0, :14], obs[:14])
    assert not game.observation(flipped[None])[0, 112].any()


def test_the_move_number_plane_stays_within_0_1(game):
    # A FEN may start beyond the move cap (a GUI's position at move 300, or 10^6): the plane
    # saturates at 1 instead of feeding the network values the cap never let it see.
    for fen, plane in (("4k3/8/8/8/8/8/8/4K2R w - - 0 129", 256 / 512),
                       ("4k3/8/8/8/8/8/8/4K2R w - - 0 300", 1.0),
                       ("4k3/8/8/8/8/8/8/4K2R b - - 0 1000000", 1.0)):
        obs = game.observation(game.from_fen(fen)[None])[0]
        assert np.all(obs[113] == plane)


def test_castling_planes_are_own_side_first(game):
    state = game.from_fen("r3k2r/8/8/8/8/8/8/R3K2R b Kq - 0 1")        # black to move
    planes = game.observation(state[None])[0, 114:118, 0, 0]
    # own (black) king side, own queen side, then white's: black has q, white has K.
    assert planes.tolist() == [0.0, 1.0, 1.0, 0.0]


# ------------------------------------------------------------------ notation

def test_parse_action_reads_san_and_uci(game):
    start = game.initial_states(1)[0]
    assert game.parse_action(start, "Nf3") == game.parse_action(start, "g1f3")
    assert game.parse_action(start, " e4 ") == game.parse_action(start, "E2E4")
    assert game.format_action(start, game.parse_action(start, "g1f3")) == "Nf3"


def test_an_illegal_move_names_the_legal_moves(game):
    start = game.initial_states(1)[0]
    with pytest.raises(IllegalActionError) as info:
        game.parse_action(start, "e2e5")
    message = str(info.value)
    assert "legal moves:" in message
    for san in ("a3", "Na3", "Nf3", "e4", "h4"):
        assert f" {san}" in message
    with pytest.raises(IllegalActionError, match="legal moves: .*Nf3"):
        game.parse_action(start, "Nf4")


def test_garbage_and_ambiguous_moves_are_value_errors(game):
    start = game.initial_states(1)[0]
    for text in ("", "hello", "e9e4", "Zf3"):
        with pytest.raises(ValueError):
            game.parse_action(start, text)
    two_rooks = game.from_fen("4k3/8/8/8/8/8/8/R4RK1 w - - 0 1")       # Rd1: a1 or f1?
    with pytest.raises(ValueError, match="ambiguous"):
        game.parse_action(two_rooks, "Rd1")
    assert game.move_of_action(two_rooks, game.parse_action(two_rooks, "Rad1")).uci() == "a1d1"


def test_san_typed_in_lower_case(game):
    start = play(game, game.initial_states(1)[0], "e4", "e5")
    for typed, san in (("nf3", "Nf3"), ("qh5", "Qh5"), ("bc4", "Bc4"), ("ke2", "Ke2")):
        assert game.format_action(start, game.parse_action(start, typed)) == san
    with pytest.raises(IllegalActionError, match="legal moves"):
        game.parse_action(start, "nf4")
    # "bxc3" is the b-pawn's capture where it has one (SAN's reading), else the bishop's.
    pawn = game.from_fen("4k3/8/8/8/8/2n5/1P1B4/4K2R w K - 0 1")
    bishop = game.from_fen("4k3/8/8/8/8/2n5/3B4/4K2R w K - 0 1")
    assert game.move_of_action(pawn, game.parse_action(pawn, "bxc3")).uci() == "b2c3"
    assert game.move_of_action(bishop, game.parse_action(bishop, "bxc3")).uci() == "d2c3"
    for typed in ("o-o", "0-0", "O-O"):
        assert game.move_of_action(pawn, game.parse_action(pawn, typed)).uci() == "e1g1"


@pytest.mark.parametrize("text", ["0000", "--", "Z0"])
def test_a_null_move_is_a_value_error_not_an_action(game, text):
    # python-chess parses these as its null move without a legality check; they must not
    # come back as an action (they once came back as -1).
    with pytest.raises(ValueError, match="null move"):
        game.parse_action(game.initial_states(1)[0], text)
