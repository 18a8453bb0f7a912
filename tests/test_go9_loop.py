"""Go 9x9 end to end on the tiny config: self-play with ownership targets -> replay shards ->
training with the ownership head -> gate; SGF records of the self-play games."""
import math

import numpy as np
import torch

from test_loop import assert_run_is_whole, stored_games

from azero.config import load_config
from azero.games import make
from azero.loop import Limits, run_loop
from azero.records import read_records
from azero.rundir import RunDir
from azero.replay import ReplayBuffer
from azero.train import Trainer


def test_go9_tiny_loop_trains_the_ownership_head_and_gates(tmp_path):
    run_dir = tmp_path / "run"
    config = load_config("go9_tiny", [f"run_dir={run_dir}"])
    assert config.model.ownership_head
    summary = run_loop(config, Limits(iterations=1), progress=False)
    run = RunDir.at(run_dir)
    assert summary["iterations"] == 1 and summary["step"] >= 4
    assert_run_is_whole(run, game="go9")
    games = stored_games(run)
    assert games > 0

    # Every shard holds int8 ownership targets [N, 9, 9] and their weights [N] beside the
    # positions (go9_tiny never resigns, so every game that ends by the rules has its exact
    # target, weight 1; a game cut off at the 180-ply cap, which an untrained net's near-random
    # play reaches now and then, has weight 0 and a zero target). The worker writes
    # each game's record just before adding it to a shard, so the shards' games (in order) are
    # the records' games: replaying a record gives the final board, on which a Black stone is +1
    # for every position of that game with Black to move and -1 for those with White to move.
    game = make("go9")
    records = read_records(game, run.games / "selfplay-w000")   # SGF, a folder of .sgf files
    assert len(records) >= games     # (a worker killed on stop may leave records beyond shards)
    shard_games = []
    for shard in sorted(run.replay.glob("shard-*.npz")):
        with np.load(shard) as data:
            own, states, weight = data["ownership"], data["states"], data["ownership_weight"]
        assert own.dtype == np.int8 and own.shape == (len(states), 9, 9)
        starts = np.flatnonzero(game.move_number(states) == 0)
        shard_games += [(states[a:b], own[a:b], weight[a:b])
                        for a, b in zip(starts, [*starts[1:], len(states)])]
    assert len(shard_games) == games
    boards_with_stones = 0
    for (states, own, weight), record in zip(shard_games, records):
        assert len(record.moves) == len(states)
        if record.result is None:       # truncated at the cap: no scored end, no target
            assert np.all(weight == 0) and not own.any()
            continue
        assert np.all(weight == 1)
        final = game.initial_states(1)
        for move in record.moves:
            final = game.step(final, np.array([move]))
        grid = game.grid(final[0])
        black_view = own * np.where(game.to_play(states) == 0, 1, -1).astype(np.int8)[:, None, None]
        assert np.all(black_view[:, grid == 0] == 1) and np.all(black_view[:, grid == 1] == -1)
        if (grid >= 0).any():
            boards_with_stones += 1
        else:       # an untrained net may pass twice at once: an empty board is no one's area
            assert not own.any()
    assert boards_with_stones > 0

    # The trainer learns from them: a batch drawn from the run's replay (targets and weights
    # as the loop's trainer gets them) is fitted, its ownership loss falling well below the
    # first step's (broken targets, weights or loss would leave it flat or zero).
    train = [r for r in run.read_metrics() if r["event"] == "train"]
    assert train and all(math.isfinite(r["ownership_loss"]) for r in train)
    buffer = ReplayBuffer(run.replay, game, config.replay.window_positions)
    buffer.refresh()
    batch = buffer.sample(32, np.random.default_rng(0))
    # rows of capped games (weight 0) may be drawn too; most rows come from scored games
    assert batch.ownership_weight.sum() >= 16 and batch.ownership.any()
    torch.manual_seed(0)
    fit = load_config("go9_tiny", ["train.lr=3e-3", "train.lr_schedule=constant"])
    trainer = Trainer.create(fit, game, "cpu")
    first = trainer.train_step(batch)["ownership_loss"]
    for _ in range(80):
        last = trainer.train_step(batch)["ownership_loss"]
    assert 0 < last < 0.7 * first, (first, last)
    gates = [r for r in run.read_metrics() if r["event"] == "gate"]
    assert len(gates) == 1 and gates[0]["games"] > 0

    assert list(run.arena.glob("gate-*/*.sgf"))             # the gate's games, SGF too


def test_go9_promoted_network_plays_the_gnu_go_anchor(tmp_path, capsys):
    """The go9 config's anchor: each promoted network plays GNU Go level 1 over GTP (games to
    the end, recorded as SGF with the run's komi, 7.5 here)."""
    import pytest
    from azero.protocols.gtp_client import find_gnugo
    from azero.games.go9.records import read_sgf_records
    if find_gnugo() is None:
        pytest.skip("GNU Go is not installed (apt-get install gnugo)")
    run_dir = tmp_path / "run"
    config = load_config("go9_tiny", [f"run_dir={run_dir}", "gate.enabled=false", "rules.komi=7.5",
                                      "gate.anchors=[gnugo:level=1]", "gate.anchor_games=2"])
    run_loop(config, Limits(iterations=1), progress=False)
    run = RunDir.at(run_dir)
    (anchors,) = [r for r in run.read_metrics() if r["event"] == "anchors"]
    assert anchors["generation"] == 1 and anchors["anchor/gnugo:level=1/games"] == 2
    folder = run.arena / "anchor-0001-0"            # go9 records: a folder of .sgf files
    records = read_sgf_records(make("go9", komi=7.5), folder)
    assert len(records) == 2 and {r.info["anchor"] for r in records} == {"gnugo:level=1"}
    assert all("KM[7.5]" in p.read_text() for p in folder.glob("*.sgf"))
    wins = sum(r.info["score_a"] for r in records)
    assert wins == 2 * anchors["anchor/gnugo:level=1/score"]
    # The terminal line of the promotion gives the result against GNU Go (Go's measure of a
    # promoted network: no perfect-play set, the config's anchor).
    (line,) = [l for l in capsys.readouterr().out.splitlines() if l.startswith("step ")]
    wdl = "/".join(str(anchors[f"anchor/gnugo:level=1/{k}"]) for k in ("wins", "draws", "losses"))
    assert "generation 1 promoted" in line and "solver" not in line
    assert f"against gnugo:level=1: W/D/L {wdl} (2 games)" in line
