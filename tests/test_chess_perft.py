"""Perft through our encoding (azero/bench/perft.py: legal_mask, step's decoding of actions): the
six standard positions of the Chess Programming Wiki
(https://www.chessprogramming.org/Perft_Results) exact to depth 3 here, to depth 4 in the slow
run (`pytest -m slow tests/test_chess_perft.py`);
perft's convention of counting through positions drawn by repetition, fifty moves or insufficient
material; and perft over a game that is not chess, against OpenSpiel."""
import json

import numpy as np
import pytest

chess = pytest.importorskip("chess")

from azero import games  # noqa: E402
from azero.bench.perft import divide, perft, perft_game  # noqa: E402
from azero.cli import main  # noqa: E402

START = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"
KIWIPETE = "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1"
# name -> (FEN, perft 1..4), from the wiki's Perft Results page.
POSITIONS = {
    "start": (START, (20, 400, 8902, 197281)),
    "kiwipete": (KIWIPETE, (48, 2039, 97862, 4085603)),
    "position3": ("8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1", (14, 191, 2812, 43238)),
    "position4": ("r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1",
                  (6, 264, 9467, 422333)),
    "position5": ("rnbq1k1r/pp1Pbppp/2p5/8/2B5/8/PPP1NnPP/RNBQK2R w KQ - 1 8",
                  (44, 1486, 62379, 2103487)),
    "position6": ("r4rk1/1pp1qppp/p1np1n2/2b1p1B1/2B1P1b1/P1NP1N2/1PP1QPPP/R4RK1 w - - 0 10",
                  (46, 2079, 89890, 3894594)),
}


@pytest.fixture(scope="module")
def game():
    return perft_game(games.make("chess"))


def reference_perft(board: chess.Board, depth: int) -> int:
    """python-chess's own move generation, no draw rules: the independent count."""
    if depth == 0:
        return 1
    total = 0
    for move in board.legal_moves:
        board.push(move)
        total += reference_perft(board, depth - 1)
        board.pop()
    return total


@pytest.mark.parametrize("name", POSITIONS)
def test_standard_positions_to_depth_3(game, name):
    fen, counts = POSITIONS[name]
    root = game.from_fen(fen)[None]
    assert [perft(game, root, d) for d in (1, 2, 3)] == list(counts[:3])


@pytest.mark.slow
@pytest.mark.parametrize("name", POSITIONS)
def test_standard_positions_to_depth_4(game, name):
    fen, counts = POSITIONS[name]
    assert perft(game, game.from_fen(fen)[None], 4) == counts[3]


def test_batch_size_does_not_change_the_count(game):
    root = game.from_fen(KIWIPETE)[None]
    assert {perft(game, root, 2, batch=b) for b in (1, 7, 48, 4096)} == {2039}
    assert perft(game, root, 0) == 1
    assert perft(game, np.repeat(root, 3, axis=0), 2) == 3 * 2039


def test_divide_splits_the_count_by_first_move(game):
    root = game.from_fen(KIWIPETE)
    split = divide(game, root, 3)
    board = chess.Board(KIWIPETE)
    expected = {}
    for move in board.legal_moves:
        board.push(move)
        expected[move.uci()] = reference_perft(board, 2)
        board.pop()
    assert {game.move_of_action(root, a).uci(): n for a, n in split.items()} == expected
    assert sum(split.values()) == 97862


# Positions one move from an automatic draw: the game ends there, perft counts on.
DRAW_CASES = {
    # any king or rook move that does not take makes the no-progress clock 100
    "fifty moves": ("4k3/8/8/8/8/8/8/R3K3 w Q - 99 80", 3),
    # Kxd2 or Nxd2 leaves king and knight against king
    "insufficient material": ("4k3/8/8/8/8/8/3p4/4KN2 w - - 0 1", 3),
}


@pytest.mark.parametrize("case", DRAW_CASES)
def test_perft_counts_through_draws_by_rule(case):
    fen, depth = DRAW_CASES[case]
    expected = reference_perft(chess.Board(fen), depth)
    ruled = games.make("chess")
    assert perft(perft_game(ruled), perft_game(ruled).from_fen(fen)[None], depth) == expected
    # The played game ends at those positions, so counting on it falls short: the variant matters.
    assert perft(ruled, ruled.from_fen(fen)[None], depth) < expected


def test_perft_counts_through_threefold_repetition():
    board = chess.Board()
    for san in "Nf3 Nf6 Ng1 Ng8 Nf3 Nf6 Ng1".split():
        board.push_san(san)                     # ...Ng8 now is the start position's third time
    expected = reference_perft(board, 2)
    ruled = games.make("chess")
    variant = perft_game(ruled)
    assert perft(variant, variant.from_board(board)[None], 2) == expected
    # In the played game ...Ng8 ends it: the start position's 20 replies are not counted.
    assert perft(ruled, ruled.from_board(board)[None], 2) == expected - 20


def test_a_game_without_a_variant_counts_terminal_positions_as_leaves():
    """Connect Four (no perft_variant): a win ends the line. Counted against OpenSpiel."""
    pyspiel = pytest.importorskip("pyspiel")
    game = games.make("connect4")
    assert perft_game(game) is game
    moves = "4 4 3 3 5 5"                       # the first player wins next move at 2 or 6
    state = game.initial_states(1)[0]
    spiel = pyspiel.load_game("connect_four").new_initial_state()
    for text in moves.split():
        action = game.parse_action(state, text)
        state = game.step(state[None], np.array([action]))[0]
        spiel.apply_action(action)

    def spiel_perft(s, depth):
        if depth == 0:
            return 1
        return sum(spiel_perft(s.child(a), depth - 1) for a in s.legal_actions())

    for depth in (1, 2, 3, 4):
        assert perft(game, state[None], depth) == spiel_perft(spiel, depth)
    assert perft(game, state[None], 2) < 7 * 7                       # the wins have no children


def bench_json(capsys, *argv) -> dict[str, float]:
    assert main(["bench", "perft", *argv, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return {row["name"]: row["value"] for row in rows}


def test_cli_counts_a_fen_and_reports_time_and_rate(capsys):
    rows = bench_json(capsys, "--game", "chess", "--fen", KIWIPETE, "--depth", "2")
    assert rows["chess perft depth 2"] == 2039
    assert rows["chess perft depth 2, time"] > 0
    assert rows["chess perft depth 2, leaf nodes per second"] == pytest.approx(
        2039 / rows["chess perft depth 2, time"])


def test_cli_default_root_moves_and_divide(capsys):
    assert bench_json(capsys, "--game", "chess", "--depth", "3")["chess perft depth 3"] == 8902
    rows = bench_json(capsys, "--game", "chess", "--moves", "e4 e5", "--depth", "2", "--divide")
    board = chess.Board()
    board.push_san("e4")
    board.push_san("e5")
    assert rows["chess perft depth 2"] == reference_perft(board, 2)
    board.push_san("Nf3")
    assert rows["chess perft depth 2, after Nf3"] == board.legal_moves.count()


@pytest.mark.parametrize("argv, message", [
    (["--game", "chess", "--fen", "rnbqkbnr/pppppppp/8 w"], "bad FEN"),
    (["--game", "chess", "--moves", "e4 e4"], "not legal here"),
    (["--game", "connect4", "--fen", START], "no FEN positions"),
    (["--game", "chess", "--depth", "-1"], "--depth must be >= 0"),
])
def test_cli_bad_input_is_one_line(capsys, argv, message):
    assert main(["bench", "perft", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
