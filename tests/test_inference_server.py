"""The inference server (azero/inference_server.py) and its clients (azero/inference_client.py):
answers equal the local evaluator's, requests of several clients share a forward pass, a killed
client harms no other, a promotion reaches the replies, a dead server is restarted or reported,
and the main job runs with it."""
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

from azero import checkpoint as ckpt
from azero.config import load_config
from azero.inference_client import InferenceServerError, ServedPlayer, connect
from azero.inference_server import (InferenceServer, ServedPool, decode, encode,
                                    parse_endpoint, with_endpoint)
from azero.algorithms import algorithm_for
from azero.loop import Limits, _write_best, prepare_run, run_loop
from azero.nets import build_net
from azero.backends import LocalBackend
from azero.pool import WorkerPool
from azero.rundir import RunDir
from test_loop import _session_members

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def fp32_inference(monkeypatch):
    """fp32 snapshots in this process and in the servers it spawns (which inherit the
    environment): bf16 rounding would depend on how rows are batched."""
    monkeypatch.setenv("AZERO_INFERENCE_PRECISION", "fp32")


def tiny(run_dir, name="connect4_tiny", *extra):
    return load_config(name, [f"run_dir={run_dir}", "selfplay.checkpoint_poll_seconds=0.2",
                              *extra])


def local_evaluator(config, run):
    """The evaluator a worker makes of the run's best network (workers.GamePlayer)."""
    game = config.make_game()
    net = ckpt.load(run.best, expected_game=game.spec.name).model
    return algorithm_for(config).games(None, game, config, 0).evaluator(net, "cpu")


def positions(game, count, seed):
    """[count, S] live positions after a few random moves each."""
    rng = np.random.default_rng(seed)
    states = game.initial_states(count)
    for _ in range(int(rng.integers(2, 8))):
        legal = game.legal_mask(states)
        moves = np.array([rng.choice(np.flatnonzero(row)) for row in legal])
        stepped = game.step(states, moves)
        live = ~(game.terminal(stepped) | game.truncated(stepped))
        states[live] = stepped[live]
    return states


@pytest.fixture
def served(tmp_path):
    """(config, run, server) for a config; the servers are stopped after the test."""
    servers = []

    def make(name="connect4_tiny", *extra):
        config = tiny(tmp_path / name, name, *extra)
        run = prepare_run(config)
        server = InferenceServer(run.root, config)
        servers.append(server)
        server.start()
        return config, run, server

    yield make
    for server in servers:
        server.stop()


def test_the_wire_format_round_trips_arrays_and_refuses_objects():
    a, b = np.arange(12, dtype=np.int8).reshape(3, 4), np.linspace(0, 1, 5, dtype=np.float32)
    op, meta, (a2, b2) = decode(encode("eval", {"generation": 3}, [a, b]))
    assert (op, meta) == ("eval", {"generation": 3})
    np.testing.assert_array_equal(a2, a)
    np.testing.assert_array_equal(b2, b)
    assert a2.dtype == np.int8 and b2.dtype == np.float32
    with pytest.raises(ValueError, match="object"):
        decode(encode("eval", None, [np.array([None, 1], dtype=object)]))
    with pytest.raises(ValueError):
        decode(encode("eval", None, [a])[:-1])              # cut short
    with pytest.raises(ValueError, match="header describes"):
        decode(encode("eval", None, [a]) + b"\0")          # trailing bytes
    assert parse_endpoint("10.0.0.5:7001/00ff") == (("10.0.0.5", 7001), b"\x00\xff")
    with pytest.raises(ValueError, match="HOST:PORT/KEY"):
        parse_endpoint("10.0.0.5/00ff")


@pytest.mark.parametrize("game_name", ["connect4_tiny", "go9_tiny"])
def test_answers_equal_the_local_evaluators_also_when_two_clients_share_a_batch(served,
                                                                              game_name):
    # the server waits up to 5 s for more requests until 2 x 6 rows: the two clients' requests
    # go into one forward pass
    config, run, server = served(game_name, "selfplay.inference_server_wait_ms=5000",
                                 "selfplay.inference_server_max_batch=12")
    game = config.make_game()
    local = local_evaluator(config, run)
    clients = [connect(server.endpoint, game) for _ in range(2)]
    inputs = [positions(game, 6, seed) for seed in (1, 2)]
    answers = [None, None]

    def ask(i):
        answers[i] = clients[i](inputs[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    stats = clients[0].server_stats()
    assert stats["multi_client_batches"] == 1 and stats["max_clients_per_batch"] == 2
    assert stats["batches"] == 1 and stats["rows"] == 12
    for (logits, values), states in zip(answers, inputs):
        expected_logits, expected_values = local(states)
        assert logits.shape == (6, game.spec.num_actions) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(values, expected_values, rtol=1e-5, atol=1e-5)
    assert all(c.generation == 0 for c in clients)
    # a request that does not fit the game is refused to its client alone
    with pytest.raises(InferenceServerError, match="states"):
        clients[0](np.zeros((2, game.spec.state_size + 1), game.spec.state_dtype))
    logits, _ = clients[1](inputs[1])
    np.testing.assert_allclose(logits, local(inputs[1])[0], rtol=1e-5, atol=1e-5)


def test_muzero_initial_and_recurrent_equal_the_local_evaluators(served):
    config, run, server = served("connect4_muzero_tiny")
    game = config.make_game()
    local = local_evaluator(config, run)
    remote = connect(server.endpoint, game)
    assert remote.latent_shape == local.latent_shape and remote.discount == local.discount
    states = positions(game, 5, 3)
    latents, logits, values = remote.initial(states)
    expected = local.initial(states)
    np.testing.assert_allclose(latents.numpy(), expected[0].float().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits, expected[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values, expected[2], rtol=1e-5, atol=1e-5)
    actions = np.array([0, 3, 6, 2, 1])
    out = remote.recurrent(latents, actions)
    want = local.recurrent(expected[0], actions)
    assert out[2] is None
    np.testing.assert_allclose(out[0].numpy(), want[0].float().numpy(), rtol=1e-5, atol=1e-5)
    for got, exp in zip(out[3:] + (out[1],), want[3:] + (want[1],)):   # logits, values, rewards
        np.testing.assert_allclose(got, exp, rtol=1e-5, atol=1e-5)
    # the AlphaZero request on a MuZero server is its prediction on the real observation
    np.testing.assert_allclose(remote(states)[0], expected[1], rtol=1e-5, atol=1e-5)

    # ServedPlayer searches the server's model (MuZeroSearch over the remote evaluator)
    player = ServedPlayer(config, game, algorithm_for(config).games(None, game, config, 0), 0,
                          server.endpoint)
    for _ in range(3):
        player.play_move()
    assert all(group.search.model.core.num_nodes().max() > 1 for group in player.groups)
    player.close()


def _connect_ask_and_hang(endpoint, sent):
    """A client process that sends a request, then hangs until it is killed."""
    from azero.config import load_config
    from azero.inference_server import encode, parse_endpoint
    from multiprocessing.connection import Client

    game = load_config("connect4_tiny").make_game()
    address, key = parse_endpoint(endpoint)
    conn = Client(address, authkey=key)
    conn.send_bytes(encode("eval", None, [game.initial_states(64)]))
    sent.set()
    time.sleep(600)


def test_a_client_killed_mid_request_does_not_break_the_others(served):
    config, run, server = served("connect4_tiny", "selfplay.inference_server_wait_ms=300")
    game = config.make_game()
    ctx = mp.get_context("spawn")
    sent = ctx.Event()
    doomed = ctx.Process(target=_connect_ask_and_hang, args=(server.endpoint, sent), daemon=True)
    doomed.start()
    survivor = connect(server.endpoint, game)
    assert sent.wait(60)
    os.kill(doomed.pid, signal.SIGKILL)           # while the server may still batch its rows
    doomed.join(10)
    local = local_evaluator(config, run)
    states = positions(game, 4, 5)
    deadline = time.monotonic() + 20
    while True:
        logits, values = survivor(states)
        np.testing.assert_allclose(logits, local(states)[0], rtol=1e-5, atol=1e-5)
        stats = survivor.server_stats()
        if stats["clients_dropped"] == 1 or time.monotonic() > deadline:
            break
    assert stats["clients_dropped"] == 1 and stats["clients"] == 1
    assert server.is_alive()


def test_the_server_reloads_a_newly_promoted_network(served):
    config, run, server = served("connect4_tiny")
    game = config.make_game()
    client = connect(server.endpoint, game)
    states = positions(game, 3, 7)
    before, _ = client(states)
    assert client.generation == 0
    torch.manual_seed(123)
    newer = build_net(algorithm_for(config).architecture(config, game.spec))
    _write_best(run, newer, config, step=4, generation=1, elo=10.0)
    deadline = time.monotonic() + 20
    while client.generation == 0 and time.monotonic() < deadline:
        logits, _ = client(states)
        time.sleep(0.05)
    assert client.generation == 1
    assert client.server_stats()["reloads"] == 1
    np.testing.assert_allclose(logits, local_evaluator(config, run)(states)[0], rtol=1e-5,
                               atol=1e-5)
    assert not np.allclose(logits, before, atol=1e-3)


class _RecordingPool(WorkerPool):
    """A backend pool that only records the config it was made with."""

    def __init__(self, config):
        self.config = config
        self.checks = 0

    def start(self):
        pass

    def check(self):
        self.checks += 1
        return []

    def stop(self, timeout=10.0):
        pass


class _RecordingBackend(LocalBackend):
    def pool(self, run, config):
        self.made = _RecordingPool(config)
        return self.made


def test_a_dead_server_is_restarted_on_its_endpoint_and_then_reported(tmp_path):
    config = tiny(tmp_path / "run", "connect4_tiny", "selfplay.inference_server=true")
    run = prepare_run(config)
    backend = _RecordingBackend()
    pool = ServedPool(backend, run, config, max_restarts=1)
    pool.start()
    try:
        endpoint = backend.made.config.selfplay.inference_server_endpoint
        assert endpoint == pool.server.endpoint and endpoint.startswith("127.0.0.1:")
        game = config.make_game()
        client = connect(endpoint, game)
        client(game.initial_states(2))
        assert pool.check() == [] and backend.made.checks == 1
        pool.server.process.kill()
        pool.server.process.join(10)
        started = time.monotonic()
        with pytest.raises(InferenceServerError, match="closed the connection"):
            client(game.initial_states(2))
        assert time.monotonic() - started < 5          # a dead server is noticed at once
        lines = pool.check()
        assert len(lines) == 1 and "restarted" in lines[0]
        assert pool.server.endpoint == endpoint         # the workers' config stays right
        logits, _ = connect(endpoint, game)(game.initial_states(2))
        assert logits.shape == (2, game.spec.num_actions)
        pool.server.process.kill()
        pool.server.process.join(10)
        with pytest.raises(RuntimeError, match="inference server keeps dying"):
            pool.check()
    finally:
        pool.stop()
    assert not pool.server.is_alive()


def test_a_server_that_does_not_answer_times_out_with_a_clear_error():
    from multiprocessing.connection import Listener

    key = os.urandom(8)
    listener = Listener(("127.0.0.1", 0), authkey=key)     # accepts, never answers
    endpoint = f"127.0.0.1:{listener.address[1]}/{key.hex()}"
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    started = time.monotonic()
    with pytest.raises(InferenceServerError, match="no reply within 0.5 s"):
        connect(endpoint, None, reply_timeout=0.5)
    assert time.monotonic() - started < 5
    listener.close()
    with pytest.raises(InferenceServerError, match="no inference server answers"):
        connect(endpoint, None, connect_timeout=0.3)


def assert_valid_game(game, g):
    """A finished game replays by the rules: each recorded move is legal in its position, the
    positions follow from the moves, and the last move ends the game with the stored result."""
    state = np.asarray(g.states[:1])
    for i, action in enumerate(g.actions):
        np.testing.assert_array_equal(state[0], g.states[i])
        assert game.legal_mask(state)[0, action]
        np.testing.assert_allclose(g.policy_targets[i].sum(), 1.0, atol=1e-5)
        assert (g.policy_targets[i][~game.legal_mask(state)[0]] == 0).all()
        state = game.step(state, np.array([action]))
    assert game.terminal(state)[0] or g.truncated
    if not g.truncated:
        assert g.result_first_player in (-1.0, 0.0, 1.0)


def test_the_two_group_worker_plays_valid_games_with_two_batches_in_flight(served):
    # the server waits up to 10 ms for more rows: two groups in flight share forward passes
    config, run, server = served("connect4_tiny", "selfplay.games_per_worker=9",
                                 "selfplay.inference_server_wait_ms=10",
                                 "selfplay.random_opening_fraction=0")
    game = config.make_game()
    player = ServedPlayer(config, game, algorithm_for(config).games(None, game, config, 0), 0,
                          server.endpoint)
    assert [g.settings.games_per_worker for g in player.groups] == [5, 4]
    finished = []
    for _ in range(200):
        finished += player.play_move()
        if len(finished) >= 4:
            break
    assert len(finished) >= 4
    for g in finished:
        assert_valid_game(game, g)
    stats = player.evaluators[0].server_stats()
    assert stats["clients"] == 2 and stats["multi_client_batches"] > 0
    assert player.generation == 0
    player.close()


def test_the_main_job_runs_with_the_inference_server_and_leaves_no_process(tmp_path):
    config = tiny(tmp_path / "run", "connect4_tiny", "selfplay.inference_server=true",
                  "selfplay.workers=2")
    summary = run_loop(config, Limits(iterations=1), progress=False)
    assert summary["reason"] == "limit" and summary["iterations"] == 1
    run = RunDir.at(config.run_dir)
    assert list(run.replay.glob("shard-*.npz"))
    records = [r for r in run.read_metrics() if r.get("event") == "selfplay"]
    assert {r["worker"] for r in records} == {0, 1}
    assert all(r["positions_per_second"] > 0 for r in records)
    assert mp.active_children() == []           # workers and server all stopped


def test_a_muzero_worker_drops_its_trees_when_the_server_promotes_a_network(served):
    """A MuZero tree holds the latents of the network that made them: each group starts afresh
    at the move where its replies first come from the new generation, and only then."""
    config, run, server = served("connect4_muzero_tiny")
    game = config.make_game()
    player = ServedPlayer(config, game, algorithm_for(config).games(None, game, config, 0), 0,
                          server.endpoint)
    resets = []     # (group, its generation) at each reset of every tree; finished games
                    # reset their own rows only

    def spy(i, reset):
        def whole_reset(rows=None):
            if rows is None:
                resets.append((i, player.evaluators[i].generation))
            reset(rows)
        return whole_reset

    for i, group in enumerate(player.groups):
        group.search.reset = spy(i, group.search.reset)
    for _ in range(2):
        player.play_move()
    assert resets == []       # no promotion: trees kept
    torch.manual_seed(5)
    newer = build_net(algorithm_for(config).architecture(config, game.spec))
    _write_best(run, newer, config, step=4, generation=1, elo=10.0)
    deadline = time.monotonic() + 30
    while (min(ev.generation for ev in player.evaluators) == 0
           and time.monotonic() < deadline):
        player.play_move()
    player.play_move()
    assert sorted(resets) == [(0, 1), (1, 1)]
    player.close()


def test_the_command_line_flag_turns_the_server_on(tmp_path):
    from azero.cli import build_parser
    from azero.commands.selfplay import resolve_config

    argv = ["selfplay", "--game", "connect4", "--config", "connect4_tiny", "--run-dir",
            str(tmp_path / "run")]
    assert not resolve_config(build_parser().parse_args(argv)).selfplay.inference_server
    config = resolve_config(build_parser().parse_args(argv + ["--inference-server"]))
    assert config.selfplay.inference_server


def test_the_server_and_workers_leave_when_the_trainer_is_killed(tmp_path):
    """`azero selfplay --inference-server` killed with SIGKILL (the trainer alone, as an OOM
    killer would): its server and workers, orphaned, leave on their own."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "azero.cli", "selfplay", "--game", "connect4",
           "--config", "connect4_tiny", "--run-dir", str(run_dir), "--no-progress",
           "--inference-server"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    run = RunDir.at(run_dir)
    deadline = time.monotonic() + 180
    while not list(run.replay.glob("shard-*.npz")):      # games played through the server
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    assert len(_session_members(proc.pid)) >= 3      # the trainer, its server, its worker, ...
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 60
    while _session_members(proc.pid):
        assert time.monotonic() < deadline, "an orphaned server or worker kept running"
        time.sleep(0.2)


def test_a_ray_actor_plays_through_the_server_without_fetching_a_network(served):
    """SelfPlayActor.play under selfplay.inference_server (the actor's object, without Ray): its
    moves are answered by the server, whose generation the delivery carries; the network
    reference the driver sends is never fetched."""
    from azero.ray_pool import SelfPlayActor

    config, run, server = served("connect4_tiny", "selfplay.inference_server=true")
    config = with_endpoint(config, server.endpoint)      # as ServedPool gives it
    actor = object.__new__(SelfPlayActor)       # __init__ asks Ray for the actor's CPUs
    actor._mismatch, actor.config, actor.worker_id, actor.player = None, config, 0, None
    actor.game = config.make_game()
    actor.kit = algorithm_for(config).games(None, actor.game, config, 0)
    delivery = actor.play(7, [object()], max_seconds=0.5)    # 7: the driver's (stale) generation
    assert isinstance(actor.player, ServedPlayer)
    assert delivery.generation == 0 and delivery.played >= config.selfplay.games_per_worker
    assert actor.player.evaluators[0].server_stats()["rows"] > 0
