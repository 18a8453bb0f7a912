"""`azero bench selfplay`: the JSON fields every bench prints, and rates that are real counts."""
import json
import subprocess
import sys


def test_bench_selfplay_json_lines_for_both_games():
    out = subprocess.run([sys.executable, "-m", "azero.cli", "bench", "selfplay", "--json",
                          "--game", "connect4_tiny", "go9_tiny", "--games", "4", "--steps", "2",
                          "--rounds", "1", "--precision", "bf16"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    # per game: the bf16 snapshot against the eager evaluator, then against the fp32 snapshot
    assert [(r["name"].split()[0], r["baseline"]) for r in rows] == [
        (name, baseline) for name in ("connect4_tiny", "go9_tiny")
        for baseline in ("same, eager torch evaluator (no BN folding)", "same, fp32 snapshot")]
    assert all(r["name"].endswith("cpu bfloat16") for r in rows)
    for r in rows:
        assert set(r) == {"name", "value", "unit", "peer", "peer_value", "ratio", "baseline",
                          "baseline_value", "baseline_ratio", "date", "machine", "command"}
        # The eager evaluator is our own other path: a baseline, never a peer.
        assert r["peer"] is None and r["ratio"] is None
        assert r["unit"] == "positions/s" and r["value"] > 0 and r["baseline_value"] > 0
        assert abs(r["baseline_ratio"] - r["value"] / r["baseline_value"]) < 1e-9
        assert "4 games" in r["name"]


def test_bench_selfplay_ckpt_needs_one_game(tmp_path):
    out = subprocess.run([sys.executable, "-m", "azero.cli", "bench", "selfplay", "--ckpt",
                          str(tmp_path / "x.pt")], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "--ckpt needs exactly one --game" in out.stderr


def test_bench_selfplay_measures_a_muzero_config_over_its_learned_model():
    """A MuZero config's self-play is the search over its model (MuZeroEvaluator's snapshot, BN
    folded) against the live fp32 net; --split is for AlphaZero configs and says so."""
    base = [sys.executable, "-m", "azero.cli", "bench", "selfplay", "--game", "connect4_muzero",
            "--games", "4", "--steps", "2", "--rounds", "1", "--precision", "fp32"]
    out = subprocess.run(base + ["--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["baseline"] for r in rows] == ["same, eager torch evaluator (no BN folding)"]
    assert "MuZero latent 32" in rows[0]["name"] and "4 games" in rows[0]["name"]
    assert rows[0]["value"] > 0 and rows[0]["baseline_value"] > 0
    out = subprocess.run(base + ["--split"], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0 and "--split: connect4_muzero is a MuZero config" in out.stderr
