"""The gate beside the trainer (gate.background, azero/gate_runner.py): the trainer trains on while
a candidate is judged, promotions land in best.pt when the verdict arrives, one judging at a time
(the newest candidate, older ones skipped), a stop or a kill -9 leaves the judging owed and no
process behind, a crashing judging is reported and the run goes on; gate.background false keeps
the trainer waiting for each gate."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_loop import _session_members, assert_run_is_whole, tiny_config

from azero import checkpoint as ckpt
from azero import gate_runner
from azero.loop import Limits, run_loop
from azero.rundir import RunDir

TESTS = Path(__file__).resolve().parent


# -- hooks the judging child runs (the runner spawns gate_runner._child; a test puts one of these
#    in its place, and the child process imports them from this module). They are set up by
#    environment variables, which the spawned child inherits.

def _child_with_slow_gate(*args):
    """gate_runner's child whose gate match first writes the child's pid to
    $AZERO_TEST_GATE_PIDS/<pid> and waits $AZERO_TEST_GATE_DELAY seconds."""
    from azero import arena
    real = arena.gate

    def slow(*a, **k):
        (Path(os.environ["AZERO_TEST_GATE_PIDS"]) / str(os.getpid())).touch()
        time.sleep(float(os.environ["AZERO_TEST_GATE_DELAY"]))
        return real(*a, **k)
    arena.gate = slow
    gate_runner._child(*args)


def _child_that_crashes_twice(*args):
    """The first judging child raises in its gate match, the second dies with exit code 7, the
    others judge normally (counted by files in $AZERO_TEST_GATE_PIDS)."""
    folder = Path(os.environ["AZERO_TEST_GATE_PIDS"])
    order = len(list(folder.iterdir()))
    (folder / str(os.getpid())).touch()
    if order == 1:
        os._exit(7)
    if order == 0:
        from azero import arena

        def crash(*a, **k):
            raise RuntimeError("test: the gate match crashed")
        arena.gate = crash
    gate_runner._child(*args)


@pytest.fixture
def gate_hook(tmp_path, monkeypatch):
    """Puts a child hook in place: gate_hook(function, delay=0) -> the folder of child pids."""
    folder = tmp_path / "gate-pids"
    folder.mkdir()

    def install(function, delay: float = 0.0):
        monkeypatch.setenv("AZERO_TEST_GATE_PIDS", str(folder))
        monkeypatch.setenv("AZERO_TEST_GATE_DELAY", str(delay))
        monkeypatch.setattr(gate_runner, "_child", function)
        return folder
    return install


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _candidate_steps(run: RunDir) -> list[int]:
    return sorted(int(p.stem.rsplit("-", 1)[1]) for p in run.checkpoints.glob("candidate-*.pt"))


def test_the_trainer_trains_while_a_gate_runs_and_promotions_land_in_best(tmp_path, gate_hook):
    """Every gate takes 6 s more (gating off: every candidate is promoted). The trainer's steps
    go on meanwhile, and each promotion is in best.pt and generations/ when its verdict lands."""
    gate_hook(_child_with_slow_gate, delay=6.0)
    run_dir = tmp_path / "run"
    summary = run_loop(tiny_config(run_dir, "gate.enabled=false"), Limits(iterations=2),
                       progress=False)
    run = RunDir.at(run_dir)
    assert summary["iterations"] == 2 and summary["generation"] == 2
    records = run.read_metrics()
    gates = [r for r in records if r["event"] == "gate"]
    assert [g["new_generation"] for g in gates] == [1, 2]
    for g in gates:
        assert g["gate_seconds"] >= 6.0
        assert g["applied_at_step"] > g["step"]          # the trainer went on during the gate
        # ... and logged its training between the candidate's save and the verdict
        trained = [r["step"] for r in records[:records.index(g)] if r["event"] == "train"]
        assert any(g["step"] < s <= g["applied_at_step"] for s in trained), trained
        assert "solver/policy_decisive" in g             # the figures came with the record
    for generation, g in enumerate(gates, start=1):
        kept = ckpt.load(run.generation(generation), expected_game="connect4")
        assert kept.step == g["step"] and kept.metadata["generation"] == generation
        assert kept.metadata["gate_record"]["step"] == g["step"]
    best = ckpt.load(run.best, expected_game="connect4")
    assert best.metadata["generation"] == 2 and best.step == gates[-1]["step"]
    assert run.read_best_info() == {"generation": 2, "elo": best.metadata["elo"],
                                    "step": gates[-1]["step"]}
    # Candidates that came due during a gate waited; only the newest of them was judged next.
    judged = {g["step"] for g in gates}
    for skipped in [r for r in records if r["event"] == "gate_skipped"]:
        assert skipped["gated"] in judged and max(skipped["steps"]) < skipped["gated"]
        assert not judged & set(skipped["steps"])
    assert_run_is_whole(run)


def test_gate_background_false_keeps_the_trainer_waiting(tmp_path):
    run_dir = tmp_path / "run"
    summary = run_loop(tiny_config(run_dir, "gate.enabled=false", "gate.background=false"),
                       Limits(iterations=2), progress=False)
    run = RunDir.at(run_dir)
    records = run.read_metrics()
    gates = [r for r in records if r["event"] == "gate"]
    assert summary["iterations"] == 2 and summary["step"] == 8 == gates[-1]["step"]
    assert [(g["step"], g["applied_at_step"], g["new_generation"]) for g in gates] == [
        (4, 4, 1), (8, 8, 2)]
    for g in gates:                                      # no training while the gate ran
        before = [r["step"] for r in records[:records.index(g)] if r["event"] == "train"]
        assert max(before) == g["step"]
    assert ckpt.load(run.best, expected_game="connect4").metadata["generation"] == 2


def test_one_judging_at_a_time_the_newest_waiting_candidate_next(tmp_path):
    """BackgroundGates on its own: candidates 8 and 12 come while 4 is judged; 12 is judged next
    and 8 is skipped, with a gate_skipped event. stop() ends a judging in flight."""
    from azero.gate_runner import BackgroundGates
    from azero.loop import prepare_run
    from azero.train import Trainer

    config = tiny_config(tmp_path / "run", "gate.games=2")
    run = prepare_run(config)
    trainer = Trainer.from_checkpoint(run.trainer_state, config)
    for step in (4, 8, 12, 16):
        trainer.step = step
        trainer.save(run.candidate(step))
    gates = BackgroundGates(run, config)

    def judged(step):
        messages = []
        _wait_for(lambda: messages.extend(gates.poll()) or (step, "done", {}) in messages,
                  120, f"the judging of step {step} did not end: {messages}")
        return messages
    gates.submit(4)
    first = list(gates.poll())                           # starts the child for step 4
    assert gates.in_flight == 4
    gates.submit(8)
    gates.submit(12)
    first += judged(4)
    assert gates.in_flight is None
    kinds = [kind for step, kind, _ in first]
    assert {step for step, _, _ in first} == {4} and kinds[0] == "verdict"
    assert kinds[-1] == "done" and kinds[1:-1] == (["figures"] if first[0][2]["promoted"] else [])
    assert first[0][2]["games"] == 2 and first[0][2]["gate_seconds"] > 0
    assert not [r for r in run.read_metrics() if r["event"] == "gate_skipped"]
    second = judged(12)
    assert second[0][:2] == (12, "verdict")
    (skipped,) = [r for r in run.read_metrics() if r["event"] == "gate_skipped"]
    assert skipped["steps"] == [8] and skipped["gated"] == 12
    assert len(list(run.arena.glob("gate-*.jsonl"))) == 2     # 4's and 12's games, not 8's

    gates.submit(16)
    list(gates.poll())
    (_, child, _) = gates._job
    assert gates.in_flight == 16 and child.is_alive()
    gates.stop()
    assert not child.is_alive() and gates.in_flight is None
    assert list(gates.poll()) == []                      # nothing waits after a stop


def test_ctrl_c_stops_the_loop_without_waiting_and_the_next_start_gates_the_candidate(
        tmp_path, gate_hook):
    """Ctrl-C (a SIGINT to this process, the loop's) while a judging waits in a gate that would
    never end: the loop stops at once, the child is ended, nothing is promoted; the next start
    judges the newest candidate the trainer had saved (gate_runner's rule)."""
    import threading

    pids = gate_hook(_child_with_slow_gate, delay=600.0)
    run_dir = tmp_path / "run"
    config = tiny_config(run_dir)
    pressed = []

    def press_ctrl_c_once_a_gate_runs():
        _wait_for(lambda: list(pids.iterdir()), 180, "no judging started")
        time.sleep(1.0)
        pressed.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)
    presser = threading.Thread(target=press_ctrl_c_once_a_gate_runs, daemon=True)
    presser.start()
    summary = run_loop(config, progress=False)
    assert pressed and time.monotonic() - pressed[0] < 30       # no wait for the gate
    presser.join()
    run = RunDir.at(run_dir)
    (pid,) = [int(p.name) for p in pids.iterdir()]
    assert not _alive(pid)                               # the judging was ended with the loop
    assert summary["reason"] == "interrupted" and summary["generation"] == 0
    assert not [r for r in run.read_metrics() if r["event"] == "gate"]
    assert_run_is_whole(run)
    trainer_step = ckpt.read_payload(run.trainer_state)["step"]
    owed = max(s for s in _candidate_steps(run) if s <= trainer_step)
    gate_hook(_child_with_slow_gate, delay=0.0)
    run_loop(config, Limits(iterations=1), progress=False)
    gates = [r for r in run.read_metrics() if r["event"] == "gate"]
    assert gates[0]["step"] == owed


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_kill_9_during_a_background_gate_leaves_no_process_and_the_rerun_gates(tmp_path,
                                                                              gate_hook):
    """The trainer alone is SIGKILLed while its judging child waits in a gate that would never
    end: the child (and the self-play worker) leave by themselves; the rerun judges the owed
    candidate."""
    pids = gate_hook(_child_with_slow_gate, delay=600.0)
    run_dir = tmp_path / "run"
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import test_gate_runner as t; "
              "from azero import gate_runner; gate_runner._child = t._child_with_slow_gate; "
              "from test_loop import tiny_config; from azero.loop import run_loop; "
              "run_loop(tiny_config(sys.argv[2]), progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(TESTS), str(run_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        _wait_for(lambda: list(pids.iterdir()) or proc.poll() is not None, 180,
                  "no judging started")
        assert proc.poll() is None, proc.stderr.read().decode()
        (child,) = [int(p.name) for p in pids.iterdir()]
        assert _alive(child)
        os.kill(proc.pid, signal.SIGKILL)                # the trainer alone, as an OOM killer would
        proc.wait()
        _wait_for(lambda: not _alive(child), 15, "the orphaned gate process kept running")
        _wait_for(lambda: not _session_members(proc.pid), 60, "orphaned processes kept running")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    run = RunDir.at(run_dir)
    assert_run_is_whole(run, killed=True)
    assert not [r for r in run.read_metrics() if r["event"] == "gate"]
    trainer_step = ckpt.read_payload(run.trainer_state)["step"]
    owed = max(s for s in _candidate_steps(run) if s <= trainer_step)
    gate_hook(_child_with_slow_gate, delay=0.0)
    summary = run_loop(tiny_config(run_dir), Limits(iterations=1), progress=False)
    gates = [r for r in run.read_metrics() if r["event"] == "gate"]
    assert summary["iterations"] == 1 and gates[0]["step"] == owed


def test_a_crashing_gate_is_reported_and_the_run_goes_on(tmp_path, gate_hook, caplog):
    """The first judging raises, the second dies (exit code 7): each gets one warning line and
    a gate_error event naming the error, no verdict; the third judges and the run ends after it
    (a crash is no verdict, so it does not count as an iteration)."""
    gate_hook(_child_that_crashes_twice)
    run_dir = tmp_path / "run"
    with caplog.at_level("WARNING", logger="azero.gate_runner"):
        summary = run_loop(tiny_config(run_dir, "gate.enabled=false"), Limits(iterations=1),
                           progress=False)
    run = RunDir.at(run_dir)
    errors = [r for r in run.read_metrics() if r["event"] == "gate_error"]
    assert len(errors) == 2
    assert errors[0]["error"] == "RuntimeError: test: the gate match crashed"
    assert "exited with code 7" in errors[1]["error"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    for error, line in zip(errors, warnings):
        assert f"step {error['step']} failed: {error['error']}" in line
    (gate,) = [r for r in run.read_metrics() if r["event"] == "gate"]
    assert gate["step"] > errors[1]["step"] > errors[0]["step"]
    assert summary["iterations"] == 1 and summary["generation"] == 1
    assert ckpt.load(run.best, expected_game="connect4").step == gate["step"]
