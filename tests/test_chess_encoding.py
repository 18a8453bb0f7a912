"""The 8x8x73 action encoding (games/chess/encoding.py) on every legal move of thousands of random
positions: move -> action -> move and action -> move -> action are identities, the legal mask is
exactly the set of encoded legal moves, and every action id equals PettingZoo's
(pettingzoo/classic/chess/chess_utils.py, loaded by its file path: importing pettingzoo.classic
pulls in every classic game's dependencies). PettingZoo is in the dev extra, so this never skips
where the dev install is done. The sample is checked to contain promotions, underpromotions,
castling on both sides and en passant, for both colours."""
import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

chess = pytest.importorskip("chess")

from azero import games  # noqa: E402

# Playouts start from these (besides the start position): positions rich in castling,
# promotions and en passant for either side (the wiki's perft positions 2, 4 and 4 mirrored, 5).
ROOTS = [
    chess.STARTING_FEN,
    "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
    "r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1",
    "r2q1rk1/pP1p2pp/Q4n2/bbp1p3/Np6/1B3NBn/pPPP1PPP/R3K2R b KQ - 0 1",
    "rnbq1k1r/pp1Pbppp/2p5/8/2B5/8/PPP1NnPP/RNBQK2R w KQ - 1 8",
]


def pettingzoo_chess_utils():
    """PettingZoo's chess_utils module, loaded from its file (it imports only chess and numpy)."""
    spec = importlib.util.find_spec("pettingzoo")
    if spec is None:
        raise AssertionError('pettingzoo is missing: pip install -e ".[dev]"')
    path = Path(spec.origin).parent / "classic" / "chess" / "chess_utils.py"
    module_spec = importlib.util.spec_from_file_location("pettingzoo_chess_utils", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def random_positions(game, games_per_root: int, plies: int, seed: int) -> np.ndarray:
    """[N, S]: every position of random playouts (uniform legal moves), `games_per_root` from
    each root, `plies` moves each or until the game ends; batched through game.step_with_info."""
    rng = np.random.default_rng(seed)
    roots = np.stack([game.from_fen(fen) for fen in ROOTS])
    states = np.repeat(roots, games_per_root, axis=0)
    mask = game.legal_mask(states)
    seen = [states]
    for _ in range(plies):
        live = np.flatnonzero(mask.any(axis=1))
        if len(live) == 0:
            break
        actions = np.array([rng.choice(np.flatnonzero(mask[i])) for i in live])
        states, mask, _, _ = game.step_with_info(states[live], actions)
        seen.append(states)
    return np.concatenate(seen)


def kinds(board: chess.Board, move: chess.Move) -> list[str]:
    colour = "white" if board.turn == chess.WHITE else "black"
    out = []
    if move.promotion == chess.QUEEN:
        out.append("promotion")
    elif move.promotion:
        out.append(f"underpromotion {chess.piece_name(move.promotion)}")
    if board.is_kingside_castling(move):
        out.append("castling king side")
    if board.is_queenside_castling(move):
        out.append("castling queen side")
    if board.is_en_passant(move):
        out.append("en passant")
    return [f"{k}, {colour}" for k in out]


@pytest.fixture(scope="module")
def game():
    return games.make("chess")


@pytest.fixture(scope="module")
def sample(game):
    return random_positions(game, games_per_root=12, plies=60, seed=0)


def test_every_legal_move_round_trips_and_the_mask_is_exact(game, sample):
    assert len(sample) > 3000
    masks = game.legal_mask(sample)
    seen = Counter()
    moves = 0
    for state, mask in zip(sample, masks):
        board = game.board_of(state)
        legal = list(board.legal_moves)
        actions = [game.action_of_move(state, move) for move in legal]
        where = board.fen()
        assert sorted(actions) == np.flatnonzero(mask).tolist(), where   # also: no two collide
        for move, action in zip(legal, actions):
            assert game.move_of_action(state, action) == move, (where, move)
            seen.update(kinds(board, move))
        moves += len(legal)
    assert moves > 50_000
    for colour in ("white", "black"):
        for kind in ("promotion", "underpromotion knight", "underpromotion bishop",
                     "underpromotion rook", "castling king side", "castling queen side",
                     "en passant"):
            assert seen[f"{kind}, {colour}"] > 0, (kind, colour, seen)


def test_every_legal_action_decodes_and_encodes_back(game, sample):
    for state, mask in zip(sample[::3], game.legal_mask(sample[::3])):
        for action in np.flatnonzero(mask):
            move = game.move_of_action(state, action)
            assert game.action_of_move(state, move) == action


def test_action_ids_equal_pettingzoo(game, sample):
    utils = pettingzoo_chess_utils()
    for state in sample[::2]:
        board = game.board_of(state)
        black = board.turn == chess.BLACK
        # PettingZoo encodes black's moves on the mirrored board; legal_moves fills its table.
        assert sorted(utils.legal_moves(board)) == sorted(
            game.action_of_move(state, m) for m in board.legal_moves), board.fen()
        for move in board.legal_moves:
            seen_as = utils.mirror_move(move) if black else move
            action = utils.moves_to_actions[seen_as.uci()]
            assert game.action_of_move(state, move) == action, (board.fen(), move)
            assert game.move_of_action(state, action) == utils.action_to_move(
                board, action, int(black)), (board.fen(), move)


def test_illegal_moves_and_actions_are_refused(game):
    state = game.from_fen(chess.STARTING_FEN)
    with pytest.raises(games.IllegalActionError, match="e2e5 is not a legal move"):
        game.action_of_move(state, chess.Move.from_uci("e2e5"))
    legal = set(np.flatnonzero(game.legal_mask(state[None])[0]).tolist())
    for action in (-1, 4672, *sorted(set(range(0, 4672, 37)) - legal)):
        with pytest.raises(games.IllegalActionError):
            game.move_of_action(state, action)
