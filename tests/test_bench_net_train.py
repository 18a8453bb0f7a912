"""`azero bench net` (inference by batch size) and `azero bench train` (optimizer steps and the
loop's sample + step): JSON fields, one row per batch size, real inputs, bad arguments."""
import json

import numpy as np
import pytest

from azero.bench.net import random_positions
from azero.cli import main
from azero.games import make


FIELDS = {"name", "value", "unit", "peer", "peer_value", "ratio", "baseline", "baseline_value",
          "baseline_ratio", "date", "machine", "command"}


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.parametrize("name", ["connect4", "go9"])
def test_random_positions_are_live_positions_of_all_stages(name):
    game = make(name)
    states = random_positions(game, 3000, np.random.default_rng(0))
    assert states.shape == (3000, game.spec.state_size)
    assert not game.terminal(states).any()
    moves = game.move_number(states)
    assert moves.min() == 0 and moves.max() >= 20         # openings to late positions
    assert len(np.unique(states, axis=0)) > 1000          # not one game repeated


def test_bench_net_rows_per_game_and_batch(capsys):
    rows = run_json(capsys, ["bench", "net", "--game", "connect4_tiny", "go9_tiny",
                             "--batch", "1", "8", "--seconds", "0.01", "--rounds", "1",
                             "--precision", "fp32"])
    assert [(r["name"].split()[0], r["name"].split("batch ")[1].split(",")[0]) for r in rows] == [
        ("connect4_tiny", "1"), ("connect4_tiny", "8"), ("go9_tiny", "1"), ("go9_tiny", "8")]
    for r in rows:
        assert set(r) == FIELDS
        # The eager fp32 evaluator is our own other path: a baseline, never a peer.
        assert r["peer"] is None and r["peer_value"] is None and r["ratio"] is None
        assert r["baseline"] == "same net, eager fp32 evaluator"
        assert r["unit"] == "positions/s" and r["value"] > 0 and r["baseline_value"] > 0
        assert r["baseline_ratio"] == pytest.approx(r["value"] / r["baseline_value"])
        assert r["command"] == ("azero bench net --game connect4_tiny go9_tiny --batch 1 8 "
                                "--seconds 0.01 --rounds 1 --precision fp32")
        assert r["date"] and "cores" in r["machine"]


def test_bench_net_times_bf16_and_tried_variants_against_the_fp32_snapshot(capsys):
    rows = run_json(capsys, ["bench", "net", "--game", "connect4_tiny", "--batch", "8",
                             "--seconds", "0.01", "--rounds", "1", "--precision", "bf16",
                             "--try", "int8-dynamic"])
    assert [r["baseline"] for r in rows] == ["same net, eager fp32 evaluator",
                                             "same net, fp32 snapshot", "same net, fp32 snapshot"]
    assert rows[0]["name"].endswith("cpu bfloat16") and rows[1]["name"] == rows[0]["name"]
    assert "int8-dynamic (first call" in rows[2]["name"]
    assert rows[1]["baseline_value"] == rows[2]["baseline_value"] > 0      # one fp32 timing
    assert all(r["value"] > 0 for r in rows)


def test_bench_train_reports_the_step_and_the_loop_step(capsys):
    import torch
    from azero.nets.runtime import training_autocast_dtype
    bf16 = training_autocast_dtype(torch.device("cpu")) is not None   # a CPU with native bf16
    rows = run_json(capsys, ["bench", "train", "--game", "connect4_tiny", "go9_tiny",
                             "--batch", "16", "--steps", "2", "--rounds", "1",
                             "--positions", "300"])
    assert len(rows) == 4
    for game_rows, name in ((rows[:2], "connect4_tiny"), (rows[2:], "go9_tiny")):
        step, loop = game_rows
        assert step["name"].startswith(f"{name} ") and "optimizer step, batch 16, cpu" in step["name"]
        assert "replay sample + optimizer step" in loop["name"]
        for r in game_rows:
            assert r["unit"] == "samples/s" and r["value"] > 0
            assert set(r) == FIELDS
            assert r["peer"] is None and r["ratio"] is None      # no outside peer
        # the step under bf16 autocast is timed against the same step in fp32 where the CPU
        # has native bf16; elsewhere a CPU trains in fp32 and there is no baseline
        assert step["baseline"] == ("same step in fp32" if bf16 else None)
        assert (step["baseline_value"] > 0) if bf16 else step["baseline_value"] is None
        assert loop["baseline"] is None


@pytest.mark.parametrize("argv, says", [
    (["bench", "net", "--game", "connect4_tiny", "--batch", "0"], "--batch"),
    (["bench", "train", "--game", "connect4_tiny", "--batch", "64", "--positions", "32"],
     "--positions"),
])
def test_bench_net_and_train_refuse_bad_sizes(capsys, argv, says):
    assert main(argv) == 2
    assert says in capsys.readouterr().err
