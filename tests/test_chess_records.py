"""PGN records of chess games (games/chess/records.py): written through python-chess, read back
equal, with the seven-tag roster and the way each game ended."""
import io

import numpy as np
import pytest

chess = pytest.importorskip("chess")
import chess.pgn  # noqa: E402

from azero.arena import MatchConfig, run_match  # noqa: E402
from azero.games import make  # noqa: E402
from azero.games.chess.game import Chess  # noqa: E402
from azero.games.chess.records import record_to_pgn, read_pgn_records  # noqa: E402
from azero.players import make_player  # noqa: E402
from azero.records import GameRecord, open_record_writer, read_records, record_format  # noqa: E402

GAME = make("chess")
ROSTER = ["Event", "Site", "Date", "Round", "White", "Black", "Result"]
SCHOLARS_MATE = "e2e4 e7e5 d1h5 b8c6 f1c4 g8f6 h5f7"
KNIGHT_SHUFFLE = "g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1 f6g8"    # the start position a third time


def actions(game, uci: str) -> list[int]:
    state, out = game.initial_states(1), []
    for text in uci.split():
        out.append(game.parse_action(state[0], text))
        state = game.step(state, np.array([out[-1]]))
    return out


def record(moves, result, players=("alice", "bob"), opening_plies=2, **info):
    return GameRecord(game="chess", players=players, moves=moves, result=result,
                      opening_plies=opening_plies, info={"game_index": 4, **info})


def read_one(text: str) -> chess.pgn.Game:
    pgn = chess.pgn.read_game(io.StringIO(text))
    assert pgn is not None and not pgn.errors
    return pgn


def test_round_trip_and_python_chess_reads_the_seven_tags(tmp_path):
    assert record_format("chess").suffix == ".pgn"
    path = tmp_path / "games.pgn"
    recs = [record(actions(GAME, SCHOLARS_MATE), 1.0, match="a vs b"),
            record(actions(GAME, KNIGHT_SHUFFLE), 0.5, players=('say "hi"', "back\\slash"),
                   opening_plies=0, match="a vs b", score_a=0.5)]
    with open_record_writer(GAME, path) as writer:
        for r in recs:
            writer.write(r)
    back = read_records(GAME, path)
    assert [(r.moves, r.players, r.result, r.opening_plies, r.info) for r in back] == \
        [(r.moves, r.players, r.result, r.opening_plies, r.info) for r in recs]

    text = path.read_text()
    mate = read_one(text)
    assert list(mate.headers)[:7] == ROSTER                       # in the roster's order
    assert mate.headers["Event"] == "azero arena: a vs b" and mate.headers["Round"] == "5"
    assert mate.headers["White"] == "alice" and mate.headers["Result"] == "1-0"
    assert mate.headers["Termination"] == "normal" and mate.headers["PlyCount"] == "7"
    assert [m.uci() for m in mate.mainline_moves()] == SCHOLARS_MATE.split()
    assert mate.end().board().is_checkmate() and mate.end().comment == "White mates"
    assert list(mate.mainline())[1].comment == "end of opening"   # after opening_plies = 2
    # Quotes and backslashes in tag values are escaped as the PGN standard says.
    assert '[White "say \\"hi\\""]' in text and '[Black "back\\\\slash"]' in text


def test_a_draw_names_its_rule():
    pgn = read_one(record_to_pgn(GAME, record(actions(GAME, KNIGHT_SHUFFLE), 0.5)))
    assert pgn.headers["Result"] == "1/2-1/2" and pgn.headers["Termination"] == "normal"
    assert pgn.end().comment == "Draw by threefold repetition"


def test_a_self_play_game_cut_off_has_result_star(tmp_path):
    short = Chess(max_game_length=6)
    moves = actions(short, "e2e4 e7e5 g1f3 b8c6 f1c4 f8c5")
    state = short.initial_states(1)
    for a in moves:
        state = short.step(state, np.array([a]))
    assert short.truncated(state)[0] and not short.terminal(state)[0]
    rec = GameRecord(game="chess", players=("gen-3", "gen-3"), moves=moves, result=None,
                     info={"generation": 3, "resigned": False, "truncated": True,
                           "selfplay": True})
    pgn = read_one(record_to_pgn(short, rec))
    assert pgn.headers["Result"] == "*" and pgn.headers["Termination"] == "unterminated"
    assert pgn.headers["Event"] == "azero self-play, generation 3"
    assert pgn.headers["Round"] == "-"
    assert pgn.end().comment == "Cut off at the move cap (6 plies): no result"
    with open_record_writer(short, tmp_path / "sp.pgn") as writer:
        writer.write(rec)
    (back,) = read_records(short, tmp_path / "sp.pgn")
    assert back.result is None and back.moves == moves and back.info == rec.info


def test_a_resignation_says_who_resigned():
    rec = record(actions(GAME, "e2e4 e7e5 g1f3"), 0.0, resigned="alice")
    pgn = read_one(record_to_pgn(GAME, rec))
    assert pgn.headers["Result"] == "0-1" and pgn.end().comment == "White resigns"


def test_arena_games_cut_off_are_adjudicated_in_their_records(tmp_path):
    short = Chess(max_game_length=8)
    a, b = make_player("random", short, seed=1), make_player("greedy", short, seed=2)
    path = tmp_path / "arena.pgn"
    result = run_match(short, a, b, MatchConfig(games=4, in_flight=4, opening_plies=2, seed=3),
                       records=path, info={"match": "random vs greedy"})
    back = read_records(short, path)
    assert [r.moves for r in back] == [r.moves for r in result.records]
    assert [r.result for r in back] == [r.result for r in result.records]
    games = []
    handle = io.StringIO(path.read_text())
    while (pgn := chess.pgn.read_game(handle)) is not None:
        games.append(pgn)
    assert len(games) == len(result.records) == 4
    for pgn, rec in zip(games, result.records):
        if "adjudicated" in rec.info:                 # 8 plies rarely end a game
            assert pgn.headers["Termination"] == "adjudication"
            assert pgn.end().comment.startswith("Cut off at the move cap (8 plies): 1/2-1/2 "
                                                "by adjudication")
        assert {pgn.headers["White"], pgn.headers["Black"]} == {"random", "greedy"}
        assert pgn.headers["Event"] == "azero arena: random vs greedy"
    assert sum("adjudicated" in r.info for r in result.records) >= 1


def test_a_game_torn_by_a_kill_is_skipped_and_cut_off(tmp_path):
    path = tmp_path / "games.pgn"
    whole = record(actions(GAME, SCHOLARS_MATE), 1.0)
    with open_record_writer(GAME, path) as writer:
        writer.write(whole)
    text = record_to_pgn(GAME, whole)
    torn = text[:text.index("[Black")]                # ends with a newline, inside the headers
    with open(path, "a") as f:
        f.write(torn)
    assert [r.moves for r in read_records(GAME, path)] == [whole.moves]
    with open_record_writer(GAME, path) as writer:    # opening cuts the torn game off
        writer.write(whole)
    assert path.read_text().count("[Event") == 2
    assert [r.moves for r in read_records(GAME, path)] == [whole.moves, whole.moves]


def test_a_game_from_a_position_has_setup_and_fen(monkeypatch):
    fen = "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1"
    game = Chess()
    start = game.from_fen(fen)
    monkeypatch.setattr(game, "initial_states", lambda n: np.tile(start, (n, 1)))
    moves = [game.parse_action(start, "e2e4")]
    pgn = read_one(record_to_pgn(game, record(moves, None, opening_plies=0)))
    assert pgn.headers["SetUp"] == "1" and pgn.headers["FEN"] == fen
    assert [m.uci() for m in pgn.mainline_moves()] == ["e2e4"]


def test_bad_pgn_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.pgn"
    bad.write_text('[Event "x"]\n[Result "*"]\n\n1. e4 e5 2. Ke3 *\n\n')
    with pytest.raises(ValueError, match="game 1"):
        read_pgn_records(GAME, bad)
    setup = tmp_path / "setup.pgn"
    setup.write_text('[SetUp "1"]\n[FEN "4k3/8/8/8/8/8/4P3/4K3 w - - 0 1"]\n[Result "*"]\n\n'
                     '1. e4 *\n\n')
    with pytest.raises(ValueError, match="not from the start position"):
        read_pgn_records(GAME, setup)
    with pytest.raises(ValueError, match="record move 2"):
        record_to_pgn(GAME, record([actions(GAME, "e2e4")[0], 0], 1.0))
