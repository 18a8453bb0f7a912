"""The Connect Four network shipped inside the package: it loads safely, it plays, it is strong."""
import subprocess
import sys

import pytest
import torch

from azero import checkpoint as ckpt
from azero.bench import solver
from azero.games import make
from azero.players import bundled_checkpoint


def test_bundled_checkpoint_loads_with_weights_only():
    path = bundled_checkpoint("connect4")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["game"] == "connect4"
    loaded = ckpt.load(path, expected_game="connect4")
    assert loaded.step > 0 and path.stat().st_size < 5_000_000


@pytest.mark.skipif(not solver.DEFAULT_POSITIONS.is_file(), reason="perfect-play positions not found")
def test_bundled_network_beats_random_play_against_the_solver():
    game = make("connect4")
    positions = solver.load_positions()[::4]       # 250 positions: a quick check
    states = solver.position_states(game, positions)
    movers = dict(solver.movers_for(str(bundled_checkpoint("connect4")), game, simulations=16))
    policy = solver.score_moves(positions, movers["raw policy"](states))["all"]
    # A uniformly random mover scores ~0.34 decisive accuracy; the shipped net is far above it.
    assert policy.decisive_accuracy > 0.6


def test_play_without_ckpt_uses_the_bundled_network():
    out = subprocess.run([sys.executable, "-m", "azero.cli", "play", "--game", "connect4",
                          "--sims", "8"], input="4\nquit\n", capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "plays" in out.stdout
