"""`azero bench solver`: scoring movers against the perfect-play Connect Four positions."""
import json

import numpy as np
import pytest
import torch

from azero.bench.solver import (STAGES, SolvedPosition, load_solved_positions, one_hot,
                                policy_mover, score_moves, uniform_mover)
from azero.games.connect4.solver import DEFAULT_POSITIONS, load_positions, position_states
from azero.cli import main
from azero.games import make

GAME = make("connect4")
needs_positions = pytest.mark.skipif(not DEFAULT_POSITIONS.is_file(),
                                     reason=f"{DEFAULT_POSITIONS} not present")


@pytest.fixture(scope="module")
def dev():
    positions = load_positions(DEFAULT_POSITIONS)
    return positions, position_states(GAME, positions)


def oracle_probs(positions):
    """A perfect player read off the file: the first optimal column."""
    return one_hot(np.array([p.optimal[0] for p in positions]), GAME.spec.num_actions)


@needs_positions
def test_dev_file_as_the_readme_describes(dev):
    positions, states = dev
    assert len(positions) == 1000
    assert sum(p.decisive for p in positions) == 487
    assert {p.stage for p in positions} == set(STAGES)
    assert states.shape == (1000, GAME.spec.state_size)


@needs_positions
def test_oracle_is_perfect_and_anti_oracle_is_not(dev):
    positions, states = dev
    scores = score_moves(positions, oracle_probs(positions))
    for stage in (*STAGES, "all"):
        assert scores[stage].decisive_accuracy == 1.0
        assert scores[stage].optimal_rate == 1.0
    # On a few positions only, as the brief's check: still perfect.
    few = score_moves(positions[:25], oracle_probs(positions[:25]))["all"]
    assert few.decisive_accuracy == 1.0 and few.positions == 25
    # A mover that always throws the game where it can: 0 decisive accuracy.
    blunders = []
    for p in positions:
        losing = [a for a in p.legal if a not in p.preserving]
        blunders.append(losing[0] if losing else p.legal[0])
    worst = score_moves(positions, one_hot(np.array(blunders), 7))["all"]
    assert worst.decisive_accuracy == 0.0 and worst.decisive_positions == 487


@needs_positions
def test_random_baseline_matches_readme(dev):
    positions, states = dev
    scores = score_moves(positions, uniform_mover(GAME)(states))["all"]
    assert scores.decisive_accuracy == pytest.approx(0.34, abs=0.005)
    assert scores.optimal_rate == pytest.approx(0.39, abs=0.005)


def test_policy_mover_masks_illegal_moves():
    # Column 1 (action 0) full; a policy that loves it must still pick a legal column.
    states = np.stack([GAME.from_moves("111111"), GAME.from_moves("")])

    def evaluator(s):
        logits = np.tile(np.array([9.0, 0, 0, 5.0, 0, 0, 0], np.float32), (len(s), 1))
        return logits, np.zeros(len(s), np.float32)

    probs = policy_mover(GAME, evaluator)(states)
    assert probs.argmax(axis=1).tolist() == [3, 0]


def test_expected_scores_by_hand():
    positions = [
        SolvedPosition("", "early", legal=(0, 1, 2, 3), optimal=(1,), preserving=(1, 2)),
        SolvedPosition("", "late", legal=(0, 1), optimal=(0, 1), preserving=(0, 1)),
    ]
    probs = np.array([[0.25, 0.25, 0.25, 0.25, 0, 0, 0], [0.5, 0.5, 0, 0, 0, 0, 0]])
    s = score_moves(positions, probs)
    assert s["all"].decisive_positions == 1 and s["all"].decisive_accuracy == 0.5
    assert s["all"].optimal_rate == pytest.approx((0.25 + 1.0) / 2)
    assert s["early"].optimal_rate == 0.25 and np.isnan(s["middle"].optimal_rate)


@needs_positions
def test_cli_json_random(capsys):
    assert main(["bench", "solver", "--ckpt", "random", "--json"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    assert len(rows) == 8
    for r in rows:
        assert ("decisive" in r["name"]) != ("optimal" in r["name"])
        assert r["peer"] is None and 0.0 <= r["value"] <= 1.0 and r["unit"] == "fraction"
    overall = {r["name"].split(",")[0]: r["value"] for r in rows if ", all " in r["name"]}
    assert overall["connect4 solver decisive accuracy"] == pytest.approx(0.339, abs=0.001)
    assert overall["connect4 solver optimal rate"] == pytest.approx(0.392, abs=0.001)


@needs_positions
def test_cli_checkpoint_raw_policy_and_search(tmp_path, capsys):
    from azero import checkpoint
    from azero.config import load_config
    from azero.nets import make_net
    cfg = load_config("connect4_tiny")
    ckpt = checkpoint.save(tmp_path / "tiny.pt", make_net(GAME.spec, cfg.model), config=cfg)
    few = tmp_path / "few.jsonl"
    few.write_text("".join(DEFAULT_POSITIONS.read_text().splitlines(keepends=True)[:12]))
    threads = torch.get_num_threads()
    try:
        assert main(["bench", "solver", "--ckpt", str(ckpt), "--sims", "4", "--positions",
                     str(few), "--threads", "1", "--json"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    names = [r["name"] for r in rows]
    assert len(rows) == 16
    assert all("--threads 1" in r["command"] for r in rows)
    assert main(["bench", "solver", "--ckpt", str(ckpt), "--threads", "0"]) == 2
    assert "azero bench solver: --threads must be at least 1, got 0" in capsys.readouterr().err
    assert sum("raw policy" in n for n in names) == 8
    assert sum("search 4 sims" in n for n in names) == 8


@needs_positions
def test_cli_rollout_search(tmp_path, capsys):
    few = tmp_path / "few.jsonl"
    few.write_text("".join(DEFAULT_POSITIONS.read_text().splitlines(keepends=True)[-20:]))
    assert main(["bench", "solver", "--ckpt", "mcts-rollout:64", "--positions", str(few),
                 "--json"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    decisive = [r for r in rows if r["name"].startswith("connect4 solver decisive accuracy, "
                                                        "mcts-rollout:64, all")]
    assert len(decisive) == 1 and 0.0 <= decisive[0]["value"] <= 1.0


@needs_positions
def test_the_registry_hook_gives_the_shipped_set(dev):
    positions, states = load_solved_positions(GAME)
    assert positions == dev[0] and np.array_equal(states, dev[1])


def test_a_game_without_a_perfect_play_set_is_a_clear_error(capsys):
    with pytest.raises(ValueError, match="go9 has no perfect-play positions; games with them: "
                                         "connect4"):
        load_solved_positions(make("go9"))
    with pytest.raises(SystemExit):                  # argparse: --game offers connect4 only
        main(["bench", "solver", "--game", "go9", "--ckpt", "random"])
    assert "invalid choice: 'go9'" in capsys.readouterr().err
