"""`azero uci`, the UCI engine (azero/protocols/uci.py): through python-chess's own UCI client
(chess.engine.SimpleEngine.popen_uci) for whole games, analysis, stop and clocks; in process for
what a client cannot show (castling's notation, positions refused, the options); and the clock's
arithmetic (uci_clock.py). The fuzz of raw input is tests/test_uci_fuzz.py.

The engine searches a tiny untrained network (one block of 8 channels): fast, and legal."""
import io
import random
import re
import subprocess
import sys
import time

import numpy as np
import pytest

chess = pytest.importorskip("chess")
import chess.engine  # noqa: E402

from azero.games import make  # noqa: E402
from azero.protocols import uci_clock  # noqa: E402
from azero.protocols.uci import UciEngine  # noqa: E402
from azero.protocols.uci_search import Progress, Thinking, centipawns  # noqa: E402

GAME = make("chess")


def make_tiny_checkpoint(path, *overrides: str):
    """A tiny untrained chess network, Gumbel search of 8 simulations (and `overrides`)."""
    from azero import checkpoint
    from azero.config import load_config
    from azero.nets import make_net
    cfg = load_config("connect4_tiny", ["game=chess", "model.blocks=1", "model.channels=8",
                                        "search.num_simulations=8", *overrides])
    return checkpoint.save(path, make_net(GAME.spec, cfg.model), config=cfg)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("uci") / "tiny.pt")


def engine_command(ckpt) -> list[str]:
    return [sys.executable, "-m", "azero.cli", "uci", "--ckpt", str(ckpt)]


@pytest.fixture(scope="module")
def engine(tiny_ckpt):
    e = chess.engine.SimpleEngine.popen_uci(engine_command(tiny_ckpt), timeout=60)
    try:
        yield e
        e.quit()                                   # answered: the process ends by itself
    finally:
        e.close()


def check_info(board: chess.Board, info: dict, move: chess.Move | None = None) -> None:
    """An info line as UCI has it: integers, a score, a pv of legal moves from `board` (python-
    chess drops the moves of a pv from the first illegal one, so its length must be the depth),
    starting with the move played."""
    for key in ("depth", "nodes", "nps"):
        assert isinstance(info[key], int) and info[key] >= 0, info
    assert info["time"] >= 0                       # python-chess reads the ms as seconds
    assert isinstance(info["score"], chess.engine.PovScore), info
    pv = info["pv"]
    assert len(pv) == info["depth"] >= 1, info
    line = board.copy()
    for m in pv:
        assert line.is_legal(m), (board.fen(), pv)
        line.push(m)
    if move is not None:
        assert pv[0] == move


def test_whole_games_against_random_moves(engine):
    """Two whole games, the engine White then Black, against uniformly random moves, until the
    rules end the game (python-chess's outcome, draws claimed as our rules make them automatic).
    Every move the engine sends is legal and searched with the nodes asked for; python-chess
    sends `position startpos moves ...` with the whole game each time, and ucinewgame between."""
    rng = random.Random(0)
    outcomes = []
    for colour in (chess.WHITE, chess.BLACK):
        board, game_id, moves = chess.Board(), object(), 0
        while board.outcome(claim_draw=True) is None:
            if board.turn == colour:
                result = engine.play(board, chess.engine.Limit(nodes=8), game=game_id,
                                     info=chess.engine.INFO_ALL)
                assert result.move in board.legal_moves
                check_info(board, result.info, result.move)
                assert result.info["nodes"] == 8
                board.push(result.move)
                moves += 1
            else:
                board.push(rng.choice(list(board.legal_moves)))
        # Not a fixed length: the engine's moves vary from run to run (59-426 of them seen;
        # once 9, a threefold repetition), so a game can end by the rules early.
        assert moves >= 4 or board.is_checkmate()
        outcomes.append(board.outcome(claim_draw=True))
    assert all(o.termination is not None for o in outcomes)


def test_a_whole_game_against_itself_from_a_fen_pondering(engine):
    """The engine plays both sides from a FEN (queen and king against king) to the end, with
    python-chess pondering: after each bestmove it sends `go ponder` on the expected reply, and
    stop at the next move (the other side's; ponderhit is tested in process). Every move legal,
    the game ended by the rules, and a stop soon after a go ponder is seen at once."""
    board, game_id = chess.Board("8/8/4k3/8/8/2Q5/4K3/8 w - - 0 1"), object()
    t0 = time.monotonic()
    while board.outcome(claim_draw=True) is None:
        result = engine.play(board, chess.engine.Limit(nodes=8), game=game_id, ponder=True,
                             info=chess.engine.INFO_ALL)
        assert result.move in board.legal_moves
        check_info(board, result.info, result.move)
        board.push(result.move)
    # A threefold repetition (claimed) ends the game at ply 8 at the earliest; which moves the
    # untrained net plays depends on how long each ponder ran, so that is the bound that holds.
    assert board.ply() >= 8
    # Quiet: under 0.1 s a ply; 0.14 beside a Go match on both cores. A stop that waited for the
    # ponder search's 0.25 s chunk would cost at least that much on every ply.
    assert (time.monotonic() - t0) / board.ply() < 0.2


def test_analysis_sends_info_lines_and_stop_ends_an_infinite_search(engine):
    """go infinite: info lines keep coming while the engine reads its input; stop is answered
    with a bestmove at once (within a chunk of the search, 0.25 s planned)."""
    board = chess.Board("r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPP1PPP/RNBQKB1R w KQkq - 2 3")
    with engine.analysis(board) as analysis:
        infos = []
        for info in analysis:
            if "pv" in info:
                check_info(board, info)
                infos.append(info)
            if len(infos) == 2:
                break
        assert infos[1]["nodes"] > infos[0]["nodes"] > 0
        t0 = time.monotonic()
        analysis.stop()
        best = analysis.wait()
        assert time.monotonic() - t0 < 2.0
    assert best.move in board.legal_moves


def test_clock_play_with_little_time_never_flags(engine):
    """With 100 ms left and no increment, the engine's own time for each move (its info line)
    stays far below what is left, or it spent only the root evaluation no move can do without (a busy
    machine: 72 ms for it beside a Go match); python-chess's round trip too (its median: a busy
    machine may stall one move); movetime is kept."""
    board, round_trips = chess.Board(), []
    for _ in range(6):
        t0 = time.monotonic()
        result = engine.play(board, chess.engine.Limit(white_clock=0.1, black_clock=0.1),
                             info=chess.engine.INFO_ALL)
        round_trips.append(time.monotonic() - t0)
        assert result.info["time"] < 0.05 or result.info["nodes"] <= 1, result.info
        board.push(result.move)
    assert sorted(round_trips)[len(round_trips) // 2] < 0.1, round_trips
    t0 = time.monotonic()
    result = engine.play(board, chess.engine.Limit(time=0.5), info=chess.engine.INFO_ALL)
    took = time.monotonic() - t0
    assert 0.25 <= took < 0.6, took
    assert result.info["nodes"] > 8                 # time, not the Simulations option, decides


def test_depth_and_a_bare_go(engine):
    """go depth D searches until the pv is D plies long (or Simulations are spent); a bare go
    runs the Simulations option (the checkpoint's 8, here set to 20)."""
    board = chess.Board()
    info = engine.analyse(board, chess.engine.Limit(depth=2))
    assert info["depth"] >= 2 or info["nodes"] == 8
    engine.configure({"Simulations": 20})
    try:
        result = engine.play(board, chess.engine.Limit(), info=chess.engine.INFO_ALL)
        assert result.info["nodes"] == 20
    finally:
        engine.configure({"Simulations": 8})


# ------------------------------------------------------------------ in process

class Lines:
    """The engine's output, collected."""

    def __init__(self):
        self.lines = []

    def __call__(self, line: str) -> None:
        assert "\n" not in line
        self.lines.append(line)

    def take(self) -> list[str]:
        out, self.lines = self.lines, []
        return out


class FixedPlayer:
    """A player that plays the move it is given (UCI), whatever the position."""
    name = "fixed"

    def __init__(self, move: str):
        self.move = move

    def begin(self, batch_size):
        pass

    def reset(self, rows=None):
        pass

    def observe(self, actions, active):
        pass

    def act(self, states, active):
        from azero.players import Decision
        action = GAME.action_of_move(states[0], chess.Move.from_uci(self.move))
        return Decision(np.array([action]))


def run_engine(engine: UciEngine, *lines: str) -> list[str]:
    """Each line in turn; a search started is waited for. The output lines."""
    for line in lines:
        engine.handle(line)
        engine.wait_thinking()
    return engine.send.take()


def in_process(player=None, ckpt=None) -> UciEngine:
    from azero.players import make_player
    if player is None:
        player = make_player(str(ckpt), GAME, seed=0) if ckpt else make_player("random", GAME)
    return UciEngine(GAME, player, send=Lines(), log=io.StringIO())


@pytest.mark.parametrize("fen, move", [
    ("r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "e1g1"),
    ("r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1", "e1c1"),
    ("r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1", "e8g8"),
    ("r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 0 1", "e8c8")])
def test_castling_is_sent_as_the_kings_move(fen, move):
    e = in_process(FixedPlayer(move))
    out = run_engine(e, f"position fen {fen}", "go nodes 1")
    assert out[-1] == f"bestmove {move}"
    assert any(line.startswith("info ") and line.endswith(f" pv {move}") for line in out)
    # and it is read back as castling when the GUI sends it in `position`
    run_engine(e, f"position fen {fen} moves {move}")
    board = GAME.board_of(e.position.state)
    assert board.piece_at(chess.parse_square(move[2:])).piece_type == chess.KING
    assert board.piece_at(chess.parse_square({"g": "f", "c": "d"}[move[2]] + move[3])) \
        .piece_type == chess.ROOK


@pytest.mark.parametrize("fen, score", [
    ("6rk/5Q2/8/8/8/8/8/K7 b - - 0 1", None),                       # not over: a move
    ("7k/6Q1/6K1/8/8/8/8/8 b - - 0 1", "score mate 0"),             # black is mated
    ("7k/5Q2/6K1/8/8/8/8/8 b - - 0 1", "score cp 0")])              # stalemate
def test_a_position_without_moves_answers_0000(fen, score):
    e = in_process()
    out = run_engine(e, f"position fen {fen}", "go movetime 100")
    if score is None:
        assert out[-1] != "bestmove 0000" and out[-1].startswith("bestmove ")
    else:
        assert out == [f"info depth 0 {score}", "bestmove 0000"]


def test_a_draw_by_our_rules_with_moves_left_still_answers_a_legal_move(tiny_ckpt):
    """Threefold repetition (the knights out and back twice) and bare kings (dead material):
    searched without the history, by the rules without automatic draws. An info string says
    why."""
    e = in_process(ckpt=tiny_ckpt)
    out = run_engine(e, "position startpos moves g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1 f6g8",
                     "go nodes 4")
    assert "threefold repetition" in out[0] and out[-1].split()[1] in \
        {m.uci() for m in chess.Board().legal_moves}
    out = run_engine(e, "position fen 8/8/8/8/8/8/8/K6k w - - 0 1", "go nodes 4")
    assert "insufficient material" in out[0] and "searching" in out[0]
    assert out[-1].split()[1] in {"a1a2", "a1b1", "a1b2"}


def test_past_the_fifty_move_limit_a_mate_in_one_is_still_found(tmp_path):
    """A GUI playing on past the fifty-move limit: every move draws by our rules but the mate
    (checked first), which the search finds (Gumbel over all 16 moves); it answered the first
    legal move (a1a2)."""
    import torch
    torch.manual_seed(0)                                   # the same untrained network each run
    ckpt = make_tiny_checkpoint(tmp_path / "all16.pt", "search.max_num_considered_actions=16")
    e = in_process(ckpt=ckpt)
    out = run_engine(e, "position fen 6k1/5ppp/8/8/8/8/8/R6K w - - 100 80", "go nodes 100")
    assert "fifty-move rule" in out[0] and out[-1].split()[:2] == ["bestmove", "a1a8"]


@pytest.mark.parametrize("command, board", [
    # lichess-bot and analysis boards play on after a threefold repetition (a claim in FIDE's
    # rules) or past the fifty-move limit; the moves were refused and the engine answered for
    # the position before them (a white move with black to move).
    ("position startpos moves g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1 f6g8 e2e4",
     "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 5"),
    ("position startpos moves g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1 f6g8 e2e4 b8c6",
     "r1bqkbnr/pppppppp/2n5/8/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 1 6"),
    ("position fen 4k3/8/8/8/8/8/8/4K2R w K - 120 80 moves h1h2 e8e7",
     "8/4k3/8/8/8/8/7R/4K3 w - - 122 81"),
])
def test_moves_after_a_draw_by_our_rules_are_followed(command, board):
    e = in_process()
    out = run_engine(e, command)
    assert out == [] and GAME.fen(e.position.state) == board
    move = chess.Move.from_uci(run_engine(e, "go nodes 2")[-1].split()[1])
    assert move in chess.Board(board).legal_moves


@pytest.mark.parametrize("command", [
    "position fen garbage",
    "position fen 8/8/8/8/8/8/8/8 w - - 0 1",                             # no kings
    "position fen rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1 moves e2e5",
    "position startpos moves e2e4 e7e5 e1e3",
    "position startpos moves f2f3 e7e5 g2g4 d8h4 e1f2",                   # after a mate
    "position startpos moves Nf3",                                        # SAN is not UCI
    "position startpos moves 0000",
    "position startpos moves e2e4 é",
    "position startpos e2e4",                                             # no 'moves'
    "position",
    "position somewhere",
    "position fen",
])
def test_a_refused_position_keeps_the_previous_one(command):
    e = in_process()
    run_engine(e, "position startpos moves d2d4 d7d5")
    before = e.position
    out = run_engine(e, command)
    assert len(out) == 1 and out[0].startswith("info string position refused")
    assert e.position is before
    out = run_engine(e, "go nodes 1")
    assert chess.Move.from_uci(out[-1].split()[1]) in GAME.board_of(before.state).legal_moves


def test_positions_follow_the_game_and_the_search_keeps_its_tree(tiny_ckpt):
    """The moves of each `position` extend the last: only the new ones are played, and the
    search's tree follows them (its root is the new position, with the visits it had)."""
    e = in_process(ckpt=tiny_ckpt)
    reply = run_engine(e, "position startpos moves e2e4", "go nodes 40")[-1].split()[1]
    tree = e.searcher.search
    run_engine(e, f"position startpos moves e2e4 {reply}")
    assert tree.core.node(0, 0)["visits"] > 1          # the reply's subtree, kept
    np.testing.assert_array_equal(tree.nodes[0, 0], e.position.state)
    expected = GAME.from_board(chess.Board())
    for m in ("e2e4", reply):
        expected = GAME.step(expected[None], [GAME.parse_action(expected, m)])[0]
    np.testing.assert_array_equal(e.position.state, expected)
    run_engine(e, "position startpos moves d2d4")   # not an extension: a new tree
    assert tree.core.num_nodes()[0] == 0


def test_options_and_unknown_input():
    e = in_process()
    out = run_engine(e, "uci")
    assert out[0].startswith("id name azero") and out[1].startswith("id author")
    assert out[-1] == "uciok"
    options = [line for line in out if line.startswith("option ")]
    assert any(line.startswith("option name Simulations type spin default ") for line in options)
    assert any(line.startswith("option name Threads type spin default ") for line in options)
    assert "option name Ponder type check default false" in options
    assert run_engine(e, "isready") == ["readyok"]
    assert run_engine(e, "joho isready") == ["readyok"]         # words before a command skipped
    assert run_engine(e, "setoption name simulations value 77") == []
    assert e.values["simulations"] == 77
    out = run_engine(e, "setoption name Simulations value 1e400")
    assert out and "not a number" in out[0] and e.values["simulations"] == 77
    out = run_engine(e, "setoption name Simulations value 99999999999999999999999999")
    assert "outside" in out[0] and e.values["simulations"] == 1_000_000_000
    assert run_engine(e, "setoption name Ponder value true") == [] and e.values["ponder"]
    assert "neither true nor false" in run_engine(e, "setoption name Ponder value 1")[0]
    assert run_engine(e, "setoption name Move Overhead value 200") == []
    assert e.values["move overhead"] == 200
    out = run_engine(e, "setoption name Hash value 16")
    assert out[0].startswith("info string no option Hash")
    out = run_engine(e, "flip the board", "")
    assert out == ["info string unknown command: flip the board"]
    out = run_engine(e, "go nodes banana infinite7 movetime -5")
    assert out[0] == "info string go: nodes 'banana' is not a number"
    assert out[1] == "info string go: unknown word 'infinite7'"
    assert out[-1].startswith("bestmove ")


def test_threads_sets_torch_threads():
    import torch
    e = in_process()
    run_engine(e, "setoption name Threads value 1")
    assert torch.get_num_threads() == 1 and e.values["threads"] == 1


def test_isready_is_answered_while_thinking_and_a_new_command_ends_infinite(tiny_ckpt):
    e = in_process(ckpt=tiny_ckpt)
    e.handle("go infinite")
    time.sleep(0.2)
    e.handle("isready")
    assert e.send.lines[-1] == "readyok"
    assert not any(line.startswith("bestmove") for line in e.send.lines)
    e.handle("position startpos moves e2e4")       # stops the infinite search first
    out = e.send.take()
    assert out[-1].startswith("bestmove ") and e.position.moves == ("e2e4",)


def test_ponderhit_turns_the_search_into_a_timed_one(tiny_ckpt):
    """go ponder searches until ponderhit; then the clock counts from the ponderhit."""
    e = in_process(ckpt=tiny_ckpt)
    e.handle("position startpos moves e2e4")
    e.handle("go ponder wtime 1000 btime 1000")
    time.sleep(0.3)
    assert e.send.lines == [] or not e.send.lines[-1].startswith("bestmove")
    t0 = time.monotonic()
    e.handle("ponderhit")
    e.wait_thinking()
    assert time.monotonic() - t0 < 0.5              # 1 s / 30 moves, and a chunk
    assert e.send.take()[-1].startswith("bestmove ")


# ------------------------------------------------------------------ clock and scores

def test_move_seconds():
    limits = uci_clock.GoLimits
    # 100 ms left: a few ms at most, and never more than half of what the overhead leaves
    for overhead in (0, 50, 200):
        t = uci_clock.move_seconds(limits(wtime=100, btime=100), 0, overhead)
        assert 0 <= t <= 0.5 * max(0, 0.1 - overhead / 1000) + 1e-12
    assert uci_clock.move_seconds(limits(wtime=60_000, btime=1), 0, 0) == pytest.approx(2.0)
    assert uci_clock.move_seconds(limits(wtime=60_000, btime=1), 1, 0) == pytest.approx(0.001 / 30)
    assert uci_clock.move_seconds(limits(wtime=60_000, movestogo=2), 0, 0) == pytest.approx(30)
    assert uci_clock.move_seconds(limits(wtime=60_000, movestogo=1), 0, 0) == pytest.approx(30)
    assert uci_clock.move_seconds(limits(btime=3_000, binc=2_000), 1, 0) == pytest.approx(1.5)
    assert uci_clock.move_seconds(limits(movetime=1_000), 0, 50) == pytest.approx(0.95)
    assert uci_clock.move_seconds(limits(movetime=60), 0, 50) == pytest.approx(0.03)
    assert uci_clock.move_seconds(limits(movetime=1_000, wtime=3_000), 0, 0) == \
        pytest.approx(0.1)
    assert uci_clock.move_seconds(limits(wtime=-500), 0, 50) == 0
    assert uci_clock.move_seconds(limits(nodes=5), 0, 50) is None


def test_parse_go():
    limits, problems = uci_clock.parse_go(
        "wtime 1000 btime 2000.4 winc 10 binc 20 movestogo 5 depth 3 nodes 99999999999999999999 "
        "movetime nan searchmoves e2e4 d2d4 infinite ponder mate".split())
    assert (limits.wtime, limits.btime, limits.winc, limits.binc) == (1000, 2000, 10, 20)
    assert (limits.movestogo, limits.depth, limits.nodes) == (5, 3, uci_clock.MAX_NUMBER)
    assert limits.movetime is None and limits.searchmoves == ["e2e4", "d2d4"]
    assert limits.infinite and limits.ponder
    assert problems == ["movetime 'nan' is not a number", "mate without a number"]
    assert uci_clock.parse_go(["nodes", "9" * 5000])[1] == [f"nodes {'9' * 40!r} is not a number"]


def test_plan_search():
    plan = uci_clock.plan_search
    assert plan(uci_clock.GoLimits(), 0, simulations=64, overhead_ms=50) == \
        uci_clock.SearchPlan(simulations=64)
    assert plan(uci_clock.GoLimits(nodes=5, depth=0), 0, simulations=64, overhead_ms=50) == \
        uci_clock.SearchPlan(simulations=5, depth=1)
    timed = plan(uci_clock.GoLimits(movetime=1000), 0, simulations=64, overhead_ms=50)
    assert timed.simulations is None and timed.seconds == pytest.approx(0.95)
    assert plan(uci_clock.GoLimits(infinite=True, nodes=5), 0, simulations=64,
                overhead_ms=50).until_stop


def test_centipawns():
    assert centipawns(0.0) == 0
    assert centipawns(0.5) == -centipawns(-0.5) and 100 < centipawns(0.5) < 130
    assert (centipawns(0.25), centipawns(0.75), centipawns(0.9)) == (46, 265, 671)
    assert centipawns(1.0) == centipawns(7.0) > 10_000
    values = [centipawns(q) for q in np.linspace(-1, 1, 41)]
    assert values == sorted(values)


def test_info_line_of_a_mate_in_one_and_of_a_line():
    """A move that mates scores `mate 1`; otherwise cp from the value; the pv stops at the end
    of the game and every move of it is legal."""
    e = in_process()
    state = GAME.from_fen("6k1/5ppp/8/8/8/8/5PPP/R5K1 w - - 0 1")
    mate = GAME.parse_action(state, "a1a8")
    assert e._report(state, Progress(mate, 8, 0.01, 0.9, (mate,))) == ["a1a8"]
    assert e.send.take() == ["info depth 1 nodes 8 nps 800 time 10 score mate 1 pv a1a8"]
    line, s = [], state
    for m in ("a1a2", "g8f8", "a2a8"):
        line.append(GAME.parse_action(s, m))
        s = GAME.step(s[None], [line[-1]])[0]
    assert e._report(state, Progress(line[0], 0, 0.0, -0.5, tuple(line))) == \
        ["a1a2", "g8f8", "a2a8"]
    assert e.send.take() == ["info depth 3 nodes 0 nps 0 time 1 score cp -111 pv a1a2 g8f8 a2a8"]


def test_the_move_is_a_most_visited_child():
    """Chunks of a search: the last chunk's choice stands only where the whole search visited
    it at least half as much as the most visited; else the most visited child with the best
    Q."""
    from azero.protocols.uci_search import _chosen
    from azero.search import SearchOutput

    def out(action, visits, q):
        visits = np.array([visits], dtype=np.int32)
        return SearchOutput(np.array([action], np.int32), visits, visits.astype(np.float32),
                            np.zeros(1, np.float32), np.array([q], np.float32))
    assert _chosen(out(2, [5, 1, 5], [0.1, 0.9, 0.0])) == 2
    assert _chosen(out(1, [5, 1, 5], [0.1, 0.9, 0.0])) == 0
    assert _chosen(out(1, [5, 1, 5], [0.1, 0.9, 0.3])) == 2
    assert _chosen(out(1, [0, 0, 0], [np.nan] * 3)) == 1
    # A mate one visit behind a drawing move that an earlier chunk visited once more (chunks of
    # 1, 49 and 50 simulations): the last chunk's pick, the mate, stands.
    assert _chosen(out(1, [25, 24, 2], [0.0, 1.0, 0.0])) == 1
    assert _chosen(out(2, [25, 24, 12], [0.0, 1.0, 0.5])) == 0


def test_a_wrong_speed_does_not_blow_the_time(tiny_ckpt):
    """A speed measured elsewhere (here: claimed 10,000x too fast) must not make one chunk run
    far past the time: chunks grow at most twofold under a time limit."""
    e = in_process(ckpt=tiny_ckpt)
    run_engine(e, "go nodes 2")                          # compiled, warm
    e.searcher.seconds_per_simulation = 1e-7
    t0 = time.monotonic()
    out = run_engine(e, "position startpos moves e2e4", "go movetime 100")
    assert time.monotonic() - t0 < 0.3 and out[-1].startswith("bestmove ")


def test_a_search_without_a_clock_does_not_depend_on_the_speed(tiny_ckpt):
    """go nodes N (and a bare go): the same lines but for time and nps, whatever speed the
    engine measured before (none, very slow, very fast): chunks sized by the speed would run
    different Gumbel searches (1 + 39 simulations, 40 x 1, 40)."""
    def search(seconds_per_simulation):
        e = in_process(ckpt=tiny_ckpt)
        e.searcher.seconds_per_simulation = seconds_per_simulation
        lines = run_engine(e, "position startpos moves e2e4", "go nodes 40", "go")
        return [re.sub(r" (time|nps) \d+", "", line) for line in lines]
    slow = search(1.0)
    assert slow[-1].startswith("bestmove ")
    assert search(None) == slow == search(1e-7)


def test_a_stopped_search_still_has_a_move(tiny_ckpt):
    """A search stopped before it begins runs one simulation and answers (the GUI asked for
    a move)."""
    e = in_process(ckpt=tiny_ckpt)
    thinking = Thinking(uci_clock.SearchPlan(simulations=1000))
    thinking.stop()
    progress = e.searcher.think(e.position.state, thinking, lambda p: None, every=1.0)
    assert isinstance(progress, Progress) and progress.simulations == 1
    assert GAME.legal_mask(e.position.state[None])[0, progress.action]


# ------------------------------------------------------------------ the command

def test_command_errors_answer_in_one_line(tiny_ckpt, capsys):
    from azero.cli import main
    assert main(["uci", "--game", "connect4", "--ckpt", "random"]) == 2
    assert "'connect4' does not speak UCI; the games that do: chess" in capsys.readouterr().err
    assert main(["uci", "--ckpt", "/nonexistent.pt"]) == 2
    assert "/nonexistent.pt not found" in capsys.readouterr().err
    assert main(["uci", "--ckpt", "random", "--sims", "0"]) == 2
    assert "--sims must be at least 1" in capsys.readouterr().err
    # without python-chess (as if not installed): one line with the install command
    code = ("import sys; sys.modules['chess'] = None\n"
            "from azero.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "uci", "--ckpt", str(tiny_ckpt)],
                          capture_output=True, text=True, input="quit\n", timeout=60)
    err = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(err) == 1 and 'pip install -e ".[chess]"' in err[0]
    assert err[0].startswith("azero uci: chess needs the optional extra") and done.stdout == ""
