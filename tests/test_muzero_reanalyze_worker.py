"""The Reanalyze worker (azero/muzero/reanalyze_worker.py): a process that searches stored games
with the weights the trainer hands over, paced by the steps it announces, whose targets the
trainer's buffer reads, and which survive a restart."""
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from azero.algorithms import algorithm_for
from azero.config import load_config
from azero.muzero.reanalyze_worker import RefreshedTargets, reanalyze_dir
from azero.muzero.replay import trajectory_dir
from azero.rundir import RunDir

from test_gate_runner import _wait_for
from test_loop import _session_members
from test_muzero_reanalyze import dense_policy, expected_search, write_random_games

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WAIT_SECONDS = 180.0            # the worker's start (spawn, imports, numba) on a loaded 2-core box


def worker_config(run_dir):
    return load_config("connect4_muzero_tiny", [
        f"run_dir={run_dir}", "muzero.reanalyze_fraction=0.5", "muzero.td_steps=1",
        "replay.window_positions=10000"])


def wait_until_all_refreshed_at(buffer, step):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        buffer.refresh()
        if (len(buffer.refreshed()) == len(buffer.chunks)
                and all(buffer.refreshed_step[c.name] == step for c in buffer.chunks)):
            return
        time.sleep(0.2)
    raise AssertionError(f"not every shard refreshed by the network of step {step} within "
                         f"{WAIT_SECONDS:g} s: {buffer.refreshed_step}")


def assert_targets_are_the_search_of(net, game, config, buffer):
    fresh = {c.name: c for c in buffer.refreshed()}
    for chunk in buffer.chunks:
        rows = chunk.sample_rows
        want_policy, want_root = expected_search(net, game, chunk.states[rows], config.search,
                                                 config.selfplay.games_per_worker)
        copy = fresh[chunk.name]
        np.testing.assert_allclose(dense_policy(copy, game.spec.num_actions)[rows], want_policy,
                                   atol=1e-5)
        np.testing.assert_allclose(copy.root_value[rows], want_root, atol=1e-5)


def start_trainer_side(run_dir):
    """A run of six random games, a fresh trainer and its buffer, the weights handed over
    (network.pt) and the Reanalyze worker started; the caller stops `pool`."""
    config = worker_config(run_dir)
    run = RunDir.at(config.run_dir)
    run.make()
    game = config.make_game()
    write_random_games(trajectory_dir(run.root), game, 6, seed=3)
    algorithm = algorithm_for(config)
    trainer = algorithm.trainer_class().create(config, game, device="cpu")
    buffer = algorithm.buffer(run, game, config)
    buffer.refresh()
    hand_off = algorithm.before_training(trainer, buffer, config, game)   # writes network.pt
    pool = algorithm.side_pool(run, config)
    pool.start()
    return config, run, game, algorithm, trainer, buffer, hand_off, pool


def test_the_worker_searches_with_the_handed_over_weights_and_the_trainer_reads_its_targets(
        tmp_path):
    config, run, game, algorithm, trainer, buffer, hand_off, pool = start_trainer_side(
        tmp_path / "run")
    try:
        # nothing is owed before the trainer announces steps: the worker searches nothing
        time.sleep(3.0)
        buffer.refresh()
        targets = reanalyze_dir(run.root) / "targets"
        assert buffer.refreshed() == [] and not list(targets.glob("*"))
        # a chunk of 200 steps announced owes 0.5 x 16 / 1 x 200 = 1600 positions: every shard
        figures = hand_off(200)
        assert figures["reanalyzed_shards_live"] == 0
        wait_until_all_refreshed_at(buffer, trainer.step)
        assert_targets_are_the_search_of(trainer.net, game, config, buffer)

        # training moved the network: the next hand-off's weights refresh every shard again
        with torch.no_grad():
            for p in trainer.net.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        trainer.step = 200
        hand_off(200)
        wait_until_all_refreshed_at(buffer, 200)
        assert_targets_are_the_search_of(trainer.net, game, config, buffer)
        assert pool.check() == []                         # it never died
    finally:
        pool.stop()
    reports = [r for r in run.read_metrics() if r["event"] == "reanalyze"]
    assert sum(r["positions"] for r in reports) >= 2 * buffer.num_windows

    # a resumed trainer (a new buffer) finds the targets on disk: a kill loses no refresh
    resumed = algorithm.buffer(run, game, config)
    resumed.refresh()
    assert {c.name for c in resumed.refreshed()} == {c.name for c in buffer.chunks}
    assert set(resumed.refreshed_step.values()) == {200}


def test_stored_targets_are_read_once_per_version_and_pruned_with_their_shard(tmp_path):
    config = worker_config(tmp_path / "run")
    game = config.make_game()
    algorithm = algorithm_for(config)
    run = RunDir.at(config.run_dir)
    write_random_games(trajectory_dir(run.root), game, 4)
    buffer = algorithm.buffer(run, game, config)
    buffer.refresh()
    store = RefreshedTargets(tmp_path / "targets")
    chunk = buffer.chunks[0]
    n, A = len(chunk.action), game.spec.num_actions
    store.write(chunk, np.full((n, A), 1 / A, np.float32), np.zeros(n, np.float32), step=5)
    live = {c.name for c in buffer.chunks}
    first = list(store.read_new(live))
    assert [(name, step) for name, _, _, step in first] == [(chunk.name, 5)]
    assert list(store.read_new(live)) == []                    # unchanged: not read again
    assert list(store.read_new(set())) == []                   # not (or no longer) in the window
    time.sleep(0.01)                                           # a rewrite gets a new mtime
    store.write(chunk, np.full((n, A), 1 / A, np.float32), np.zeros(n, np.float32), step=9)
    assert [step for *_, step in store.read_new(live)] == [9]
    assert store.steps() == {chunk.name: 9}
    (store.directory / "corrupt.npz").write_bytes(b"not a zip")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert list(store.read_new(live | {"corrupt.npz"})) == []
    assert store.prune(live) == 1                              # the corrupt one: no such shard
    # targets of the wrong shape (not this shard's rows) are refused, and the trainer goes on
    buffer.store = store
    time.sleep(0.01)
    store.write(chunk, np.zeros((n + 1, A), np.float32), np.zeros(n + 1, np.float32), step=11)
    with pytest.warns(RuntimeWarning, match=f"refreshed targets of {chunk.name} have shapes"):
        buffer.refresh()
    assert buffer.refreshed() == []
    assert store.prune(set()) == 1 and store.steps() == {}


# A trainer stand-in: hands the worker its weights, owes it far more than it can search, says
# "searching" once the first targets are on disk, then waits to be killed.
_TRAINER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[2])
    from azero.muzero.reanalyze_worker import reanalyze_dir
    from test_muzero_reanalyze_worker import start_trainer_side
    if __name__ == "__main__":     # the worker is spawned: it imports this module
        _, run, _, _, _, _, hand_off, pool = start_trainer_side(sys.argv[1])
        hand_off(10 ** 6)
        deadline = time.monotonic() + float(sys.argv[3])
        while not list((reanalyze_dir(run.root) / "targets").glob("*.npz")):
            if time.monotonic() > deadline:
                sys.exit("no targets")
            time.sleep(0.1)
        print("searching", flush=True)
        time.sleep(600)
""")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_the_worker_leaves_when_the_trainer_is_killed_alone(tmp_path):
    script, errors = tmp_path / "trainer.py", tmp_path / "stderr.txt"
    script.write_text(_TRAINER)
    with open(errors, "w") as stderr:
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "run"),
                                 str(Path(__file__).parent), str(WAIT_SECONDS)],
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                start_new_session=True)
    try:
        line = proc.stdout.readline().strip()
        assert line == "searching", errors.read_text()           # the worker is mid-search
        assert len(_session_members(proc.pid)) >= 2            # the trainer and its worker
        os.kill(proc.pid, signal.SIGKILL)                      # the trainer alone (an OOM kill)
        proc.wait()
        _wait_for(lambda: not _session_members(proc.pid), 60,
                  "the orphaned Reanalyze worker kept running")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
