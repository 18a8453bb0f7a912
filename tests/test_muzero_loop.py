"""The main job with --algo muzero, on a tiny Connect Four config: MuZero self-play writes
trajectories, the MuZero trainer trains on them, candidates are gated and promoted, resume after
kill -9, and --init across algorithms."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from azero import checkpoint as ckpt
from azero.config import load_config
from azero.loop import Limits, run_loop
from azero.muzero.replay import TrajectoryBuffer, trajectory_dir
from azero.players import MuZeroPlayer, make_player
from azero.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]


def tiny(run_dir, *extra):
    return load_config("connect4_muzero_tiny", [f"run_dir={run_dir}", *extra])


def selfplay_cmd(run_dir, *extra):
    return [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4", "--algo", "muzero",
            "--config", "connect4_muzero_tiny", "--run-dir", str(run_dir), "--no-progress", *extra]


def stored_games(run: RunDir) -> int:
    """Games in the trajectory shards on disk; every shard must be complete and hold whole games
    (each ends with its final row, action -1)."""
    total = 0
    for p in sorted(trajectory_dir(run.root).glob("shard-*.npz")):
        with np.load(p, allow_pickle=False) as data:
            assert data["states"].shape[0] == data["action"].shape[0] > 0
            assert data["action"][-1] == -1
            assert (data["action"] == -1).sum() == int(data["num_games"])
            total += int(data["num_games"])
    return total


def assert_run_is_whole(run: RunDir, killed=False):
    for p in run.checkpoints.rglob("*.pt"):
        loaded = ckpt.load(p, expected_game="connect4")      # raises on a half-written file
        assert loaded.algorithm == "muzero" and loaded.architecture["kind"] == "muzero"
    for p in run.root.rglob("*"):
        if p.name.endswith(".tmp"):
            assert killed and p.name.startswith("."), p


def test_a_muzero_run_trains_gates_promotes_and_resumes(tmp_path):
    run_dir = tmp_path / "run"
    run = RunDir.at(run_dir)
    summary = run_loop(tiny(run_dir, "muzero.reanalyze_fraction=0.5"), Limits(iterations=1),
                       progress=False)
    assert summary["iterations"] == 1 and summary["step"] >= 4     # it trains on during a gate
    (gate,) = [r for r in run.read_metrics() if r["event"] == "gate"]
    assert gate["step"] == 4
    assert gate["games"] == 4 and gate["wins"] + gate["draws"] + gate["losses"] == 4
    trains = [r for r in run.read_metrics() if r["event"] == "train"]
    # the Reanalyze worker ran beside the trainer, paced at 0.5 x 16 / 1 = 8 positions for each
    # step the trainer announced, and the trainer trained on the targets it refreshed
    reanalyzed = sum(r["positions"] for r in run.read_metrics() if r["event"] == "reanalyze")
    assert 0 < reanalyzed <= 8 * summary["step"]
    assert trains[-1]["reanalyzed_shards_live"] > 0
    assert all(k in trains[-1] for k in ("policy_loss", "value_loss", "reward_loss"))
    assert not (run.root / "replay").exists() or not list(run.replay.glob("shard-*"))
    games = stored_games(run)
    assert games >= summary["games_seen"] > 0       # workers write their last games on the way out
    assert_run_is_whole(run)

    # Resumed with every candidate promoted (gate off): generation 1, then 2; the workers load
    # each new best and rebuild their search over it without dying.
    summary2 = run_loop(tiny(run_dir, "gate.enabled=false"), Limits(iterations=2), progress=False)
    generation = summary["generation"] + 2          # the first gate may have promoted already
    assert summary2["generation"] == generation
    assert not any(r["event"] == "worker_restart" for r in run.read_metrics())
    assert [r["event"] for r in run.read_metrics()].count("start") == 2
    best = ckpt.load(run.best, expected_game="connect4")
    assert best.algorithm == "muzero" and best.metadata["generation"] == generation
    # a promoted MuZero network gets the perfect-play figures, as an AlphaZero one does
    promoted = [r for r in run.read_metrics() if r["event"] == "gate" and r["promoted"]]
    assert best.step == promoted[-1]["step"] > summary["step"] - 4       # a run-2 candidate
    assert summary2["step"] >= best.step
    assert len(promoted) >= 2 and all(0 <= r["solver/search_decisive"] <= 1 for r in promoted)
    assert stored_games(run) >= games
    assert_run_is_whole(run)
    # the trainer's windows come from the trajectories; the best network plays as a MuZero player
    buffer = TrajectoryBuffer(trajectory_dir(run_dir), load_config("connect4").make_game(), 10_000,
                              unroll_steps=3)
    buffer.refresh()
    assert buffer.sample(4, np.random.default_rng(0)).actions.shape == (4, 3)
    assert isinstance(make_player(run.best, load_config("connect4").make_game()), MuZeroPlayer)


@pytest.mark.slow     # ~35 s; the trainer's own SIGKILL test (test_muzero_train.py) runs always
def test_sigkill_of_a_muzero_run_loses_nothing(tmp_path):
    """Kills of the trainer, self-play and the Reanalyze worker at random moments; the stored
    refreshed targets stay readable and the resumed run reads them."""
    from test_loop import kill_at_random_moments
    run_dir = tmp_path / "run"
    run = RunDir.at(run_dir)
    cmd = selfplay_cmd(run_dir, "--set", "muzero.reanalyze_fraction=0.5")
    done = kill_at_random_moments(cmd, run, trajectory_dir(run_dir), attempts=3,
                                  wait_from=1, pause=(1.0, 5.0), seed=11,
                                  stored_games=stored_games,
                                  assert_run_is_whole=assert_run_is_whole)
    assert "resuming" in done.stderr
    assert ckpt.read_payload(run.trainer_state)["step"] >= 4
    trains = [r for r in run.read_metrics() if r["event"] == "train"]
    assert trains[-1]["reanalyzed_shards_live"] > 0


def test_init_takes_a_muzero_network_and_refuses_the_other_algorithm(tmp_path):
    from azero.muzero.train import MuZeroTrainer
    from azero.train import Trainer

    config = tiny(tmp_path / "source", "muzero.latent_channels=6")
    game = config.make_game()
    source = MuZeroTrainer.create(config, game, "cpu")
    with torch.no_grad():
        for w in source.net.parameters():
            w.uniform_(-0.5, 0.5)
    source.step = 321
    mz = source.save(tmp_path / "muzero.pt")
    az_config = load_config("connect4_tiny", [f"run_dir={tmp_path / 'az'}"])
    az = Trainer.create(az_config, game, "cpu").save(tmp_path / "alphazero.pt")

    def selfplay(args, timeout=300):
        return subprocess.run([sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4",
                               "--no-progress", *args], capture_output=True, text=True,
                              timeout=timeout)

    # a MuZero network starts a MuZero run: its latent size replaces the config's (the command's
    # config resolution, in process: starting the run's workers adds nothing here)
    import argparse

    from azero.commands.selfplay import resolve_config
    from azero.loop import check_init, prepare_run
    run_dir = tmp_path / "run"
    args = argparse.Namespace(overrides=[], workers=None, device=None, run_dir=str(run_dir),
                              config="connect4_muzero_tiny", game="connect4", init=str(mz),
                              algo="muzero")
    config = resolve_config(args)
    run = prepare_run(config, check_init(config, mz))
    first = ckpt.load(run.generation(0), expected_game="connect4")
    assert first.algorithm == "muzero" and first.architecture["latent_channels"] == 6
    expected = source.net.state_dict()
    assert all(torch.equal(v, expected[k].cpu()) for k, v in first.model.state_dict().items())
    assert load_config(str(run.config_file)).muzero.latent_channels == 6
    # ... and that run is a MuZero run: --algo alphazero cannot resume it
    other = selfplay(["--algo", "alphazero", "--run-dir", str(run_dir), "--iterations", "1"])
    assert other.returncode == 2 and "trains muzero" in other.stderr

    # an AlphaZero network for a MuZero run, a MuZero network for an AlphaZero run: refused
    # with the reason, before anything is written
    refused = selfplay(["--algo", "muzero", "--config", "connect4_muzero_tiny", "--run-dir",
                        str(tmp_path / "r1"), "--init", str(az)], timeout=120)
    assert refused.returncode == 2
    assert "alphazero.pt is a checkpoint of alphazero and this run trains muzero" in refused.stderr
    refused = selfplay(["--config", "connect4_tiny", "--run-dir", str(tmp_path / "r2"), "--init",
                        str(mz)], timeout=120)
    assert refused.returncode == 2
    assert "muzero.pt is a checkpoint of muzero and this run trains alphazero" in refused.stderr
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_a_short_muzero_run_beats_random(tmp_path):
    """Issue 13's bar: a short MuZero run on Connect Four (4 minutes of the main job, one
    self-play worker, a small net) beats `random` in >= 90% of 100 games."""
    from azero.arena import MatchConfig, play_match
    from azero.players import RandomPlayer

    config = load_config("connect4_muzero", [
        f"run_dir={tmp_path / 'run'}", "selfplay.workers=1", "selfplay.games_per_worker=64",
        "selfplay.games_per_shard=16", "replay.window_positions=30000",
        "replay.min_positions_to_train=1000", "train.batch_size=64", "train.warmup_steps=50",
        "train.total_steps=3000", "train.checkpoint_every_steps=100", "train.device=cpu",
        "gate.games=20", "log.tensorboard=false", "log.progress=false",
        "muzero.latent_channels=16", "muzero.reward_hidden=16", "model.value_hidden=32"])
    summary = run_loop(config, Limits(hours=4 / 60), progress=False)
    game = config.make_game()
    best = make_player(RunDir.at(config.run_dir).best, game, name="muzero")
    assert isinstance(best, MuZeroPlayer)
    result = play_match(game, best, RandomPlayer(game, seed=1),
                        MatchConfig(games=100, opening_plies=0, sprt=None, seed=2))
    stats = result.stats
    print(f"after {summary['step']} steps, generation {summary['generation']}, "
          f"{summary['positions_seen']} positions: {stats}")
    assert stats.wins >= 0.90 * stats.games
