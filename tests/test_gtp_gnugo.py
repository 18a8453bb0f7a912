"""External GTP engines: the client's error handling (a fake engine), GtpPlayer in the arena, and
whole games against GNU Go (skipped where gnugo is not installed; CI installs it)."""
import sys
import textwrap
import time

import numpy as np
import pytest

from azero.arena import MatchConfig
from azero.cli import main
from azero.games import make
from azero.players import PlayerSpecError, make_player, parse_player_spec
from azero.players.gtp_player import GtpEngineSpec, GtpPlayer, reconstruct_moves
from azero.protocols.gtp_client import (GtpClient, GtpEngineError, find_gnugo, gnugo_command,
                                        referee_game)
from azero.records import read_records

GAME = make("go9")
PASS = GAME.spec.num_actions - 1
needs_gnugo = pytest.mark.skipif(find_gnugo() is None, reason="GNU Go (gnugo) not installed")

FAKE_ENGINE = textwrap.dedent('''
    import sys, time
    mode = sys.argv[1]
    moves = 0
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cid = words.pop(0) if words[0].isdigit() else ""
        name = words[0]
        if name == "quit":
            print(f"={cid} \\n", flush=True)
            break
        if name in ("genmove", "kgs-genmove_cleanup"):
            if mode == "crash":
                sys.stderr.write("fatal: out of cheese\\n")
                sys.exit(3)
            if mode == "hang":
                time.sleep(60)
            if mode == "closeout":                 # closes its output, keeps running
                import os
                os.close(1)
                time.sleep(60)
            if mode == "error":
                print(f"?{cid} no moves today\\n", flush=True)
                continue
            answer = {"resign": "resign", "illegal": "E5", "pass": "pass"}[mode]
            print(f"={cid} {answer}\\n", flush=True)
            continue
        print(f"={cid} \\n", flush=True)
''')


@pytest.fixture
def fake(tmp_path):
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE_ENGINE)
    return lambda mode: [sys.executable, str(script), mode]


def test_player_specs_for_gtp_engines():
    spec = parse_player_spec("gnugo:level=1")
    assert spec.kind == "gtp" and spec.label == "gnugo-level1"
    assert spec.gtp.gnugo_level == 1 and spec.gtp.genmove == "kgs-genmove_cleanup"
    assert parse_player_spec("gnugo").gtp.gnugo_level == 10
    assert parse_player_spec("gnugo:level=3,cleanup=0").gtp.genmove == "genmove"
    spec = parse_player_spec("gtp:my-engine --mode gtp --name 'two words'")
    assert spec.gtp.argv == ("my-engine", "--mode", "gtp", "--name", "two words")
    assert spec.label == "gtp:my-engine --mode gtp --name 'two words'"
    for bad in ("gnugo:level=11", "gnugo:lvl=1", "gnugo:level=x", "gnugo:level", "gtp:",
                "gtp:  ", "gtp:'unclosed"):
        with pytest.raises(PlayerSpecError):
            parse_player_spec(bad)
    with pytest.raises(PlayerSpecError, match="go9"):
        make_player("gnugo:level=1", make("connect4"))
    assert gnugo_command(2, executable="/x/gnugo") == [
        "/x/gnugo", "--mode", "gtp", "--chinese-rules", "--positional-superko",
        "--forbid-suicide", "--level", "2"]
    assert gnugo_command(None, executable="/x/gnugo") == [
        "/x/gnugo", "--mode", "gtp", "--chinese-rules", "--positional-superko",
        "--forbid-suicide"]


def test_engine_that_crashes_is_a_clear_error(fake):
    with GtpClient(fake("crash"), name="fake") as engine:
        with pytest.raises(GtpEngineError, match=r"exited \(status 3\)") as info:
            engine("genmove b")
    assert "out of cheese" in str(info.value) and "genmove b" in str(info.value)


def test_engine_that_hangs_times_out(fake):
    with GtpClient(fake("hang"), name="fake") as engine:
        t0 = time.monotonic()
        with pytest.raises(GtpEngineError, match="timeout"):
            engine("genmove b", timeout=0.5)
        assert time.monotonic() - t0 < 5 and not engine.alive


def test_engine_that_refuses_is_a_clear_error(fake):
    with GtpClient(fake("error"), name="fake") as engine:
        assert engine("boardsize 9") == ""
        with pytest.raises(GtpEngineError, match=r"genmove w.*answered '\? no moves today'"):
            engine("genmove w")
        assert not engine.command("genmove w", check=False).ok
        assert engine("name") == ""                       # still talking


def test_engine_that_cannot_start():
    with pytest.raises(GtpEngineError, match="cannot start"):
        GtpClient(["/nonexistent/engine", "--gtp"])
    with pytest.raises(GtpEngineError, match="exited"):
        GtpClient([sys.executable, "-c", "import sys; sys.exit(1)"], startup_timeout=10)


def test_illegal_engine_move_names_the_engine(fake):
    player = GtpPlayer(GAME, GtpEngineSpec(label="fake", argv=tuple(fake("illegal"))))
    player.begin(1)
    state = GAME.step(GAME.initial_states(1), np.array([GAME.parse_point("E5")]))
    player.observe(np.array([GAME.parse_point("E5")]), np.array([True]))
    with pytest.raises(GtpEngineError, match="fake answered 'E5'.*occupied"):
        player.act(state, np.array([True]))
    player.close()


def test_a_resigning_engine_loses_at_once_and_the_record_says_so(fake, tmp_path):
    """The engine resigns at its first move: each game ends there, a win for the other side
    (even where the board would score otherwise), recorded as B+R / W+R in the SGF."""
    from azero.arena import run_match
    from azero.games.go9.records import read_sgf_records
    gtp_player = GtpPlayer(GAME, GtpEngineSpec(label="quitter", argv=tuple(fake("resign"))))
    result = run_match(GAME, make_player("random", GAME, seed=1), gtp_player,
                       MatchConfig(games=4, in_flight=2, opening_plies=2, sprt=None),
                       records=tmp_path / "games")
    gtp_player.close()
    assert result.stats.games == 4 and result.stats.wins == 4 and gtp_player.resignations == 4
    for record in result.records:
        quitter = 1 if record.players[1] == "quitter" else 0
        assert record.info["resigned"] == "quitter"
        assert record.result == (1.0 if quitter == 1 else 0.0)
        own_moves = [ply for ply in range(record.opening_plies, len(record.moves))
                     if ply % 2 == quitter]
        assert own_moves == []                     # resigned before its first own move
    written = read_sgf_records(GAME, tmp_path / "games")
    assert len(written) == 4
    for record in written:
        quitter = 1 if record.players[1] == "quitter" else 0
        assert record.result == (1.0 if quitter == 1 else 0.0)
    texts = sorted(p.read_text() for p in (tmp_path / "games").glob("*.sgf"))
    assert sum("RE[B+R]" in t for t in texts) == 2 and sum("RE[W+R]" in t for t in texts) == 2


def test_reconstructing_an_opening_without_captures():
    state = GAME.from_moves("pass D4 E5")
    moves = reconstruct_moves(GAME, state)
    replay = GAME.from_moves([GAME.format_action(state, a) for a in moves])
    assert np.array_equal(GAME.grid(replay), GAME.grid(state)) and len(moves) == 3
    captured = GAME.from_moves("A1 B1 pass A2")                # White captured A1 ...
    moves = reconstruct_moves(GAME, captured)                  # ... the same board without it
    assert moves == [PASS, GAME.parse_point("A2"), PASS, GAME.parse_point("B1")]
    crowded = GAME.from_diagram("XXX", to_play=1, ply=1)      # no game reaches this in 1 ply
    with pytest.raises(GtpEngineError, match="cannot set up"):
        reconstruct_moves(GAME, crowded)


# ------------------------------------------------------------------------- GNU Go

def _azero_gtp(spec):
    return GtpClient([sys.executable, "-m", "azero.cli", "gtp", "--ckpt", spec], name="azero")


@needs_gnugo
def test_azero_gtp_against_gnugo_whole_games():
    with _azero_gtp("random") as ours, GtpClient(gnugo_command(1), name="gnugo") as gnugo:
        assert ours("name") == "azero" and ours("protocol_version") == "2"
        for black, white in ((ours, gnugo), (gnugo, ours)):
            # GNU Go captures dead stones before passing (Tromp-Taylor counts every stone).
            r = referee_game(GAME, black, white, genmove=(
                "kgs-genmove_cleanup" if black is gnugo else "genmove",
                "kgs-genmove_cleanup" if white is gnugo else "genmove"))
            assert r.reason in ("two passes", "resignation", "move limit")
            assert len(r.moves) >= 10 and r.result_string[:2] in ("B+", "W+")
            colour = "B" if black is ours else "W"
            if r.score is not None:             # our final_score is the referee's score
                assert r.engine_scores[colour] == f"{r.result_string[:2]}{abs(r.score):.1f}"
            assert r.engine_scores["W" if colour == "B" else "B"] is not None
            if r.reason != "resignation":       # GNU Go beats random by far
                assert r.winner == (1 if black is ours else 0)


@needs_gnugo
def test_arena_against_gnugo(tmp_path, capsys):
    records = tmp_path / "vs-gnugo"
    assert main(["arena", "--game", "go9", "--a", "random", "--b", "gnugo:level=1",
                 "--games", "2", "--no-sprt", "--quiet", "--records", str(records)]) == 0
    out = capsys.readouterr().out
    assert "random vs gnugo-level1: W/D/L 0/0/2" in out
    games = read_records(GAME, records)
    assert len(games) == 2 and {g.players for g in games} == {("random", "gnugo-level1"),
                                                            ("gnugo-level1", "random")}
    assert all(g.info["score_a"] == 0.0 for g in games)


@pytest.mark.slow
@needs_gnugo
@pytest.mark.parametrize("level", [1, 5])
def test_mcts_rollout_against_gnugo_games(level):
    """Plain MCTS (64 rollouts) against GNU Go: whole games both ways, every move checked."""
    with _azero_gtp("mcts-rollout:64") as ours, GtpClient(gnugo_command(level)) as gnugo:
        for black, white in ((ours, gnugo), (gnugo, ours)) * 2:
            r = referee_game(GAME, black, white, genmove=(
                "kgs-genmove_cleanup" if black is gnugo else "genmove",
                "kgs-genmove_cleanup" if white is gnugo else "genmove"))
            assert r.reason in ("two passes", "resignation", "move limit")


def test_an_error_drops_the_engines_whose_answers_are_pending(fake):
    """Row 0's genmove fails while row 1's answer is still queued: row 1's engine must not be
    kept, or its next command would read the stale genmove answer as its own."""
    player = GtpPlayer(GAME, GtpEngineSpec(label="fake", argv=tuple(fake("error"))))
    player.begin(2)
    states = GAME.initial_states(2)
    with pytest.raises(GtpEngineError, match="no moves today"):
        player.act(states, np.array([True, True]))
    assert player._engines[1] is None                    # dropped (killed), not reused
    with pytest.raises(GtpEngineError, match="no moves today"):   # fresh engines, same error
        player.act(states, np.array([True, True]))
    player.close()


def test_command_is_refused_while_answers_are_pending(fake):
    with GtpClient(fake("pass"), name="fake") as engine:
        engine.send("genmove b")
        assert engine.pending == 1
        with pytest.raises(GtpEngineError, match="pending"):
            engine("name")
        assert engine.receive().text == "pass"           # the answer still pairs up
        assert engine.pending == 0 and engine("name") == ""


def test_engine_that_closes_its_output_but_lingers_is_killed(fake):
    with GtpClient(fake("closeout"), name="fake") as engine:
        with pytest.raises(GtpEngineError, match="closed its output"):
            engine("genmove b")
        assert not engine.alive


@needs_gnugo
def test_a_game_past_the_move_limit_goes_on_and_agrees_with_gnugo():
    """Our rules end a game after 180 plies; over GTP it goes on (rebased, see azero/protocols/
    gtp.py). A random game of 300 plies, moves drawn from our engine's own legal moves, played
    into GNU Go too: GNU Go accepts every move, and the boards agree all along, across captures
    and across the rebase (also after undoing back over it)."""
    import io
    from azero.protocols.gtp import GtpEngine, PlayerMover

    ours = GtpEngine(PlayerMover(make_player("random", GAME, seed=5)), GAME, log=io.StringIO())
    rng = np.random.default_rng(11)

    def ask(line):
        reply = ours.handle(line)
        assert reply.startswith("="), (line, reply)
        return reply[1:].strip()

    def agree(gnugo):
        grid = GAME.grid(ours.state)
        for colour, stone in (("black", 0), ("white", 1)):
            mine = {GAME.format_action(ours.state, int(p)).upper()
                    for p in np.flatnonzero(grid.reshape(-1) == stone)}
            assert set(gnugo(f"list_stones {colour}").split()) == mine

    with GtpClient(gnugo_command(1), name="gnugo") as gnugo:
        gnugo("boardsize 9")
        gnugo("clear_board")
        gnugo("komi 7")
        for ply in range(300):
            legal = np.flatnonzero(GAME.legal_mask(ours.state[None])[0, :PASS])
            colour = "bw"[ply % 2]
            vertex = "pass" if len(legal) == 0 else GAME.format_action(
                ours.state, int(rng.choice(legal)))
            if vertex == "pass" and ply > 0 and ours.moves[-1] == PASS:
                vertex = GAME.format_action(ours.state, int(legal[0])) if len(legal) else vertex
            ask(f"play {colour} {vertex}")
            gnugo(f"play {colour} {vertex}")
            if ply % 25 == 0 or ply in (179, 180, 181):
                agree(gnugo)
        agree(gnugo)
        assert int(GAME.move_number(ours.state[None])[0]) < 180    # the state was rebased
        for _ in range(140):                                        # back over the rebase
            ask("undo")
            gnugo("undo")
        agree(gnugo)
        assert len(ours.moves) == 160
        before = ours.state.copy()
        reply = ask("genmove b")
        assert reply == "pass" or GAME.legal_mask(before[None])[0, GAME.parse_action(before, reply)]
