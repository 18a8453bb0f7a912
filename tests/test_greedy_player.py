"""The 1-ply greedy player (azero/players/greedy_player.py) with chess's move measure
(games/chess/greedy.py): mate in one first, else the most material, ties at random by its seed."""
import numpy as np
import pytest

chess = pytest.importorskip("chess")

from azero.arena import MatchConfig, play_match  # noqa: E402
from azero.games import make  # noqa: E402
from azero.games.chess.game import Chess  # noqa: E402
from azero.players import PlayerSpecError, make_player  # noqa: E402

GAME = make("chess")


def greedy_moves(fen: str, seeds=range(8)) -> set[str]:
    """The moves greedy players of several seeds choose in a position (UCI)."""
    state = GAME.from_fen(fen)
    chosen = set()
    for seed in seeds:
        player = make_player("greedy", GAME, seed=seed)
        player.begin(1)
        action = int(player.act(state[None], np.array([True])).actions[0])
        chosen.add(GAME.move_of_action(state, action).uci())
    return chosen


def test_takes_the_most_valuable_piece():
    # e4 can take the queen on d5 or the knight on f5; the knight on a3 can take the pawn on b5.
    assert greedy_moves("4k3/8/8/1p1q1n2/4P3/N7/8/4K3 w - - 0 1") == {"e4d5"}


def test_takes_the_queen_as_black_too():
    # Black's rook can take the queen on a1 or the knight on h4 (the view is mirrored for Black).
    assert greedy_moves("k7/8/8/8/r6N/8/8/Q3K3 b - - 0 1") == {"a4a1"}


def test_prefers_mate_in_one_to_the_queen():
    fen = "6k1/3p1ppp/8/8/8/7q/8/RK4N1 w - - 0 1"      # Ra8# or Nxh3 winning the queen
    board = chess.Board(fen)
    board.push_uci("a1a8")
    assert board.is_checkmate()
    assert greedy_moves(fen) == {"a1a8"}


def test_counts_a_promotion_and_en_passant():
    # a7xb8=Q gains the rook and the queen less the pawn (5 + 8), a7a8=Q only 8.
    assert greedy_moves("1r5k/P7/8/8/8/8/8/K7 w - - 0 1") == {"a7b8q"}
    # en passant wins a pawn; every other move wins nothing
    assert greedy_moves("4k3/8/8/3pP3/8/8/8/4K3 w - d6 0 1") == {"e5d6"}


def test_breaks_ties_at_random_and_is_repeatable_given_its_seed():
    start = chess.STARTING_FEN                      # 20 moves, none wins anything
    assert len(greedy_moves(start, seeds=range(12))) > 3

    def game_of(seed):
        short = Chess(max_game_length=30)
        a = make_player("greedy", short, seed=seed)
        b = make_player("greedy", short, seed=seed + 100)
        return [r.moves for r in play_match(short, a, b, MatchConfig(games=2, in_flight=2,
                                                                     opening_plies=0)).records]

    assert game_of(1) == game_of(1)
    assert game_of(1) != game_of(2)


def test_greedy_beats_random():
    short = Chess(max_game_length=120)
    result = play_match(short, make_player("greedy", short, seed=1),
                        make_player("random", short, seed=2),
                        MatchConfig(games=4, in_flight=4, opening_plies=2, seed=5))
    assert result.stats.losses == 0 and result.stats.wins >= 1


def test_a_game_without_the_measure_is_a_clear_error():
    with pytest.raises(PlayerSpecError, match="connect4 has no move measure.*greedy_scores.*chess"):
        make_player("greedy", make("connect4"))
