"""The main job end to end on a tiny config: self-play -> train -> gate, resume, kill -9."""
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from azero import checkpoint as ckpt
from azero.config import load_config
from azero.loop import Limits, run_loop
from azero.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]


def tiny_config(run_dir, *extra):
    return load_config("connect4_tiny", [f"run_dir={run_dir}", "selfplay.random_opening_fraction=0.5",
                                         "selfplay.random_opening_max_moves=16", *extra])


def stored_games(run: RunDir) -> int:
    """Games in every shard on disk; every shard must be complete and readable."""
    total = 0
    for p in sorted(run.replay.glob("shard-*.npz")):
        with np.load(p, allow_pickle=False) as data:
            assert data["states"].shape[0] == data["policy"].shape[0] == data["value"].shape[0] > 0
            total += int(data["num_games"])
    return total


def assert_run_is_whole(run: RunDir, game="connect4", killed=False):
    """Every visible file complete. Right after a SIGKILL, a write cut short may leave its hidden
    temp file (the next start removes it); after a clean stop there must be none."""
    for p in run.checkpoints.glob("*.pt"):
        ckpt.load(p, expected_game=game)           # raises on a half-written file
    info = run.read_best_info()
    assert info is not None and info["generation"] >= 0
    for p in run.root.rglob("*"):
        if p.name.endswith(".tmp"):
            assert killed and p.name.startswith("."), p


def gate_lines(text: str) -> list[str]:
    """The lines `azero selfplay` prints for its gates (azero.loop.gate_line)."""
    return [line for line in text.splitlines() if re.match(r"step \d+: ", line)]


def assert_line_tells_the_gate(line: str, record: dict) -> None:
    """A gate's terminal line gives the generation, the candidate's W/D/L, score and Elo with
    its interval against the best, and a promoted network's solver figures, as logged."""
    assert line.startswith(f"step {record['step']}: ")
    if record["promoted"]:
        assert f": generation {record['new_generation']} promoted, " in line
    else:
        assert f": candidate rejected, " in line
        assert f"generation {record['generation']} stays" in line
    if record["games"]:
        wdl = "/".join(str(record[k]) for k in ("wins", "draws", "losses"))
        assert (f"against generation {record['generation']}: W/D/L {wdl} ({record['games']} "
                f"games), score {100 * record['score']:.1f}%, Elo ") in line
        elo = re.search(r"Elo ([+-]\S+) \[([+-]\S+), ([+-]\S+)\] \(95%\)", line)
        low, high = record["elo_low"], record["elo_high"]   # null in JSON where infinite
        assert elo and float(elo[2]) == pytest.approx(-np.inf if low is None else low, abs=0.06)
        assert float(elo[3]) == pytest.approx(np.inf if high is None else high, abs=0.06)
    if record["promoted"] and "solver/policy_decisive" in record:
        assert (f"solver decisive {record['solver/policy_decisive']:.3f} policy / "
                f"{record['solver/search_decisive']:.3f} search") in line
    else:
        assert "solver" not in line


def test_loop_runs_gates_and_resumes(tmp_path, capsys):
    run_dir = tmp_path / "run"
    summary = run_loop(tiny_config(run_dir), Limits(iterations=2), progress=False)
    run = RunDir.at(run_dir)
    assert summary["iterations"] == 2
    assert summary["step"] >= 8
    assert summary["games_seen"] > 0
    events = [r["event"] for r in run.read_metrics()]
    assert events.count("gate") == 2 and events[0] == "start" and events[-1] == "stop"
    gates = [r for r in run.read_metrics() if r["event"] == "gate"]
    assert all(g["games"] > 0 and "score" in g for g in gates)
    # The terminal sees one line per gate.
    lines = gate_lines(capsys.readouterr().out)
    assert len(lines) == 2
    for line, gate in zip(lines, gates):
        assert_line_tells_the_gate(line, gate)
    assert list(run.arena.glob("gate-*.jsonl"))   # connect4 records are JSON lines
    assert_run_is_whole(run)
    games_before = stored_games(run)
    # Every self-play game is also kept as a readable record (moves replay legally).
    from azero.games import make
    from azero.records import read_records
    records = read_records(make("connect4"), run.games / "selfplay-w000.jsonl")
    assert len(records) >= games_before > 0
    assert all(r.result in (0.0, 0.5, 1.0) and len(r.moves) >= 7 for r in records)
    game = make("connect4")
    for r in records:                       # random opening moves included: whole games
        state = game.initial_states(1)
        for move in r.moves:
            assert game.legal_mask(state)[0, move]
            state = game.step(state, np.array([move]))
        assert game.terminal(state)[0]
    # Half the games open with random moves (tiny_config), recorded as the opening.
    assert any(r.opening_plies > 0 for r in records)
    assert any(r.opening_plies == 0 for r in records)

    # The same call resumes: the step carries on, nothing is lost. With the progress bar on,
    # the gate's line still comes whole on stdout and the bar stays on stderr.
    capsys.readouterr()
    summary2 = run_loop(tiny_config(run_dir), Limits(iterations=1), progress=True)
    assert summary2["step"] > summary["step"]
    out, err = capsys.readouterr()
    (line,) = gate_lines(out)
    assert_line_tells_the_gate(line, [r for r in run.read_metrics() if r["event"] == "gate"][-1])
    assert "connect4 training" in err and "training" not in out
    assert stored_games(run) >= games_before
    assert [r["event"] for r in run.read_metrics()].count("start") == 2


def kill_at_random_moments(cmd, run: RunDir, shards: Path, *, attempts: int, wait_from: int,
                           pause: tuple[float, float], seed: int, stored_games, assert_run_is_whole
                           ) -> subprocess.CompletedProcess:
    """Start the run `cmd` `attempts` times and SIGKILL its whole process group (trainer and
    workers) after a random pause in `pause` seconds; from attempt `wait_from` on, the pause
    starts once a shard exists in `shards` (training, gating, shard writes). After each kill the
    run must be whole (`assert_run_is_whole(run, killed=True)`), and neither the stored games
    (`stored_games(run)`) nor the trainer's step may go down. Then a clean run of one iteration
    must resume from what the kills left: returned (its stderr) after the checks that hold for
    every run (exit 0, the run whole, nothing lost)."""
    rng = random.Random(seed)
    games_seen = steps_seen = 0
    for attempt in range(attempts):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        if attempt >= wait_from:
            deadline = time.monotonic() + 180
            while not list(shards.glob("shard-*.npz")):
                assert time.monotonic() < deadline, "no self-play shard appeared"
                time.sleep(0.2)
        time.sleep(rng.uniform(*pause))
        assert proc.poll() is None, proc.stderr.read().decode()
        os.killpg(proc.pid, signal.SIGKILL)        # the trainer and its workers, mid-whatever
        proc.wait()
        if not run.best.exists():
            continue                               # killed before the first network was written
        assert_run_is_whole(run, killed=True)
        games = stored_games(run)
        assert games >= games_seen                 # the count of stored games never goes down
        games_seen = games
        step = ckpt.read_payload(run.trainer_state)["step"]
        assert step >= steps_seen
        steps_seen = step
    assert games_seen > 0
    done = subprocess.run(cmd + ["--iterations", "1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert_run_is_whole(run)                       # the resume cleared the kills' debris
    assert stored_games(run) >= games_seen
    assert ckpt.read_payload(run.trainer_state)["step"] >= steps_seen
    return done


def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    """Kills at random moments from the start (start-up, first network, self-play), then at
    random moments once games are being stored; a last clean run resumes."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4",
           "--config", "connect4_tiny", "--run-dir", str(run_dir), "--no-progress"]
    run = RunDir.at(run_dir)
    kill_at_random_moments(cmd, run, run.replay, attempts=5, wait_from=2, pause=(0.5, 8.0),
                           seed=7, stored_games=stored_games,
                           assert_run_is_whole=assert_run_is_whole)


def test_config_error_names_the_key(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4", "--config",
         "connect4_tiny", "--run-dir", str(tmp_path / "r"), "--set", "search.num_simulatons=4"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "search.num_simulatons" in out.stderr and "num_simulations" in out.stderr
    assert not (tmp_path / "r").exists()          # nothing written on error


def test_init_starts_a_new_run_from_a_checkpoints_network(tmp_path):
    """--init: generation 0 is the given network (its architecture, not the config's), the
    optimizer and step start afresh; an existing run, another game's or another architecture's
    checkpoint is refused before anything is written."""
    import torch

    from azero.train import Trainer
    source_config = tiny_config(tmp_path / "source", "model.blocks=2", "model.channels=12")
    source = Trainer.create(source_config, source_config.make_game(), "cpu")
    with torch.no_grad():
        for w in source.net.parameters():
            w.uniform_(-0.5, 0.5)              # not what a fresh net of any seed would hold
    source.step = 777
    src = source.save(tmp_path / "source.pt", metadata={"generation": 5})

    def selfplay(run_dir, *extra):
        return subprocess.run(
            [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4", "--config",
             "connect4_tiny", "--run-dir", str(run_dir), "--no-progress", *extra],
            capture_output=True, text=True, timeout=300)

    run_dir = tmp_path / "run"
    out = selfplay(run_dir, "--init", str(src), "--iterations", "1")
    assert out.returncode == 0, out.stderr
    run = RunDir.at(run_dir)
    first = ckpt.load(run.generation(0), expected_game="connect4")
    assert first.architecture["blocks"] == 2 and first.architecture["channels"] == 12
    assert first.step == 0
    expected = source.net.state_dict()
    assert all(torch.equal(v.cpu(), expected[k].cpu()) for k, v in first.model.state_dict().items())
    assert load_config(str(run.config_file)).model.channels == 12       # config.yaml tells the truth
    init = [r for r in run.read_metrics() if r["event"] == "init"]
    assert len(init) == 1 and init[0]["source_step"] == 777 and init[0]["source_generation"] == 5
    assert ckpt.read_payload(run.trainer_state)["step"] > 0                # it trained on

    metrics_before = run.metrics.read_bytes()
    again = selfplay(run_dir, "--init", str(src), "--iterations", "1")
    assert again.returncode == 2 and "--init" in again.stderr and "started already" in again.stderr
    assert run.metrics.read_bytes() == metrics_before                     # nothing ran

    go = selfplay(tmp_path / "r2", "--init", str(REPO / "azero" / "checkpoints" / "go9.pt"))
    assert go.returncode == 2 and "go9.pt" in go.stderr and "go9" in go.stderr
    other = selfplay(tmp_path / "r3", "--init", str(src), "--set", "model.channels=8")
    assert other.returncode == 2 and "architecture mismatch" in other.stderr
    broken = tmp_path / "broken.pt"
    broken.write_bytes(src.read_bytes()[:1000])
    cut = selfplay(tmp_path / "r4", "--init", str(broken))
    assert cut.returncode == 2 and "broken.pt" in cut.stderr
    assert not any((tmp_path / d).exists() for d in ("r2", "r3", "r4"))


def test_resume_refuses_another_games_run(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir).mkdir()
    (run_dir / "config.yaml").write_text("game: connect4\n")
    out = subprocess.run(
        [sys.executable, "-m", "azero.cli", "selfplay", "--game", "go9", "--config",
         "connect4_tiny", "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "connect4" in out.stderr


def test_ctrl_c_stops_cleanly_and_saves(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4",
           "--config", "connect4_tiny", "--run-dir", str(run_dir), "--no-progress"]
    run = RunDir.at(run_dir)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)
    deadline = time.monotonic() + 180
    while not any(r["event"] == "train" for r in run.read_metrics()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)             # what Ctrl-C in a terminal sends
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    stop = run.read_metrics()[-1]
    assert stop["event"] == "stop" and stop["reason"] == "interrupted"
    # The trainer's state was saved on the way out, at the step it had reached.
    assert ckpt.read_payload(run.trainer_state)["step"] == stop["step"] > 0
    assert "stopped (interrupted)" in out


def test_a_second_ctrl_c_stops_a_gate_at_once_and_the_gate_is_owed(tmp_path):
    """First Ctrl-C during a (long) gate in the trainer's process: the gate goes on. Second: the
    run stops at once with the candidate and trainer state saved; the next start plays the gate
    it owes. (A gate beside the trainer: tests/test_gate_runner.py.)"""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4",
           "--config", "connect4_tiny", "--run-dir", str(run_dir), "--no-progress",
           "--set", "gate.background=false",
           "--set", "gate.games=4000", "--set", "gate.num_simulations=64",
           "--set", "gate.sprt_alpha=1e-12", "--set", "gate.sprt_beta=1e-12"]   # no early stop
    run = RunDir.at(run_dir)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, text=True)
    deadline = time.monotonic() + 180
    while not list(run.checkpoints.glob("candidate-*.pt")):      # saved just before its gate
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(0.1)
    (candidate,) = run.checkpoints.glob("candidate-*.pt")
    step = ckpt.read_payload(candidate)["step"]
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(3.0)
    assert proc.poll() is None                       # the first press waits for the gate
    os.killpg(proc.pid, signal.SIGINT)
    started = time.monotonic()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - started < 30, err
    events = run.read_metrics()
    assert events[-1]["event"] == "stop" and events[-1]["reason"] == "interrupted"
    assert not [r for r in events if r["event"] == "gate"]
    assert ckpt.read_payload(run.trainer_state)["step"] == step
    assert_run_is_whole(run, killed=True)

    summary = run_loop(tiny_config(run_dir), Limits(iterations=1), progress=False)
    gates = [r for r in run.read_metrics() if r["event"] == "gate"]
    assert summary["iterations"] == 1 and [g["step"] for g in gates] == [step]


def _session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes of a session, from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":   # fields: state ppid pgrp session ...
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_workers_leave_when_the_trainer_is_killed(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4",
           "--config", "connect4_tiny", "--run-dir", str(run_dir), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    run = RunDir.at(run_dir)
    deadline = time.monotonic() + 180
    while not list(run.replay.glob("shard-*.npz")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    assert len(_session_members(proc.pid)) >= 2      # the trainer and its worker
    os.kill(proc.pid, signal.SIGKILL)                # the trainer alone, as an OOM killer would
    proc.wait()
    deadline = time.monotonic() + 60
    while _session_members(proc.pid):
        assert time.monotonic() < deadline, "orphaned self-play workers kept running"
        time.sleep(0.2)


def test_a_second_trainer_on_the_same_run_is_refused(tmp_path):
    from azero.rundir import RunDirBusy
    config = tiny_config(tmp_path / "run")
    with RunDir.at(config.run_dir).locked():
        with pytest.raises(RunDirBusy, match="in use"):
            run_loop(config, Limits(iterations=1), progress=False)


def test_a_gate_cut_short_by_a_kill_is_owed_on_resume(tmp_path):
    from azero.loop import _gate_owed
    run = RunDir.at(tmp_path / "run")
    run.make()
    assert _gate_owed(run, 8) is None                 # no candidate saved
    run.candidate(8).write_bytes(b"x")
    assert _gate_owed(run, 8) == 8                    # saved, never gated
    assert _gate_owed(run, 11) == 8                   # ... the trainer went on
    run.candidate(12).write_bytes(b"x")
    assert _gate_owed(run, 11) == 8                   # a candidate beyond trainer.pt is redone
    assert _gate_owed(run, 12) == 12                  # the newest: 8 was skipped
    run.log_metrics("gate", step=12)
    assert _gate_owed(run, 12) is None                # gated
    run.write_best_info({"generation": 1, "elo": 0.0, "step": 8})
    assert _gate_owed(run, 8) is None                 # promoted: its record came later


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    from azero.atomic import atomic_write_bytes
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o644   # readable by others, like open()


def test_promoted_networks_are_kept_and_play_the_anchors(tmp_path, capsys):
    """gate.anchors: every promoted network (gating off: every candidate) is kept as
    generations/gen-<g>.pt and plays each anchor; the figures go to metrics.jsonl as strict JSON
    (a clean sweep's infinite Elo as null) and every anchor game is recorded."""
    import json

    from azero.games import make
    from azero.records import read_records

    run_dir = tmp_path / "run"
    config = tiny_config(run_dir, "gate.enabled=false", "gate.anchors=[random, mcts-rollout:8]",
                         "gate.anchor_games=4")
    run_loop(config, Limits(iterations=2), progress=False)
    run = RunDir.at(run_dir)
    steps = [r["step"] for r in run.read_metrics() if r["event"] == "gate"]
    assert len(steps) == 2
    for generation, step in enumerate([0, *steps]):
        loaded = ckpt.load(run.generation(generation), expected_game="connect4")
        assert loaded.step == step and loaded.metadata["generation"] == generation
    assert run.best.read_bytes() == run.generation(2).read_bytes()

    for line in run.metrics.read_text().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-JSON number {c}"))
    anchors = [r for r in run.read_metrics() if r["event"] == "anchors"]
    assert [(r["step"], r["generation"]) for r in anchors] == [(steps[0], 1), (steps[1], 2)]
    game = make("connect4")
    for r in anchors:
        for n, spec in enumerate(["random", "mcts-rollout:8"]):
            wdl = [r[f"anchor/{spec}/{k}"] for k in ("wins", "draws", "losses")]
            assert sum(wdl) == r[f"anchor/{spec}/games"] == 4
            assert r[f"anchor/{spec}/score"] == (wdl[0] + 0.5 * wdl[1]) / 4
            records = read_records(game, run.arena / f"anchor-{r['generation']:04d}-{n}.jsonl")
            assert len(records) == 4
            assert {rec.info["anchor"] for rec in records} == {spec}
            assert sum(rec.info["score_a"] for rec in records) == 4 * r[f"anchor/{spec}/score"]
    # Each promotion's line: the solver figures (Connect Four has a perfect-play set) and the
    # anchors' results, as logged.
    lines = gate_lines(capsys.readouterr().out)
    gates = [r for r in run.read_metrics() if r["event"] == "gate"]
    assert len(lines) == 2
    for line, gate, r in zip(lines, gates, anchors):
        assert "solver/policy_decisive" in gate
        assert_line_tells_the_gate(line, gate)
        for spec in ["random", "mcts-rollout:8"]:
            wdl = "/".join(str(r[f"anchor/{spec}/{k}"]) for k in ("wins", "draws", "losses"))
            assert f"against {spec}: W/D/L {wdl} (4 games)" in line


def test_bad_anchors_are_config_errors_at_the_start(tmp_path):
    from azero.config import ConfigError
    cases = [("connect4_tiny", "gnugo:level=1", "GTP engines play go9, not connect4"),
             ("go9_tiny", "gnugo:level=11", "levels are 0..10"),
             ("go9_tiny", "gtp:/no/such/engine --mode gtp", "'/no/such/engine' is not found"),
             ("connect4_tiny", "mcts-rollout:x", "")]
    for name, spec, message in cases:
        config = load_config(name, [f"run_dir={tmp_path / 'run'}", f"gate.anchors=[random, '{spec}']"])
        with pytest.raises(ConfigError, match=r"^gate\.anchors\[1\]: .*" + re.escape(message)):
            run_loop(config, Limits(iterations=1), progress=False)
    written = {p.name for p in (tmp_path / "run").iterdir()} if (tmp_path / "run").exists() else set()
    assert written <= {".lock"}                      # refused before anything was written


def test_a_failing_anchor_is_logged_and_training_goes_on(tmp_path, capsys):
    dies = f"gtp:{sys.executable} -c 'import sys; sys.exit(3)'"   # an engine that dies at once
    config = load_config("go9_tiny", [f"run_dir={tmp_path / 'run'}", "gate.enabled=false",
                                      f"gate.anchors=[\"{dies}\", random]", "gate.anchor_games=2"])
    summary = run_loop(config, Limits(iterations=2), progress=False)
    run = RunDir.at(tmp_path / "run")
    assert summary["iterations"] == 2 and summary["generation"] == 2
    errors = [r for r in run.read_metrics() if r["event"] == "anchor_error"]
    assert [e["generation"] for e in errors] == [1, 2] and "exited" in errors[0]["error"].lower()
    anchors = [r for r in run.read_metrics() if r["event"] == "anchors"]
    assert [a["anchor/random/games"] for a in anchors] == [2, 2]   # the other anchor still played
    # Go has no perfect-play set: its lines give the anchors, the failed one as failed.
    lines = gate_lines(capsys.readouterr().out)
    assert len(lines) == 2
    for line, a in zip(lines, anchors):
        assert "solver" not in line and f"against {dies}: failed" in line
        wdl = "/".join(str(a[f"anchor/random/{k}"]) for k in ("wins", "draws", "losses"))
        assert f"against random: W/D/L {wdl} (2 games)" in line


def test_anchors_a_promotion_missed_are_played_on_the_next_start(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_loop(tiny_config(run_dir, "gate.enabled=false"), Limits(iterations=1), progress=False)
    run = RunDir.at(run_dir)
    assert not [r for r in run.read_metrics() if r["event"] == "anchors"]
    capsys.readouterr()
    config = tiny_config(run_dir, "gate.enabled=false", "gate.anchors=[random]", "gate.anchor_games=2")
    run_loop(config, Limits(iterations=0), progress=False)
    (anchors,) = [r for r in run.read_metrics() if r["event"] == "anchors"]
    assert anchors["generation"] == 1 and anchors["anchor/random/games"] == 2
    (line,) = gate_lines(capsys.readouterr().out)       # the late anchors get their line
    wdl = "/".join(str(anchors[f"anchor/random/{k}"]) for k in ("wins", "draws", "losses"))
    assert line.startswith(f"step {anchors['step']}: generation 1 | against random: W/D/L {wdl} "
                           f"(2 games), score {100 * anchors['anchor/random/score']:.1f}%, Elo ")
    run_loop(config, Limits(iterations=0), progress=False)           # not played twice
    assert len([r for r in run.read_metrics() if r["event"] == "anchors"]) == 1


def test_a_promotion_killed_before_its_gate_record_is_logged_on_resume(tmp_path, monkeypatch,
                                                                       capsys):
    from azero.bench import solver

    def killed(*args, **kwargs):       # best.pt is written; the kill lands before the record
        raise KeyboardInterrupt
    run_dir = tmp_path / "run"
    monkeypatch.setattr(solver, "promoted_figures", killed)
    run_loop(tiny_config(run_dir, "gate.enabled=false", "gate.background=false"),
             Limits(iterations=1), progress=False)
    run = RunDir.at(run_dir)
    best = run.read_best_info()
    assert best["generation"] == 1
    assert not [r for r in run.read_metrics() if r["event"] == "gate"]
    monkeypatch.undo()
    run_loop(tiny_config(run_dir, "gate.enabled=false"), Limits(iterations=0), progress=False)
    (gate,) = [r for r in run.read_metrics() if r["event"] == "gate"]
    assert gate["recovered"] and gate["step"] == best["step"] and gate["new_generation"] == 1
    assert gate["promoted"] and "solver/search_decisive" in gate
    assert gate["best_elo"] == best["elo"]
    (line,) = gate_lines(capsys.readouterr().out)        # the recovered gate's line
    assert_line_tells_the_gate(line, gate)
    run_loop(tiny_config(run_dir, "gate.enabled=false"), Limits(iterations=0), progress=False)
    assert len([r for r in run.read_metrics() if r["event"] == "gate"]) == 1   # logged once


def test_a_replayed_gate_that_rejects_removes_the_cut_short_promotions_generation(tmp_path,
                                                                                  monkeypatch):
    import azero.arena as arena
    from azero.stats import MatchStats

    def rejecting_gate(*args, **kwargs):
        return arena.GateResult(promoted=False, reason="test: rejected",
                                stats=MatchStats(1, 0, 3), sprt=None)
    run_dir = tmp_path / "run"
    run_loop(tiny_config(run_dir, "gate.enabled=false"), Limits(iterations=1), progress=False)
    run = RunDir.at(run_dir)
    assert run.read_best_info()["generation"] == 1
    # A promotion of the next candidate wrote generation 2, then a kill came before best.pt.
    run.generation(2).write_bytes(run.best.read_bytes())
    monkeypatch.setattr(arena, "gate", rejecting_gate)
    run_loop(tiny_config(run_dir, "gate.background=false"), Limits(iterations=1), progress=False)
    (rejected,) = [r for r in run.read_metrics() if r["event"] == "gate" and not r["promoted"]]
    assert rejected["elo"] < 0 and rejected["games_seen"] > 0
    assert not run.generation(2).exists() and run.generation(1).exists()


def test_a_second_ctrl_c_waits_for_the_step_or_save_under_way():
    from azero.loop import _InterruptFlag
    flag = _InterruptFlag()
    flag._handler(None, None)                 # the first Ctrl-C only asks
    assert flag.requested
    finished = False
    with pytest.raises(KeyboardInterrupt):
        with flag.critical():
            flag._handler(None, None)         # the second, inside an optimizer step
            finished = True                   # ... which still runs to its end
    assert finished
    with pytest.raises(KeyboardInterrupt):
        flag._handler(None, None)             # outside a critical block: at once


def test_start_keeps_a_young_temp_shard_a_left_behind_worker_may_still_write(tmp_path):
    from azero.atomic import ORPHAN_WRITE_GRACE_SECONDS
    from azero.loop import prepare_run
    config = tiny_config(tmp_path / "run")
    run = prepare_run(config)
    young, old = run.replay / ".shard-a.npz.x1.tmp", run.replay / ".shard-b.npz.x2.tmp"
    young.write_bytes(b"half")
    old.write_bytes(b"half")
    stale = time.time() - ORPHAN_WRITE_GRACE_SECONDS - 5
    os.utime(old, (stale, stale))
    stray = run.checkpoints / ".trainer.pt.x3.tmp"   # only the (dead) trainer writes there
    stray.write_bytes(b"half")
    prepare_run(config)
    assert young.exists() and not old.exists() and not stray.exists()


@pytest.mark.parametrize("max_lead", [0.05, None])
def test_selfplay_pauses_while_the_trainer_is_behind(tmp_path, max_lead):
    """A trainer that needs many samples per position falls behind a fast self-play. With
    train.max_selfplay_lead, self-play waits whenever it is further ahead than that share of the
    window and goes on once the trainer catches up; without it (null), self-play runs away."""
    run_dir = tmp_path / "run"
    config = tiny_config(run_dir, "gate.enabled=false", "train.checkpoint_every_steps=100000",
                         "train.train_samples_per_position=200",
                         f"train.max_selfplay_lead={'null' if max_lead is None else max_lead}")
    run_loop(config, Limits(hours=12 / 3600), progress=False)
    run = RunDir.at(run_dir)
    trains = [r for r in run.read_metrics() if r["event"] == "train"]
    positions_per_step = 16 / 200                      # batch / samples per position
    final = trains[-1]
    final_lead = final["positions_seen"] - final["step"] * positions_per_step
    if max_lead is None:
        assert not any(r["selfplay_paused"] for r in trains)
        assert final_lead > 1000, final_lead           # ran away: ~0.08 positions per step paid
    else:
        limit = max_lead * 2000                        # share of window_positions
        assert any(r["selfplay_paused"] for r in trains)
        # Bounded: the limit plus what was written before the first check (self-play starts
        # before the trainer) or between two checks (a few shards of 4 games): ~340 measured.
        assert max(r["selfplay_lead"] for r in trains) <= limit + 600
        assert final_lead <= limit + 400, final_lead
    assert not run.selfplay_pause_file.exists()        # a clean stop releases self-play


def test_random_openings_longer_than_the_game_are_refused_at_the_start(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4", "--config",
         "connect4_tiny", "--run-dir", str(tmp_path / "r"), "--set",
         "selfplay.random_opening_max_moves=50"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "selfplay.random_opening_max_moves" in out.stderr
    assert not (tmp_path / "r").exists()


def test_a_backlog_beyond_the_window_is_written_off_and_the_pause_lifts(tmp_path):
    """A run resumed with more owed training than the window holds (its trainer fell behind)
    writes off the part beyond the window instead of training the window over and over while
    self-play waits; self-play pauses until the trainer is within the lead, then goes on. The
    write-off survives a save and restore."""
    from azero.loop import _SelfPlayPacer
    from azero.train import Trainer
    config = tiny_config(tmp_path / "run", "train.train_samples_per_position=4",
                         "train.max_selfplay_lead=0.25")      # window 2000: lead limit 500
    run = RunDir.at(config.run_dir)
    run.make()
    trainer = Trainer.create(config, load_config("connect4_tiny").make_game(), "cpu")
    pacer = _SelfPlayPacer(run, config)
    owed = pacer.update(trainer, positions_seen=10_000)        # 8,000 positions beyond the window
    assert trainer.positions_forgiven == 8_000
    assert owed == 2_000 * 4 // 16 and pacer.lead == 2_000
    assert run.selfplay_paused()
    trainer.step += owed - 500 * 4 // 16                       # the trainer catches up to 500
    assert pacer.update(trainer, positions_seen=10_000) == 125 and not run.selfplay_paused()
    trainer.save(run.trainer_state)
    restored = Trainer.from_checkpoint(run.trainer_state, config)
    assert restored.positions_forgiven == 8_000 and restored.steps_owed(10_000) == 125
    # Without a lead limit nothing is written off or paused (the old behaviour).
    free = _SelfPlayPacer(run, tiny_config(tmp_path / "run", "train.max_selfplay_lead=null"))
    fresh = Trainer.create(config, load_config("connect4_tiny").make_game(), "cpu")
    assert free.update(fresh, positions_seen=10_000) == 10_000 * 4 // 16
    assert fresh.positions_forgiven == 0 and not run.selfplay_paused()


def test_tensorboard_gets_the_gate_and_the_promoted_networks_solver_figures(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    run_loop(tiny_config(run_dir, "gate.enabled=false", "log.tensorboard=true"),
             Limits(iterations=1), progress=False)
    run = RunDir.at(run_dir)
    (gate,) = [r for r in run.read_metrics() if r["event"] == "gate"]
    events = EventAccumulator(str(run.tensorboard))
    events.Reload()
    scalars = {tag: events.Scalars(tag)[-1] for tag in events.Tags()["scalars"]}
    assert scalars["best/generation"].value == 1
    for key in ("solver/policy_decisive", "solver/search_decisive", "solver/policy_optimal",
                "solver/search_optimal"):
        assert scalars[key].step == gate["step"]
        assert scalars[key].value == pytest.approx(gate[key], abs=1e-6)
