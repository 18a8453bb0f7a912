"""SGF records of go9 games (games/go9/records.py): written through sgfmill, read back equal."""
import numpy as np
import pytest
from sgfmill import sgf

from azero.arena import MatchConfig, run_match
from azero.games import make
from azero.players import make_player
from azero.records import GameRecord, open_record_writer, read_records, record_format
from azero.games.go9.records import (SgfError, game_to_sgf, parse_sgf, read_sgf_records, record_to_sgf,
                               sgf_game_to_record)

GAME = make("go9")
PASS = GAME.spec.num_actions - 1


def actions(text):
    return [GAME.parse_point(v) for v in text.split()]


def record(moves, result, **info):
    return GameRecord(game="go9", players=("alice", "bob"), moves=moves, result=result,
                      opening_plies=2, info={"game_index": 7, **info})


def test_round_trip_with_passes_and_sgfmill_reads_it():
    moves = actions("E5 D4 pass C3 E4 G7 pass pass")          # ends by two passes
    rec = record(moves, 0.0)
    data = record_to_sgf(GAME, rec)
    assert b"B[]" in data and b"W[]" in data and b"tt" not in data    # FF[4] passes
    parsed = sgf.Sgf_game.from_bytes(data)                    # the library reads what we wrote
    root = parsed.get_root()
    assert root.get("FF") == 4 and root.get("GM") == 1 and parsed.get_size() == 9
    assert parsed.get_komi() == 7.0 and root.get("RU") == "Chinese"
    assert parsed.get_player_name("b") == "alice" and parsed.get_player_name("w") == "bob"
    assert root.get("RE") == "W+8" and parsed.get_winner() == "w"     # 2 - 3 stones - komi 7
    seq = [node.get_move() for node in parsed.get_main_sequence()[1:]]
    assert seq[0] == ("b", (4, 4)) and seq[1] == ("w", (3, 3)) and seq[2] == ("b", None)
    assert len(seq) == len(moves)

    back = sgf_game_to_record(GAME, parse_sgf(data)[0])
    assert back.moves == moves and back.players == ("alice", "bob")
    assert back.result == 0.0 and back.opening_plies == 2 and back.info == {"game_index": 7}


@pytest.mark.parametrize("moves, result, info, expected", [
    ("E5 pass pass", 1.0, {}, "B+74"),                          # 81 points - komi 7
    ("E5 D4 C3", 0.0, {"resigned": True}, "W+R"),
    ("E5 D4 C3", 1.0, {}, "B+R"),                               # decided before the end
    ("E5 D4", None, {}, "?"),
])
def test_result_strings(moves, result, info, expected):
    data = record_to_sgf(GAME, record(actions(moves), result, **info))
    assert sgf.Sgf_game.from_bytes(data).get_root().get("RE") == expected


def test_a_drawn_game_has_result_0():
    even = type(GAME)(komi=0)
    data = record_to_sgf(even, record(actions("E5 D4 pass pass"), 0.5))
    root = sgf.Sgf_game.from_bytes(data).get_root()
    assert root.get("RE") == "0" and root.get("KM") == 0
    assert sgf_game_to_record(even, parse_sgf(data)[0]).result == 0.5


def test_go9_records_are_a_folder_of_sgf_files(tmp_path):
    assert record_format("go9").suffix == ""
    folder = tmp_path / "games"
    recs = [record(actions("E5 D4 pass pass"), 0.0), record(actions("C3 pass G7 pass pass"), 1.0)]
    with open_record_writer(GAME, folder) as w:
        for r in recs:
            w.write(r)
    with open_record_writer(GAME, folder) as w:            # a second writer appends
        w.write(recs[0])
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["game-00001.sgf", "game-00002.sgf", "game-00003.sgf"]
    back = read_records(GAME, folder)
    assert [r.moves for r in back] == [recs[0].moves, recs[1].moves, recs[0].moves]
    assert [r.result for r in back] == [0.0, 1.0, 0.0]


def test_collection_file_and_a_torn_last_game(tmp_path):
    path = tmp_path / "all.sgf"
    recs = [record(actions("E5 D4 pass pass"), 0.0), record(actions("C3 pass G7"), 1.0)]
    with open_record_writer(GAME, path) as w:
        for r in recs:
            w.write(r)
    assert [r.moves for r in read_records(GAME, path)] == [r.moves for r in recs]
    data = path.read_bytes()
    path.write_bytes(data[:-15])                          # a kill in the middle of game 2
    assert [r.moves for r in read_sgf_records(GAME, path)] == [recs[0].moves]
    with open_record_writer(GAME, path) as w:             # appending after the torn game
        w.write(recs[1])
    assert [r.moves for r in read_records(GAME, path)] == [r.moves for r in recs]


def test_reading_foreign_sgf():
    # Moves that do not alternate get a pass of the other side; comments and unknown
    # properties are fine; "tt" is a pass on boards up to 19.
    g = parse_sgf(b"(;GM[1]FF[4]SZ[9]KM[6.5]PB[x]XX[private];B[ee]C[hi];B[dd];W[tt];B[cc])")[0]
    assert g.komi == 6.5 and g.black == "x" and g.white is None
    assert g.actions() == actions("E5 pass D6 pass C7")
    rec = sgf_game_to_record(GAME, g)
    assert rec.players == ("x", "White") and rec.result is None
    for bad, why in [(b"(;GM[1]SZ[19];B[dd])", "board size 19"),
                     (b"(;GM[2]SZ[9])", "not Go"),
                     (b"no sgf here", "not an SGF"),
                     (b"(;SZ[9];B[ee];W[ee])", "move 2")]:
        with pytest.raises(SgfError, match=why):
            records = parse_sgf(bad)
            sgf_game_to_record(GAME, records[0])


def test_setup_stones_are_read_but_are_no_record():
    data = game_to_sgf(actions("E5"), komi=0.5, setup=(actions("C7 G3"), []), first_colour=1)
    g = parse_sgf(data)[0]
    assert g.setup_black == sorted(actions("C7 G3")) and g.first_colour == 1
    assert g.moves == [(1, GAME.parse_point("E5"))]
    with pytest.raises(SgfError, match="setup"):
        sgf_game_to_record(GAME, g)


def test_arena_games_of_go9_are_written_as_sgf(tmp_path):
    a = make_player("random", GAME, seed=1, name="one")
    b = make_player("random", GAME, seed=2, name="two")
    result = run_match(GAME, a, b, MatchConfig(games=2, in_flight=2, sprt=None, seed=3),
                       records=tmp_path / "arena")
    files = sorted((tmp_path / "arena").glob("*.sgf"))
    assert len(files) == 2
    back = read_records(GAME, tmp_path / "arena")
    by_index = {r.info["game_index"]: r for r in result.records}
    for r in back:
        original = by_index[r.info["game_index"]]
        assert r.moves == original.moves and r.result == original.result
        assert r.players == original.players and r.opening_plies == original.opening_plies
        state = GAME.initial_states(1)
        for action in r.moves:
            state = GAME.step(state, np.array([action]))
        assert GAME.terminal(state)[0]
