"""The networks shipped inside the package (Connect Four, Go 9x9, chess): they load safely and play."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from azero import checkpoint as ckpt
from azero.bench import solver
from azero.games import make
from azero.games.connect4.solver import DEFAULT_POSITIONS, load_positions, position_states
from azero.players import bundled_checkpoint


def test_bundled_checkpoint_loads_with_weights_only():
    path = bundled_checkpoint("connect4")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["game"] == "connect4"
    loaded = ckpt.load(path, expected_game="connect4")
    assert loaded.step > 0 and path.stat().st_size < 5_000_000


@pytest.mark.skipif(not DEFAULT_POSITIONS.is_file(), reason="perfect-play positions not found")
def test_bundled_network_beats_random_play_against_the_solver():
    game = make("connect4")
    positions = load_positions()[::4]       # 250 positions: a quick check
    states = position_states(game, positions)
    movers = dict(solver.movers_for(str(bundled_checkpoint("connect4")), game, simulations=16))
    policy = solver.score_moves(positions, movers["raw policy"](states))["all"]
    # A uniformly random mover scores ~0.34 decisive accuracy; the shipped net (generation 5 of
    # the 6x64 H200 run) scores 0.950 raw on these 250 positions (0.943 on all 1000).
    assert policy.decisive_accuracy > 0.9


def test_play_without_ckpt_uses_the_bundled_network():
    out = subprocess.run([sys.executable, "-m", "azero.cli", "play", "--game", "connect4",
                          "--sims", "8"], input="4\nquit\n", capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "plays" in out.stdout


def test_bundled_go_network_loads_safely_and_plays_over_gtp():
    """`azero gtp` without --ckpt plays the shipped Go network: legal moves over GTP v2."""
    path = bundled_checkpoint("go9")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["game"] == "go9" and path.stat().st_size < 5_000_000
    proc = subprocess.Popen([sys.executable, "-m", "azero.cli", "gtp", "--sims", "8"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def ask(command: str) -> str:
        proc.stdin.write(command + "\n")
        proc.stdin.flush()
        lines = []
        while (line := proc.stdout.readline()) not in ("\n", ""):
            lines.append(line.rstrip())
        return "\n".join(lines)

    game = make("go9")
    state = game.initial_states(1)
    try:
        assert ask("1 name") == "=1 azero"
        for i in range(3):                              # black by the bot, white by us
            reply = ask(f"{10 + i} genmove b")
            assert reply.startswith(f"={10 + i} "), reply
            state = game.step(state, np.array([game.parse_action(state[0], reply.split()[1])]))
            white = int(np.flatnonzero(game.legal_mask(state)[0, :81])[0])
            assert ask(f"play w {game.format_action(state[0], white)}") == "="
            state = game.step(state, np.array([white]))
        assert ask("quit") == "="
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.communicate()


def test_bundled_chess_network_loads_safely_and_plays_through_a_uci_client():
    """`azero uci` without --ckpt plays the shipped chess network: python-chess's own UCI client
    drives it through a few moves, each legal, and the shipped file loads with weights_only."""
    chess_engine = pytest.importorskip("chess.engine")
    import chess
    path = bundled_checkpoint("chess")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["game"] == "chess" and path.stat().st_size < 8_000_000
    assert ckpt.load(path, expected_game="chess").step > 0
    engine = chess_engine.SimpleEngine.popen_uci([sys.executable, "-m", "azero.cli", "uci"],
                                                 timeout=120)
    try:
        board = chess.Board()
        for _ in range(2):
            move = engine.play(board, chess_engine.Limit(nodes=16)).move
            assert move in board.legal_moves
            board.push(move)
            board.push(next(iter(board.legal_moves)))      # our reply: any legal move
    finally:
        engine.quit()
