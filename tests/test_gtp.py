"""The GTP engine (azero/protocols/gtp.py), driven line by line as a controller would."""
import io

import numpy as np
import pytest

from azero.cli import main
from azero.games import make
from azero.players import SearchPlayer
from azero.protocols import gtp_clock, gtp_protocol
from azero.protocols.gtp import Choice, GtpEngine, PlayerMover, make_mover
from azero.protocols.gtp_clock import Clock, TimeSettings, move_budget
from azero.games.go9.records import game_to_sgf

GAME = make("go9")
PASS = GAME.spec.num_actions - 1


class FakeMover:
    """Answers `action` (default: the first legal point) with root value `value`; records the
    time budgets it was given and the resets / moves it was told about."""

    def __init__(self, action=None, value=0.0):
        self.action, self.value = action, value
        self.budgets, self.resets, self.played_moves = [], 0, []

    def reset(self):
        self.resets += 1

    def played(self, before, action, after):
        self.played_moves.append(action)

    def generate(self, state, budget):
        self.budgets.append(budget)
        action = self.action
        if action is None:
            action = int(np.flatnonzero(GAME.legal_mask(state[None])[0, :PASS])[0])
        return Choice(action, self.value)


def engine(mover=None, **kw):
    return GtpEngine(mover or FakeMover(), GAME, log=io.StringIO(), **kw)


def ask(e, line):
    """One command -> (ok, result text without '=id ' and the blank line)."""
    answer = e.handle(line)
    assert answer is not None and answer.endswith("\n\n") and answer[0] in "=?", answer
    head, _, rest = answer[:-2].partition(" ")
    return answer[0] == "=", rest


def run(e, *lines):
    """Every line must succeed; returns the results."""
    out = []
    for line in lines:
        ok, text = ask(e, line)
        assert ok, (line, text)
        out.append(text)
    return out


def board_rows(e):
    """{row number: the 9 points of that row as 'X', 'O', '.'} from showboard."""
    rows = {}
    for line in run(e, "showboard")[0].splitlines():
        parts = line.split()
        if parts and parts[0].isdigit():
            cells = line[3:3 + 27]
            rows[int(parts[0])] = "".join(ch for ch in cells if ch in "XO.")
    return rows


def point(e, vertex):
    col = "ABCDEFGHJ".index(vertex[0].upper())
    return board_rows(e)[int(vertex[1:])][col]


def test_administrative_commands_and_ids():
    e = engine()
    assert e.handle("1 protocol_version") == "=1 2\n\n"
    assert e.handle("name") == "= azero\n\n"
    assert e.handle("22 version").startswith("=22 0.")
    assert e.handle("3 known_command genmove") == "=3 true\n\n"
    assert e.handle("known_command kgs-genmove_cleanup") == "= true\n\n"
    assert e.handle("known_command fly") == "= false\n\n"
    listed = e.handle("4 list_commands")[len("=4 "):-2].split("\n")
    for command in ("protocol_version", "name", "version", "known_command", "list_commands",
                    "quit", "boardsize", "clear_board", "komi", "play", "genmove", "undo",
                    "showboard", "final_score", "time_settings", "time_left",
                    "kgs-genmove_cleanup", "loadsgf"):
        assert command in listed
        assert e.handle(f"known_command {command}") == "= true\n\n"
    assert not e.quit_requested
    assert e.handle("99 quit") == "=99 \n\n" and e.quit_requested


def test_malformed_lines_never_crash():
    e = engine()
    assert e.handle("") is None and e.handle("   \t ") is None and e.handle("# comment") is None
    assert e.handle("\x01\x02\r\n") is None
    assert e.handle("7 fly away") == "?7 unknown command\n\n"
    assert e.handle("PLAY b d4") == "? unknown command\n\n"      # commands are case sensitive
    assert e.handle("42") == "?42 unknown command\n\n"
    assert e.handle("5 pro\x00tocol_ver\x07sion # trailing comment") == "=5 2\n\n"
    assert e.handle("6\tknown_command\tplay") == "=6 true\n\n"
    assert e.handle("8 play b d4\r\n") == "=8 \n\n"
    for bad in ("play", "play b", "play b d4 d5", "play x d4", "play b 44", "play b I5",
                "play b resign", "genmove", "genmove red", "komi", "komi seven", "komi nan",
                "boardsize", "boardsize nine", "time_settings 1 2", "time_left b x 0",
                "time_settings -1 0 0", "known_command", "loadsgf", "play b Ä5"):
        ok, text = ask(e, bad)
        assert (ok, text) == (False, "syntax error"), bad
    assert e.handle("9 play b Z9") == "?9 illegal move\n\n"        # a vertex off the board
    assert e.handle("play b A10") == "? illegal move\n\n"
    assert e.moves == [GAME.parse_point("D4")]                      # only the good move stuck


def test_an_internal_error_is_an_answer_not_a_crash():
    class Broken(FakeMover):
        def generate(self, state, budget):
            raise RuntimeError("evaluator on fire\nsecond line")
    e = engine(Broken())
    answer = e.handle("3 genmove b")
    assert answer.startswith("?3 internal error: RuntimeError: evaluator on fire")
    assert answer.count("\n") == 2 and answer.endswith("\n\n")
    assert "Traceback" in e.log.getvalue()
    assert e.handle("4 play b d4") == "=4 \n\n"


def test_boardsize_and_clear_board():
    e = engine()
    run(e, "play b e5")
    assert ask(e, "boardsize 19") == (False, "unacceptable size")
    assert point(e, "E5") == "X"                     # a refused size leaves the board alone
    run(e, "boardsize 9")
    assert point(e, "E5") == "." and e.moves == []
    run(e, "play b e5", "clear_board")
    assert point(e, "E5") == "." and e.moves == []


def test_play_showboard_and_illegal_moves():
    e = engine()
    run(e, "play b D4", "play w e5")
    assert point(e, "D4") == "X" and point(e, "E5") == "O"
    assert sum(row.count("X") + row.count("O") for row in board_rows(e).values()) == 2
    assert "[O]" in run(e, "showboard")[0]            # the last move is marked
    assert ask(e, "play b e5") == (False, "illegal move")          # occupied
    assert "occupied" in e.log.getvalue()
    assert e.moves == [GAME.parse_point("D4"), GAME.parse_point("E5")]


def _ko_position(e):
    # . X O .        Black C8 captures B8; White B8 at once would repeat the position.
    # X O . O
    # . X O .
    run(e, "play b B9", "play w C9", "play b A8", "play w B8", "play b B7", "play w D8",
        "play b J1", "play w C7", "play b C8")


def test_superko_and_suicide_are_illegal():
    e = engine()
    _ko_position(e)
    assert point(e, "B8") == "." and point(e, "C8") == "X"           # the capture happened
    assert ask(e, "play w B8") == (False, "illegal move")
    assert "superko" in e.log.getvalue()
    assert ask(e, "play w A9") == (False, "illegal move")            # no liberty: suicide
    assert "suicide" in e.log.getvalue()
    run(e, "play w J2", "play b J3", "play w B8")                   # after ko threats: fine
    assert point(e, "C8") == "." and point(e, "B8") == "O"


def test_out_of_turn_play_inserts_a_pass_and_undo_takes_both_back():
    e = engine()
    run(e, "play b d4", "play b e5")
    assert point(e, "D4") == point(e, "E5") == "X"
    assert e.moves == [GAME.parse_point("D4"), PASS, GAME.parse_point("E5")]
    run(e, "undo")
    assert e.moves == [GAME.parse_point("D4")] and point(e, "E5") == "."
    run(e, "play w c3")                              # White to move again after the undo
    assert e.moves == [GAME.parse_point("D4"), GAME.parse_point("C3")]


def test_play_continues_after_two_passes():
    e = engine()
    run(e, "play b d4", "play w pass", "play b pass")
    assert GAME.terminal(e.state[None])[0]           # over by our rules ...
    run(e, "play w e5", "play b pass", "play w pass", "play b pass", "play w c3")
    assert point(e, "D4") == "X" and point(e, "E5") == "O" and point(e, "C3") == "O"
    assert not GAME.terminal(e.state[None])[0]
    assert ask(e, "genmove b")[0]


def test_undo_past_the_start():
    e = engine()
    assert ask(e, "undo") == (False, "cannot undo")
    run(e, "play b d4", "play w e5", "undo")
    assert point(e, "E5") == "." and point(e, "D4") == "X"
    run(e, "undo")
    assert e.handle("5 undo") == "?5 cannot undo\n\n"


def test_final_score_is_tromp_taylor_area_with_the_komi():
    e = engine()
    assert run(e, "final_score") == ["W+7.0"]                      # empty board, komi 7
    run(e, "play b e5")
    assert run(e, "final_score") == ["B+74.0"]                     # 81 points of Black - 7
    run(e, "komi 6.5")
    assert run(e, "final_score") == ["B+74.5"] and point(e, "E5") == "X"
    run(e, "play w d4")
    assert run(e, "final_score") == ["W+6.5"]                      # all neutral: komi decides
    run(e, "komi 0")
    assert run(e, "final_score") == ["0"]
    run(e, "komi 5.3")                                              # rounded to half points
    assert run(e, "final_score") == ["W+5.5"] and "5.5" in e.log.getvalue()


def test_genmove_plays_the_move():
    mover = FakeMover(action=GAME.parse_point("C3"))
    e = engine(mover)
    assert run(e, "genmove b") == ["C3"]
    assert point(e, "C3") == "X" and mover.played_moves == [GAME.parse_point("C3")]
    mover.action = PASS
    assert run(e, "7 genmove w") == ["pass"]
    assert e.moves == [GAME.parse_point("C3"), PASS]


def test_genmove_for_the_side_not_to_move_inserts_a_pass():
    e = engine(FakeMover(action=GAME.parse_point("E5")))
    run(e, "play b d4")
    assert run(e, "genmove b") == ["E5"]
    assert e.moves == [GAME.parse_point("D4"), PASS, GAME.parse_point("E5")]
    assert point(e, "E5") == "X"


def test_resignation_threshold_and_minimum_plies():
    mover = FakeMover(value=-0.99)
    e = engine(mover, resign_threshold=-0.9, resign_min_plies=4)
    assert run(e, "genmove b", "genmove w", "genmove b", "genmove w") != ["resign"] * 4
    assert len(e.moves) == 4
    assert run(e, "genmove b") == ["resign"] and len(e.moves) == 4   # nothing played
    assert run(e, "kgs-genmove_cleanup b") != ["resign"]             # cleanup never resigns
    mover.value = -0.5
    assert run(e, "genmove w") != ["resign"]
    e = engine(FakeMover(value=-1.0), resign_threshold=None, resign_min_plies=0)
    assert run(e, "genmove b") != ["resign"]


def test_kgs_genmove_cleanup_does_not_pass_while_neutral_points_remain():
    e = engine(FakeMover(action=PASS))
    run(e, "play b e5")                      # every point is Black's: passing is right
    assert run(e, "kgs-genmove_cleanup b") == ["pass"]
    e = engine(FakeMover(action=PASS))
    run(e, "play b e5", "play w a1")         # the whole board is neutral now
    assert run(e, "genmove b") == ["pass"]
    move = run(e, "kgs-genmove_cleanup b")[0]
    assert move != "pass" and point(e, move) == "X"


def test_kgs_genmove_cleanup_captures_dead_stones_before_passing(tmp_path):
    # Black everywhere but two eyes (A9, C9); a dead White stone at E5 with 4 liberties.
    empty = {GAME.parse_point(v) for v in ("A9", "C9", "E6", "D5", "F5", "E4")}
    white = [GAME.parse_point("E5")]
    black = [p for p in range(PASS) if p not in empty and p not in white]
    path = tmp_path / "dead.sgf"
    path.write_bytes(game_to_sgf([], komi=7, setup=(black, white)))
    e = engine(FakeMover(action=PASS))
    run(e, f"loadsgf {path}")
    assert point(e, "E5") == "O" and run(e, "genmove b") == ["pass"]
    run(e, "undo")                                   # take the pass back
    played = []
    for _ in range(4):
        played.append(run(e, "kgs-genmove_cleanup b")[0])
        run(e, "play w pass")
    assert sorted(played) == ["D5", "E4", "E6", "F5"] and point(e, "E5") == "."
    assert run(e, "kgs-genmove_cleanup b") == ["pass"]               # nothing left to capture
    assert run(e, "final_score") == ["B+74.0"]


def test_time_budget_from_the_clock():
    settings = TimeSettings(60, 10, 5)
    assert move_budget(None, Clock(0, 0), 0) is None
    assert move_budget(TimeSettings(0, 5, 0), Clock(0, 0), 0) is None      # "no time limit"
    in_byo = move_budget(settings, Clock(10, 5), 40)
    assert in_byo == pytest.approx(gtp_clock.TIME_SAFETY * 2 - gtp_clock.TIME_LAG)
    main = move_budget(settings, Clock(60, 0), 0)
    assert main == pytest.approx(gtp_clock.TIME_SAFETY * (60 / 50 + 10 / 5) - gtp_clock.TIME_LAG)
    late = move_budget(TimeSettings(60, 0, 0), Clock(20, 0), 200)          # absolute time
    assert late == pytest.approx(gtp_clock.TIME_SAFETY * 20 / gtp_clock.MIN_MOVES_LEFT - gtp_clock.TIME_LAG)
    assert move_budget(TimeSettings(60, 0, 0), Clock(0, 0), 10) == 0.0

    mover = FakeMover()
    e = engine(mover)
    run(e, "genmove b")
    run(e, "time_settings 300 0 1")                  # byo_yomi_time 0: absolute time
    run(e, "genmove w")
    run(e, "time_left b 10 2", "genmove b")
    run(e, "time_settings 0 1 0", "genmove w")       # byo yomi time, no stones: no limit
    assert mover.budgets[0] is None and mover.budgets[3] is None
    assert 0 < mover.budgets[1] < 300 / gtp_clock.MIN_MOVES_LEFT
    assert mover.budgets[2] == pytest.approx(gtp_clock.TIME_SAFETY * 5 - gtp_clock.TIME_LAG)


def test_search_mover_caps_simulations_by_time():
    mover = make_mover("mcts-rollout:200", GAME, seed=1)
    assert isinstance(mover.player, SearchPlayer)
    state = GAME.initial_states(1)[0]
    free = mover.generate(state, None)
    assert free.simulations == 200 and free.search.visit_counts.sum() >= 199
    mover.reset()
    rushed = mover.generate(state, 0.01)
    assert 1 <= rushed.simulations < 200
    assert rushed.search.visit_counts.sum() < 200
    e = GtpEngine(mover, GAME, log=io.StringIO())
    run(e, "time_settings 1 0 0", "time_left b 0.5 0")
    move = run(e, "genmove b")[0]
    assert move == "pass" or point(e, move) == "X"


def _tree_nodes(mover):
    return int(mover.player._search.core.num_nodes()[0])


def test_search_mover_reuses_the_tree_across_moves():
    mover = make_mover("mcts-rollout:64", GAME, seed=0)
    e = GtpEngine(mover, GAME, log=io.StringIO(), resign_threshold=None)
    run(e, "genmove b")
    assert _tree_nodes(mover) > 1                     # the subtree of the move played is kept
    kept = _tree_nodes(mover)
    run(e, "genmove w")                               # ... and grown by the next search
    assert _tree_nodes(mover) > 0
    free = mover.generate(e.state, None)
    assert free.search.visit_counts.sum() > 64        # visits of the kept tree add up
    assert kept > 1
    run(e, "undo")
    assert _tree_nodes(mover) == 0                    # a jump in the position drops it


def test_handicap_stones():
    e = engine()
    assert run(e, "fixed_handicap 2") == ["C3 G7"]
    assert point(e, "C3") == point(e, "G7") == "X" and e.moves == []
    assert ask(e, "fixed_handicap 2") == (False, "board not empty")
    run(e, "genmove w")                              # White moves first: no pass put in
    assert len(e.moves) == 1 and PASS not in e.moves
    run(e, "undo")                                   # back to the handicap stones
    assert point(e, "C3") == "X" and ask(e, "undo") == (False, "cannot undo")
    run(e, "clear_board")
    assert ask(e, "fixed_handicap 10") == (False, "invalid number of stones")
    assert ask(e, "fixed_handicap 1") == (False, "invalid number of stones")
    layouts = {}
    for n in range(2, 10):
        run(e, "clear_board")
        layouts[n] = set(run(e, f"fixed_handicap {n}")[0].split())
        assert len(layouts[n]) == n and all(point(e, v) == "X" for v in layouts[n])
    corners, centre = {"C3", "G7", "C7", "G3"}, "E5"
    assert layouts[4] == corners and layouts[5] == corners | {centre}
    assert layouts[8] == corners | {"C5", "G5", "E3", "E7"} and layouts[9] == layouts[8] | {centre}
    run(e, "clear_board")
    assert len(run(e, "place_free_handicap 20")[0].split()) == 9      # fewer, as allowed
    run(e, "clear_board")
    for bad in ("D4", "D4 D4", "D4 pass", "D4 X4", ""):
        assert ask(e, f"set_free_handicap {bad}") == (False, "bad vertex list"), bad
    run(e, "set_free_handicap D4 e5 F6")
    assert [point(e, v) for v in ("D4", "E5", "F6")] == ["X"] * 3
    run(e, "play w a1")
    assert e.moves == [GAME.parse_point("A1")]


def test_loadsgf(tmp_path):
    moves = [GAME.parse_point(v) for v in ("D4", "E5", "pass", "C3", "G7")]
    path = tmp_path / "game.sgf"
    path.write_bytes(game_to_sgf(moves, komi=6.5, black="b", white="w", result="B+R"))
    e = engine()
    run(e, "play b a1", "loadsgf " + str(path))
    assert e.moves == moves and point(e, "A1") == "." and point(e, "G7") == "X"
    assert e.game.komi == 6.5
    run(e, "loadsgf " + str(path) + " 3")             # the position before move 3
    assert e.moves == moves[:2] and point(e, "C3") == "."
    run(e, "undo")
    assert e.moves == moves[:1]
    assert ask(e, "loadsgf " + str(tmp_path / "missing.sgf")) == (False, "cannot load file")
    (tmp_path / "junk.sgf").write_text("this is not SGF")
    assert ask(e, f"loadsgf {tmp_path / 'junk.sgf'}") == (False, "cannot load file")
    (tmp_path / "big.sgf").write_text("(;GM[1]SZ[19];B[dd])")
    assert ask(e, f"loadsgf {tmp_path / 'big.sgf'}") == (False, "cannot load file")
    assert e.moves == moves[:1]                       # a failed load keeps the position
    # setup stones (handicap): White moves first
    (tmp_path / "hc.sgf").write_text("(;GM[1]FF[4]SZ[9]KM[0.5]HA[2]AB[cc][gg];W[ee])")
    run(e, f"loadsgf {tmp_path / 'hc.sgf'}")
    assert point(e, "C7") == point(e, "G3") == "X" and point(e, "E5") == "O"
    assert run(e, "final_score") == ["B+0.5"]         # 2 - 1 - komi 0.5, the rest neutral
    run(e, "undo")
    assert point(e, "E5") == "." and point(e, "C7") == "X"


def test_serve_loop_over_streams():
    e = engine(FakeMover(action=GAME.parse_point("E5")))
    stdin = io.BytesIO(b"1 name\n\n# nothing\n2 genmove b\n3 quit\n4 name\n")
    stdout = io.BytesIO()
    assert gtp_protocol.serve(e, stdin, stdout) == 0
    assert stdout.getvalue() == b"=1 azero\n\n=2 E5\n\n=3 \n\n"


def test_gtp_command_needs_a_checkpoint(capsys, monkeypatch, tmp_path):
    import azero.players as players
    monkeypatch.setattr(players, "BUNDLED_DIR", tmp_path)
    assert main(["gtp"]) == 2
    assert "no bundled go9 checkpoint" in capsys.readouterr().err
    assert main(["gtp", "--ckpt", str(tmp_path / "nope.pt")]) == 2
    assert "not found" in capsys.readouterr().err


def test_gtp_command_serves_only_games_that_speak_gtp(capsys):
    from azero.games import games_speaking, names
    silent = [name for name in names() if name not in games_speaking("gtp")]
    assert silent and games_speaking("gtp")
    assert main(["gtp", "--game", silent[0], "--ckpt", "random"]) == 2
    err = capsys.readouterr().err
    assert f"{silent[0]!r} does not speak GTP" in err and games_speaking("gtp")[0] in err


def test_gtp_command_refuses_sims_below_one(capsys):
    # The check azero uci had, now shared (azero/commands/engine_args.py): gtp served with 0.
    assert main(["gtp", "--ckpt", "mcts-rollout:5", "--sims", "0"]) == 2
    assert "azero gtp: --sims must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["gtp", "--ckpt", "random"], ["uci", "--ckpt", "random"],
                                     ["play", "--ckpt", "random"],
                                     ["arena", "--a", "random", "--b", "random", "--games", "2"]])
def test_commands_whose_network_plays_use_one_torch_thread_unless_told(command, capsys,
                                                                         monkeypatch, tmp_path):
    """A search's small batches on two threads spin-wait whenever anything else runs (0.2 s a
    move against 30 s at 200 simulations beside a training run: BENCHMARKS.md): gtp, uci, play
    and arena default to one torch thread, take --threads N, and refuse N < 1."""
    import torch
    monkeypatch.chdir(tmp_path)                         # arena writes its records here
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"quit\n")))
    torch.set_num_threads(2)
    assert main(command) == 0
    assert torch.get_num_threads() == 1
    assert main(command + ["--threads", "2"]) == 0
    assert torch.get_num_threads() == 2
    assert main(command + ["--threads", "0"]) == 2
    assert "--threads must be at least 1, got 0" in capsys.readouterr().err


def test_engine_over_a_network_checkpoint(tmp_path):
    """The real path of `azero gtp --ckpt PATH`: a (tiny, untrained) go9 network searched with
    its own settings, capped by --sims and by the clock."""
    from azero import checkpoint
    from azero.config import load_config
    from azero.nets import make_net
    config = load_config("connect4_tiny", ["game=go9", "model.blocks=1", "model.channels=8"])
    path = checkpoint.save(tmp_path / "go9.pt", make_net(GAME.spec, config.model), config=config)
    mover = make_mover(str(path), GAME, simulations=24, seed=0)
    assert isinstance(mover.player, SearchPlayer) and mover.player.max_simulations == 24
    e = GtpEngine(mover, GAME, log=io.StringIO(), resign_threshold=None)
    first = run(e, "genmove b")[0]
    assert "after 24 simulations" in e.log.getvalue()
    run(e, "time_settings 0 1 50")                  # byo yomi: 1 s for 50 stones
    second = run(e, "genmove w")[0]
    assert "after 1 simulations" in e.log.getvalue().splitlines()[-1]     # no time: one
    for move, stone in ((first, "X"), (second, "O")):
        assert move == "pass" or point(e, move) == stone
    assert mover.player.seconds_per_simulation is not None


def test_engines_play_at_the_checkpoints_play_simulations(tmp_path, monkeypatch, capsys):
    """play.num_simulations is what a checkpoint searches when it plays for a user (azero gtp
    here; play, uci and arena take the same path), not the self-play search's; --sims still
    wins; a checkpoint whose config predates the play section plays at its search's."""
    from azero import checkpoint
    from azero.config import load_config
    from azero.nets import make_net
    from azero.players import make_player
    config = load_config("connect4_tiny", ["game=go9", "model.blocks=1", "model.channels=8",
                                           "search.num_simulations=3", "play.num_simulations=11"])
    net = make_net(GAME.spec, config.model)
    path = checkpoint.save(tmp_path / "go9.pt", net, config=config)
    old = config.to_dict()
    del old["play"]
    old_path = checkpoint.save(tmp_path / "old.pt", net, config=old)
    assert make_player(path, GAME).max_simulations == 3                 # self-play, gates
    assert make_player(path, GAME, as_engine=True).max_simulations == 11
    assert make_player(path, GAME, as_engine=True, simulations=5).max_simulations == 5
    assert make_player(old_path, GAME, as_engine=True).max_simulations == 3
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"genmove b\nquit\n")))
    assert main(["gtp", "--ckpt", str(path), "--no-resign"]) == 0
    assert "after 11 simulations" in capsys.readouterr().err


@pytest.mark.parametrize("komi", ["inf", "-inf", "nan", "1e400"])
def test_a_komi_that_is_not_a_finite_number(komi, capsys):
    from azero.games.go9.game import Go9
    with pytest.raises(ValueError, match="finite multiple of 0.5"):
        Go9(komi=float(komi))
    e = engine()
    assert ask(e, f"komi {komi}") == (False, "syntax error")
    assert ask(e, "komi 6.5") == (True, "")                 # still talking
    capsys.readouterr()
    assert main(["gtp", "--ckpt", "mcts-rollout:2", f"--komi={komi}"]) == 2
    err = capsys.readouterr().err
    assert "komi must be a finite multiple of 0.5" in err and "Traceback" not in err


def test_a_player_that_resigns_makes_genmove_answer_resign():
    """A PlayerMover over a player that resigns (an external engine) answers `resign`, with no
    move played, even with our own resignation threshold off."""
    from azero.players import Decision
    class Quitter:
        name = "quitter"

        def begin(self, n):
            pass

        def reset(self, rows=None):
            pass

        def act(self, states, active):
            return Decision(np.zeros(len(states), np.int64), resigned=np.ones(len(states), bool))

        def observe(self, actions, active):
            pass

    e = GtpEngine(PlayerMover(Quitter()), GAME, log=io.StringIO(), resign_threshold=None)
    assert ask(e, "genmove b") == (True, "resign")
    assert ask(e, "genmove b") == (True, "resign") and e.moves == []


# --------------------------------------------------------------------------- superko past the cap
# Four kos side by side between a Black and a White wall (rows 5 and 4 of the board below):
#   9-7  Black's territory (filled stone by stone), 6 a Black wall
#   5    X O X O X O X O X   ko i: the White stone on column B, D, F or H (state 0)
#   4    O . O . O . O . O   Black captures it at the point below (state 1), White takes back
#   3    a White wall, 2-1 White's territory
# A board is (the four ko states, the stones filled in so far): a game that never repeats one is
# legal, and a filled stone makes every ko state new again.
_KO_COLUMNS = "BDFH"
# Each side fills its territory in this order, two liberties of its wall left (H and J).
_FILLS = ([c + r for r in "98" for c in "ABCDEFGHJ"] + [c + "7" for c in "ABCDEFG"],
          [c + "1" for c in "ABCDEFGHJ"] + [c + "2" for c in "ABCDEFG"])
# From all four kos captured (state 1111) with White to move, the longest walk through new ko
# states (None: a pass) whose next move, a capture of ko B, recreates that first board: 25 moves
# (found by exhaustive search over the 16 states; a walk can have no more).
_LONGEST_WALK = [0, None, 1, None, 2, 0, None, 1, 0, None, 3, 0, None, 2, 0, None, 1, None, 2, 0,
                 None, 2, None, 3, None]


def _ko_setup_sgf(path):
    points = {"ABCDEFGHJ"[c] + str(r): (c, r) for c in range(9) for r in range(1, 10)}
    black = [v for v, (c, r) in points.items() if r == 6 or (r == 5 and c % 2 == 0)]
    white = [v for v, (c, r) in points.items() if r == 3 or (r == 5 and c % 2 == 1)
             or (r == 4 and c % 2 == 0)]
    path.write_bytes(game_to_sgf([], komi=7, setup=([GAME.parse_point(v) for v in black],
                                                     [GAME.parse_point(v) for v in white])))


class _KoGame:
    """Plays moves into an engine while keeping the board abstractly: ko bits (bit i set: Black
    has captured ko i) and how many stones each side has filled. Every board is recorded."""

    def __init__(self, e):
        self.e, self.bits, self.filled, self.last_pass = e, 0, [0, 0], False
        self.boards = [(0, 0, 0)]                 # board after each ply (0: the setup)

    @property
    def to_move(self):
        return (len(self.boards) - 1) % 2

    def vertex(self, ko):
        """The capture of ko `ko` by the side to move."""
        return _KO_COLUMNS[ko] + ("4" if self.to_move == 0 else "5")

    def play(self, what):
        """what: a ko index, None (pass) or "fill"."""
        colour = "bw"[self.to_move]
        if what is None:
            vertex = "pass"
        elif what == "fill":
            vertex = _FILLS[self.to_move][self.filled[self.to_move]]
            self.filled[self.to_move] += 1
        else:
            assert (self.bits >> what & 1) == self.to_move
            vertex = self.vertex(what)
            self.bits ^= 1 << what
        run(self.e, f"play {colour} {vertex}")
        self.last_pass = what is None
        self.boards.append((self.bits, *self.filled))
        assert what is None or self.boards[-1] not in self.boards[:-1]

    def walk_greedily(self, until_ply):
        """New ko states while there are, else a pass, else a stone filled."""
        seen = {self.boards[-1]}
        while len(self.boards) - 1 < until_ply:
            kos = [i for i in range(4) if (self.bits >> i & 1) == self.to_move
                   and (self.bits ^ 1 << i, *self.filled) not in seen]
            self.play(kos[0] if kos else None if not self.last_pass else "fill")
            seen.add(self.boards[-1])


def test_superko_holds_over_the_whole_game_past_the_move_cap(tmp_path):
    """A game of 181 plies (past the rules' cap of 180, where the engine rebases its state on the
    last REBASE_KEEP_PLIES = 24 moves) whose last move would recreate the board of ply 155:
    refused by `play`, and avoided by `genmove`."""
    e = engine()
    _ko_setup_sgf(tmp_path / "kos.sgf")
    run(e, f"loadsgf {tmp_path / 'kos.sgf'}")
    g = _KoGame(e)
    g.walk_greedily(until_ply=140)
    while g.bits != 15 or g.to_move != 0:         # all kos captured, Black to move
        kos = [i for i in range(4) if not g.bits >> i & 1
               and (g.bits | 1 << i, *g.filled) not in g.boards]
        g.play(kos[0] if g.to_move == 0 and kos else "fill")
    while len(g.boards) - 1 < 155:                # a filled stone each: boards never seen
        g.play("fill")
    first = len(g.boards) - 1
    assert first == 155 and g.to_move == 1
    for ko in _LONGEST_WALK:
        g.play(ko)
    assert g.to_move == 0
    repeat = g.vertex(1)                          # Black captures ko D again: the board of ply 155
    assert (g.bits ^ 1 << 1, *g.filled) == g.boards[first] and len(e.moves) == 180
    assert first < len(e.moves) - 24              # older than the moves a rebase keeps
    assert ask(e, f"play b {repeat}") == (False, "illegal move")
    assert "superko" in e.log.getvalue().splitlines()[-1]
    assert len(e.moves) == 180
    # genmove: a generator that wants the repeat gets the engine's choice among allowed moves
    e.mover = FakeMover(action=GAME.parse_point(repeat))
    move = run(e, "genmove b")[0]
    assert move != repeat and len(e.moves) == 181
    assert "repeats an earlier position" in e.log.getvalue()
    run(e, "undo", "play b pass", "play w pass")   # after two passes the game goes on ...
    assert ask(e, f"play b {repeat}") == (False, "illegal move")   # ... and still refuses it
    run(e, f"play b {_FILLS[0][g.filled[0]]}")    # a new board is fine
    assert int(GAME.move_number(e.state[None])[0]) < 180          # the state was rebased


def test_genmove_for_the_colour_not_to_move_tells_the_mover_only_its_own_move():
    """genmove b with White to move: the engine inserts White's pass, resets the mover and has
    it search from the position after that pass; committing the move must then tell it of the
    move alone (told of the pass again, a search player's tree would follow the wrong edge and
    an external engine would be sent a pass it already has)."""
    mover = FakeMover()
    e = engine(mover)
    run(e, "play b C3")
    resets = mover.resets
    (answer,) = run(e, "genmove b")
    assert mover.resets == resets + 1
    assert mover.played_moves[-1] == GAME.parse_action(GAME.initial_states(1)[0], answer)
    assert mover.played_moves.count(PASS) == 0, mover.played_moves
