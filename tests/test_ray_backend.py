"""The Ray backend (azero/ray_pool.py): self-play actors whose games the driver writes.

Default run: a local Ray instance (2 CPUs, 100 MB object store) runs tiny AlphaZero and MuZero
loops, and every bad set-up is one line with exit code 2. Slow (-m slow): a two-node cluster on
this machine (ray.cluster_utils.Cluster) with a worker pinned to each node; an actor killed and
a node removed mid-run; the driver killed with SIGKILL and rerun.
"""
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import azero
from azero import checkpoint as ckpt
from azero.config import ConfigError, load_config
from azero.loop import Limits, prepare_run, run_loop
from azero.ray_pool import RayBackend, RayWorkerPool
from azero.records import read_records
from azero.rundir import RunDir

try:
    import ray
except ImportError:        # the tests that need Ray skip; the one without it still runs
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="Ray is not installed (pip install -e '.[ray]')")

REPO = Path(__file__).resolve().parents[1]
SMALL_STORE = 100 * 2 ** 20          # object store bytes of each test node


def tiny(run_dir, *extra, name="connect4_tiny"):
    return load_config(name, [f"run_dir={run_dir}", "selfplay.workers=2", *extra])


def shard_games(folder: Path) -> dict[int, int]:
    """Games per worker id in the complete shards of `folder` (each must read back whole)."""
    games: dict[int, int] = {}
    for p in sorted(folder.glob("shard-*.npz")):
        with np.load(p, allow_pickle=False) as data:
            assert data["states"].shape[0] == data["value"].shape[0] > 0
            worker = int(p.name.split("-w")[1].split("-")[0])
            games[worker] = games.get(worker, 0) + int(data["num_games"])
    return games


def recorded_games(run: RunDir, game) -> dict[int, int]:
    """Games per worker id in the self-play records (games/selfplay-w<id>.*)."""
    return {int(p.name[len("selfplay-w"):][:3]): len(read_records(game, p))
            for p in sorted(run.games.glob("selfplay-w*"))}


@pytest.fixture(scope="module")
def local_ray():
    """One small local Ray instance for the module's in-process tests."""
    if ray is None:
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    ray.init(num_cpus=2, object_store_memory=SMALL_STORE, include_dashboard=False,
             logging_level="WARNING", log_to_driver=False)
    yield ray
    ray.shutdown()


def test_a_run_on_ray_actors_writes_every_game_as_shards_and_promotes(local_ray, tmp_path):
    run_dir = tmp_path / "run"
    # gate.enabled false: every candidate becomes best, so generation 1 must reach the actors
    config = tiny(run_dir, "gate.enabled=false", "selfplay.games_per_shard=2")
    summary = run_loop(config, Limits(iterations=2), progress=False, backend=RayBackend())
    run = RunDir.at(run_dir)
    assert summary["iterations"] == 2 and summary["generation"] == 2
    assert [r["backend"] for r in run.read_metrics() if r["event"] == "start"] == ["ray"]
    # Both actors' games reached the driver, and every game recorded is in a shard (the stop
    # wrote the games still queued): nothing received was dropped.
    games = shard_games(run.replay)
    assert set(games) == {0, 1}
    assert recorded_games(run, config.make_game()) == games
    assert not list(run.root.rglob("*.tmp"))
    # Games of the promoted network: best.pt went to the actors through the object store.
    generations = set()
    for p in run.replay.glob("shard-*.npz"):
        with np.load(p) as data:
            generations.update(np.unique(data["generation"]).tolist())
    assert {0, 1} <= generations
    # The driver logged each shard's figures as a local worker does.
    selfplay = [r for r in run.read_metrics() if r["event"] == "selfplay"]
    assert sum(r["games"] for r in selfplay) == sum(games.values())
    assert {r["worker"] for r in selfplay if r["positions_per_second"] > 0} == {0, 1}


def test_muzero_runs_on_ray_actors(local_ray, tmp_path):
    run_dir = tmp_path / "run"
    config = tiny(run_dir, "selfplay.workers=1", name="connect4_muzero_tiny")
    summary = run_loop(config, Limits(iterations=1), progress=False, backend=RayBackend())
    run = RunDir.at(run_dir)
    assert summary["iterations"] == 1
    games = shard_games(run_dir / "trajectories")
    assert games and recorded_games(run, config.make_game()) == games
    assert not list(run.replay.glob("shard-*"))         # MuZero's games are trajectories


def test_a_node_with_another_azero_version_is_refused_before_anything_starts(
        local_ray, tmp_path, monkeypatch):
    monkeypatch.setattr(azero, "__version__", "0.0.0-other")
    with pytest.raises(ConfigError, match=r"runs azero \S+ but the driver runs 0\.0\.0-other: "
                                          r"install the same azero on every node"):
        run_loop(tiny(tmp_path / "run"), Limits(iterations=1), progress=False,
                 backend=RayBackend())
    assert not (tmp_path / "run").exists()


def test_an_actor_on_a_node_of_another_version_stops_the_pool_with_one_line(
        local_ray, tmp_path, monkeypatch):
    """A node that joins after the start check: its actor refuses the driver's version."""
    config = tiny(tmp_path / "run", "selfplay.workers=1")
    run = prepare_run(config)
    monkeypatch.setattr(azero, "__version__", "0.0.0-other")
    pool = RayWorkerPool(run, config)
    pool.start()
    try:
        deadline = time.monotonic() + 60
        with pytest.raises(RuntimeError, match="the driver 0.0.0-other: install the driver's "
                                               "azero on every node") as raised:
            while time.monotonic() < deadline:
                pool.check()
                time.sleep(0.2)
        assert "\n" not in str(raised.value)
    finally:
        pool.stop()


def test_actors_dying_together_are_replaced_and_one_that_keeps_dying_stops_the_pool(
        local_ray, tmp_path):
    """The restart budget is per worker: a lost node kills all its actors at once."""
    config = tiny(tmp_path / "run")
    run = prepare_run(config)
    pool = RayWorkerPool(run, config, max_restarts=1)
    pool.start()
    try:
        def kill_every_actor(expected_lines):
            wait_for(lambda: len(actor_pids()) == 2, 60, "two live actors")
            for pid in actor_pids():
                os.kill(pid, signal.SIGKILL)
            lines = []
            wait_for(lambda: lines.extend(pool.check()) or len(lines) >= expected_lines, 60,
                     "the deaths")
            return lines

        wait_for(lambda: set(shard_games(run.replay)) == {0, 1}, 60, "both workers' games")
        lines = kill_every_actor(2)        # one death each: within the budget of 1
        assert sorted(line.split()[1] for line in lines) == ["0", "1"]
        assert all("a new actor replaces it" in line for line in lines)
        with pytest.raises(RuntimeError, match="keeps dying"):
            kill_every_actor(3)            # a second death of a worker within the hour
    finally:
        pool.stop()
    assert shard_games(run.replay)         # the games received before were written


def test_an_actor_given_no_gpu_plays_on_the_cpu_whatever_train_device_says(local_ray, tmp_path):
    from azero.ray_pool import SelfPlayActor, network_message

    config = tiny(tmp_path / "run", "train.device=cuda", "selfplay.workers=1")
    message = network_message(prepare_run(load_config("connect4_tiny",
                                                      [f"run_dir={tmp_path / 'run'}"])))
    actor = ray.remote(SelfPlayActor).options(num_cpus=1).remote(
        config.to_dict(), 0, azero.__version__)
    try:
        # the timeout covers the actor's start (imports, numba's compiles) on a loaded machine
        delivery = ray.get(actor.play.remote(0, [ray.put(message)], 60.0), timeout=300)
    finally:
        ray.kill(actor)
    assert delivery.generation == 0 and delivery.played % config.selfplay.games_per_worker == 0
    assert delivery.games and all(len(g.actions) > 0 for g in delivery.games)


def selfplay_cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4",
                           "--config", "connect4_tiny", "--no-progress", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def assert_one_line_error(done, *needles):
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("azero selfplay: "), done.stderr
    for needle in needles:
        assert needle in lines[0]


def test_without_ray_the_backend_gives_the_pip_command_and_starts_nothing(tmp_path):
    run_dir = tmp_path / "run"
    # A None entry in sys.modules makes `import ray` fail as if it were not installed.
    no_ray = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['ray'] = None; from azero.cli import main;"
         f" sys.exit(main(['selfplay', '--game', 'connect4', '--config', 'connect4_tiny', "
         f"'--run-dir', {str(run_dir)!r}, '--backend', 'ray']))"],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert_one_line_error(no_ray, "needs Ray", "pip install 'azero[ray]'")
    assert not run_dir.exists()


@needs_ray
def test_bad_addresses_get_one_line_and_start_nothing(tmp_path):
    run_dir = tmp_path / "run"
    # An address nobody listens on: refused at once, not after Ray's minutes of retries.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]                  # free once closed
    t0 = time.monotonic()
    unreachable = selfplay_cli("--run-dir", str(run_dir), "--backend", "ray",
                               "--address", f"127.0.0.1:{port}")
    assert_one_line_error(unreachable, f"--address 127.0.0.1:{port}: no Ray cluster answers",
                          "ray start --head")
    assert time.monotonic() - t0 < 60
    assert not run_dir.exists()
    # The same checks in process (the CLI prints these ConfigErrors as above).
    from azero.backends import make_backend
    from azero.ray_pool import check_address
    for address in ("nohost", "host:", ":6379", "host:port"):
        with pytest.raises(ConfigError, match="want auto or HOST:PORT"):
            check_address(address)
    with pytest.raises(ConfigError, match="--address is for --backend ray"):
        make_backend("local", "auto")


# --- a two-node cluster on this machine (slow) -----------------------------------------------

@pytest.fixture
def two_nodes():
    """A head node (resource node0) and a second node (resource node1), 1 CPU each; the test
    process is connected as the driver."""
    if ray is None:
        pytest.skip("Ray is not installed (pip install -e '.[ray]')")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {"node0": 4}, "object_store_memory": SMALL_STORE,
        "include_dashboard": False})
    second = cluster.add_node(num_cpus=1, resources={"node1": 4},
                              object_store_memory=SMALL_STORE)
    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    yield cluster, second
    ray.shutdown()
    cluster.shutdown()


def pinned(worker_id: int) -> dict:
    """Worker i's actor goes to node i % 2."""
    return {"resources": {f"node{worker_id % 2}": 1}}


def actor_pids() -> list[int]:
    """Processes of SelfPlayActors started under this test process (Ray names them)."""
    def ancestors(pid):
        while pid > 1:
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                return
            yield pid
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(b"ray::SelfPlayActor") and os.getpid() in ancestors(int(d.name)):
                pids.append(int(d.name))
    return pids


def newest_shard_time(folder: Path, worker: int) -> int:
    """time_ns in the name of the worker's newest shard (0 when none)."""
    names = sorted(p.name for p in folder.glob(f"shard-*-w{worker:03d}-*.npz"))
    return int(names[-1].split("-")[1]) if names else 0


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_a_killed_actor_and_a_lost_node_stop_nothing_and_lose_no_finished_game(
        two_nodes, tmp_path):
    cluster, second = two_nodes
    run_dir = tmp_path / "run"
    run = RunDir.at(run_dir)
    config = tiny(run_dir, "selfplay.games_per_shard=2")
    faults = {}

    def inject_faults():
        """Beside the loop (which runs in the main thread): kill an actor, then remove the
        second node, each once the run is under way; then stop the loop with Ctrl-C."""
        try:
            # Both pinned workers, one on each node, deliver games.
            wait_for(lambda: set(shard_games(run.replay)) == {0, 1}, 180, "both workers' shards")
            (victim, *_), faults["killed_at"] = actor_pids(), time.time_ns()
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: any(r["event"] == "worker_restart" for r in run.read_metrics()),
                     120, "the restart")
            restart = next(r for r in run.read_metrics() if r["event"] == "worker_restart")
            dead = int(restart["detail"].split()[1])
            # The replacement plays on: a newer shard of the dead worker's id.
            wait_for(lambda: newest_shard_time(run.replay, dead) > faults["killed_at"], 120,
                     "the new actor's games")
            cluster.remove_node(second)             # worker 1's node, with its actor
            faults["removed_at"] = time.time()
            # The run goes on without the node: worker 0's games and a gate after the loss.
            wait_for(lambda: newest_shard_time(run.replay, 0) > faults["removed_at"] * 1e9,
                     120, "games after the node was lost")
            wait_for(lambda: any(r["event"] == "gate" and r["time"] > faults["removed_at"]
                                 for r in run.read_metrics()), 180, "a gate after the loss")
        except BaseException as e:
            faults["error"] = e
        finally:
            if "summary" not in faults:
                os.kill(os.getpid(), signal.SIGINT)     # the loop's Ctrl-C: a clean stop

    injector = threading.Thread(target=inject_faults)
    injector.start()
    try:
        faults["summary"] = run_loop(config, Limits(hours=0.25), progress=False,
                                     backend=RayBackend(actor_options=pinned))
    finally:
        injector.join(60)
    if "error" in faults:
        raise faults["error"]
    assert faults["summary"]["reason"] == "interrupted"
    # Every game that reached the driver (all its records) is in a shard: the stop wrote the
    # games queued, those of the dead actor and of the lost node included.
    assert recorded_games(run, config.make_game()) == shard_games(run.replay)
    assert not list(run.root.rglob("*.tmp"))


@pytest.mark.slow
def test_a_driver_killed_with_sigkill_resumes_on_the_cluster(two_nodes, tmp_path):
    cluster, _ = two_nodes
    run_dir = tmp_path / "run"
    run = RunDir.at(run_dir)
    cmd = ["--run-dir", str(run_dir), "--workers", "2", "--backend", "ray", "--address",
           cluster.address]
    rng = random.Random(3)
    games_seen = steps_seen = 0
    for attempt in range(3):
        shards_before = len(list(run.replay.glob("shard-*.npz")))
        proc = subprocess.Popen(
            [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4", "--config",
             "connect4_tiny", "--no-progress", *cmd], stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd=REPO)
        if attempt:
            wait_for(lambda: len(list(run.replay.glob("shard-*.npz"))) > shards_before, 180,
                     "shards of this driver")
        time.sleep(rng.uniform(1.0, 6.0))
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGKILL)          # the driver alone: the cluster stays up
        proc.wait()
        if not run.best.exists():
            continue
        games = sum(shard_games(run.replay).values())
        assert games >= games_seen
        games_seen = games
        step = ckpt.read_payload(run.trainer_state)["step"]
        assert step >= steps_seen
        steps_seen = step
    # Ray ends a dead driver's actors; a rerun starts its own and finishes an iteration.
    wait_for(lambda: not actor_pids(), 60, "the killed drivers' actors to end")
    done = selfplay_cli(*cmd, "--iterations", "1", timeout=300)
    assert done.returncode == 0, done.stderr
    assert sum(shard_games(run.replay).values()) > games_seen
    assert ckpt.read_payload(run.trainer_state)["step"] > steps_seen
    for p in run.checkpoints.glob("*.pt"):
        ckpt.load(p, expected_game="connect4")
    assert not list(run.root.rglob("*.tmp"))
