"""External UCI engines as players (azero/players/uci_player.py): spec parsing, Stockfish in a short
match, what the engine is sent, and engines that die, hang or cheat.

Stockfish must be installed (Debian/Ubuntu: apt-get install stockfish; the binary lands in
/usr/games); its tests skip without it, except on CI (CI=true), where .ci/run installs it and a
missing engine fails."""
import os
import shlex
import sys
import textwrap
import time

import numpy as np
import pytest

chess = pytest.importorskip("chess")

from azero.arena import MatchConfig, play_match  # noqa: E402
from azero.games import make  # noqa: E402
from azero.games.chess.game import Chess  # noqa: E402
from azero.players import PlayerSpecError, close_players, make_player, parse_player_spec  # noqa: E402
from azero.players.uci_player import UciEngineError, UciPlayer, find_stockfish  # noqa: E402

GAME = make("chess")
needs_stockfish = pytest.mark.skipif(
    find_stockfish() is None and not os.environ.get("CI"),
    reason="Stockfish is not installed (apt-get install stockfish)")

# A UCI engine for the tests, on python-chess's board: it logs every line it reads to LOG and
# answers `go` by MODE: "first" the first legal move in UCI order, "hang" never, "die" exits,
# "illegal" a move that is not legal, "none" bestmove (none).
FAKE_ENGINE = textwrap.dedent('''
    import sys, chess
    log_path, mode = sys.argv[1], sys.argv[2]
    board = chess.Board()
    with open(log_path, "a") as log:
        for line in sys.stdin:
            log.write(line); log.flush()
            words = line.split()
            if not words:
                continue
            if words[0] == "uci":
                print("id name fake\\nuciok", flush=True)
            elif words[0] == "isready":
                print("readyok", flush=True)
            elif words[0] == "position":
                rest = line.split(None, 1)[1]
                fen, _, moves = rest.partition(" moves ")
                board = chess.Board() if fen.startswith("startpos") else chess.Board(fen[4:])
                for m in moves.split():
                    board.push_uci(m)
            elif words[0] == "go":
                if mode == "die":
                    sys.exit(3)
                if mode == "hang":
                    continue
                move = {"first": lambda: min(m.uci() for m in board.legal_moves),
                        "illegal": lambda: "e2e5", "none": lambda: "(none)"}[mode]()
                print(f"bestmove {move}", flush=True)
            elif words[0] == "quit":
                break
''')


@pytest.fixture
def fake_engine(tmp_path):
    """fake_engine(mode) -> (player spec, log path)."""
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)

    def spec(mode: str):
        log = tmp_path / f"{mode}.log"
        return f"uci[nodes=1]:{shlex.join([sys.executable, str(script), str(log), mode])}", log
    return spec


# --------------------------------------------------------------------------- specs

def test_stockfish_spec():
    spec = parse_player_spec("stockfish:skill=0,nodes=100").uci
    assert spec.label == "stockfish-skill0-nodes100" and spec.argv is None
    assert dict(spec.options) == {"Threads": 1, "Hash": 16, "Skill Level": 0}
    assert (spec.nodes, spec.depth, spec.movetime_ms) == (100, None, None)
    spec = parse_player_spec("stockfish:depth=3, movetime=50,hash=2").uci
    assert (spec.nodes, spec.depth, spec.movetime_ms) == (None, 3, 50)
    assert dict(spec.options)["Hash"] == 2 and dict(spec.options)["Skill Level"] == 20
    assert parse_player_spec("stockfish").uci.nodes == 10_000


def test_uci_spec():
    spec = parse_player_spec("uci:azero uci --ckpt 'my net.pt'").uci
    assert spec.argv == ("azero", "uci", "--ckpt", "my net.pt") and spec.movetime_ms == 100
    assert spec.label == "uci:azero uci --ckpt 'my net.pt'"
    spec = parse_player_spec("uci[nodes=800,depth=4]:stockfish").uci
    assert spec.argv == ("stockfish",) and (spec.nodes, spec.depth, spec.movetime_ms) == \
        (800, 4, None)
    assert spec.label == "uci[nodes=800,depth=4]:stockfish"


@pytest.mark.parametrize("text, message", [
    ("stockfish:skill=21", "skill is a whole number from 0 to 20"),
    ("stockfish:level=3", "unknown option 'level=3'"),
    ("stockfish:nodes=abc", "nodes is a whole number"),
    ("stockfish:nodes=-5", "nodes is a whole number"),
    ("stockfish:nodes=99999999999999999999", "nodes is a whole number"),
    ("stockfish:nodes=1,nodes=2", "nodes is given twice"),
    ("stockfish:nodes", "unknown option 'nodes'"),
    ("uci:", "needs the engine's command line"),
    ("uci:'unclosed", "bad command line"),
    ("uci[nodes=5:stockfish", r"write uci\[nodes=N\]:COMMAND LINE"),
    ("uci[]:stockfish", "needs at least one limit"),
    ("uci[skill=1]:stockfish", "unknown option 'skill=1'"),
])
def test_bad_specs_are_clear_errors(text, message):
    with pytest.raises(PlayerSpecError, match=message):
        parse_player_spec(text)


def test_uci_engines_play_only_games_with_a_uci_client():
    with pytest.raises(PlayerSpecError, match="UCI engines play chess, not go9"):
        make_player("uci:stockfish", make("go9"))
    with pytest.raises(PlayerSpecError, match="no executable 'no-such-engine-xyz'"):
        make_player("uci:no-such-engine-xyz --flag", GAME)


# --------------------------------------------------------------------------- Stockfish

@needs_stockfish
def test_stockfish_plays_legal_moves_against_random():
    short = Chess(max_game_length=60)
    stockfish = make_player("stockfish:skill=0,nodes=50", short)
    random = make_player("random", short, seed=1)
    try:
        result = play_match(short, stockfish, random,
                            MatchConfig(games=4, in_flight=2, opening_plies=2, seed=2))
    finally:
        close_players(stockfish)
    assert len(result.records) == 4
    for record in result.records:             # every move replays under our rules
        state = short.initial_states(1)
        for action in record.moves:
            state = short.step(state, np.array([action]))
        assert short.terminal(state)[0] or short.truncated(state)[0]
    assert result.stats.losses == 0
    assert stockfish._engine is None          # closed


@needs_stockfish
def test_stockfish_at_full_strength_takes_a_mate_in_one():
    fen = "6k1/3p1ppp/8/8/8/7q/8/RK4N1 w - - 0 1"      # Ra8#
    player = make_player("stockfish:depth=3", GAME)
    try:
        player.begin(2)
        states = np.stack([GAME.from_fen(fen), GAME.initial_states(1)[0]])
        actions = player.act(states, np.array([True, True])).actions
    finally:
        player.close()
    assert GAME.move_of_action(states[0], int(actions[0])).uci() == "a1a8"
    GAME.move_of_action(states[1], int(actions[1]))    # legal at the start too


# --------------------------------------------------------------------------- what is sent

def test_the_engine_gets_each_game_with_its_history(fake_engine):
    spec, log = fake_engine("first")
    player = make_player(spec, GAME)
    player.begin(2)
    # Row 0 starts after two opening plies the player is not told of; row 1 at the start.
    opening = GAME.initial_states(1)
    for text in ("e2e4", "e7e5"):
        opening = GAME.step(opening, np.array([GAME.parse_action(opening[0], text)]))
    states = np.concatenate([opening, GAME.initial_states(1)])
    both = np.array([True, True])
    played = [[], []]                                  # the moves of each row, in UCI
    try:
        for _ in range(2):
            engine_moves = player.act(states, both).actions
            for actions in (engine_moves, None):       # the engine's move, then the opponent's
                if actions is None:                    # the opponent: the last legal action
                    actions = np.array([np.flatnonzero(m)[-1] for m in GAME.legal_mask(states)])
                for row in range(2):
                    played[row].append(GAME.move_of_action(states[row], actions[row]).uci())
                states = GAME.step(states, actions)
                player.observe(actions, both)
        player.reset(np.array([0]))                    # a new game in row 0
        states[0] = GAME.initial_states(1)[0]
        player.act(states, np.array([True, False]))
    finally:
        player.close()
    lines = log.read_text().splitlines()
    assert lines[0] == "uci" and lines[-1] == "quit"
    fen = GAME.board_of(opening[0]).fen(en_passant="fen")    # UCI keeps the e.p. square
    assert [line for line in lines if line.startswith(("position", "ucinewgame"))] == [
        "ucinewgame", f"position fen {fen}",
        "ucinewgame", "position startpos",
        "ucinewgame", f"position fen {fen} moves {' '.join(played[0][:2])}",
        "ucinewgame", f"position startpos moves {' '.join(played[1][:2])}",
        "ucinewgame", "position startpos"]            # the new game of row 0
    # the fake engine's answer: the first legal move in UCI order
    assert played[1][0] == min(m.uci() for m in chess.Board().legal_moves)


@pytest.mark.parametrize("mode, message", [
    ("die", r"failed in .*|exited \(code 3\)"),
    ("illegal", "e2e5"),
    ("none", "answered no move"),
])
def test_a_failing_engine_is_a_clear_error(fake_engine, mode, message):
    spec, _ = fake_engine(mode)
    player = make_player(spec, GAME)
    player.begin(1)
    try:
        with pytest.raises(UciEngineError, match="UCI engine '.*fake_engine.py .*" + mode):
            player.act(GAME.initial_states(1), np.array([True]))
        with pytest.raises(UciEngineError, match=message):
            player.act(GAME.initial_states(1), np.array([True]))
    finally:
        player.close()


def test_a_hanging_engine_times_out(fake_engine):
    spec, _ = fake_engine("hang")
    player = UciPlayer(GAME, parse_player_spec(spec).uci, move_timeout=1.0)
    player.begin(1)
    t0 = time.monotonic()
    try:
        with pytest.raises(UciEngineError, match="gave no move within 1 s"):
            player.act(GAME.initial_states(1), np.array([True]))
    finally:
        player.close()
    assert time.monotonic() - t0 < 10
