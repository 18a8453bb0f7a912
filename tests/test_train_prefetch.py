"""The trainer's host side: batches sampled ahead on a thread (train.prefetch_batches) are the
batches sampled in series, no thread outlives a chunk, and the losses read once per chunk still
stop a non-finite loss before anything saved holds its update."""
import contextlib
import threading

import numpy as np
import pytest
import torch

from fake_games import DropThree, random_games
from azero.config import load_config
from azero.prefetch import Prefetcher
from azero.replay import ReplayBuffer, ShardWriter
from azero.train import Trainer

# one torch thread (conftest.one_torch_thread): tiny nets on a shared 2-core box
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(*overrides):
    return load_config("connect4_tiny", ["game=dropthree", "model.blocks=1", "model.channels=16",
                                         "model.value_hidden=16", "train.batch_size=16",
                                         "train.lr_schedule=constant", "train.lr=3e-3",
                                         *overrides])


@pytest.fixture(scope="module")
def buffer(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay")
    game = DropThree()
    writer = ShardWriter(d, worker=0, games_per_shard=6)
    for g in random_games(game, 6, np.random.default_rng(0)):
        writer.add_game(*g)
    buf = ReplayBuffer(d, game, 1000)
    buf.refresh()
    return buf


def _trainer(prefetch: int, *overrides) -> Trainer:
    torch.manual_seed(0)
    return Trainer.create(_config(f"train.prefetch_batches={prefetch}", *overrides), DropThree(),
                          "cpu")


def _record_draws(trainer: Trainer, change=None):
    """Wraps trainer.sample_batch: returns the list it appends (thread, batch) to; change(i,
    batch) may replace the i-th batch drawn."""
    drawn = []
    sample = trainer.sample_batch

    def recorded(buffer, rng):
        batch = sample(buffer, rng)
        if change is not None:
            batch = change(len(drawn), batch)
        drawn.append((threading.current_thread(), batch))
        return batch
    trainer.sample_batch = recorded
    return drawn


def _prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "azero-prefetch"]


def _nan_value_at(step: int):
    def change(i, batch):
        if i == step:
            batch = batch._replace(value=np.full_like(batch.value, np.nan))
        return batch
    return change


@pytest.mark.parametrize("prefetch", [1, 2, 9])
def test_prefetched_batches_are_the_batches_in_series(buffer, prefetch):
    serial, ahead = _trainer(0), _trainer(prefetch)
    drawn_serial, drawn_ahead = _record_draws(serial), _record_draws(ahead)
    rng_serial, rng_ahead = np.random.default_rng(3), np.random.default_rng(3)
    for steps in (7, 3):                       # two chunks, as the loop calls it
        losses_serial = serial.train_steps(buffer, steps, rng_serial)
        losses_ahead = ahead.train_steps(buffer, steps, rng_ahead)
        assert losses_ahead == losses_serial and set(losses_serial) >= {"loss", "lr", "grad_norm"}
    assert len(drawn_serial) == len(drawn_ahead) == 10 and ahead.step == serial.step == 10
    for (thread_s, a), (thread_a, b) in zip(drawn_serial, drawn_ahead):
        assert thread_s is threading.main_thread() and thread_a is not threading.main_thread()
        assert a.obs.shape == b.obs.shape == (16, *DropThree().spec.observation_shape)
        for x, y in zip(a, b):
            assert (x is None and y is None) or np.array_equal(x, y)
    # same rng afterwards, same weights and optimizer moments
    assert rng_serial.bit_generator.state == rng_ahead.bit_generator.state
    for p, q in zip(serial.net.state_dict().values(), ahead.net.state_dict().values()):
        assert torch.equal(p, q)
    assert not _prefetch_threads()


def test_the_means_are_those_of_single_steps(buffer):
    """train_steps' means (read once per chunk) equal the means of train_step's floats."""
    chunked, single = _trainer(2), _trainer(0)
    drawn = _record_draws(chunked)
    means = chunked.train_steps(buffer, 5, np.random.default_rng(1))
    each = [single.train_step(batch) for _, batch in drawn]
    assert means.keys() == each[0].keys()
    for k in means:
        assert means[k] == pytest.approx(sum(s[k] for s in each) / 5, rel=1e-6, abs=1e-9)


def test_the_trainer_learns_a_tiny_buffer_with_prefetch(buffer):
    trainer = _trainer(2)
    rng = np.random.default_rng(0)
    chunks = [trainer.train_steps(buffer, 20, rng) for _ in range(8)]
    assert trainer.step == 160
    for k in ("value_loss", "policy_kl"):
        assert chunks[-1][k] < 0.5 * chunks[0][k], [c[k] for c in chunks]


def test_no_thread_outlives_train_steps(buffer):
    trainer = _trainer(2)
    rng = np.random.default_rng(0)
    trainer.train_steps(buffer, 4, rng)
    assert not _prefetch_threads()
    # an early stop while the thread waits on a full queue
    asked = []
    trainer.train_steps(buffer, 50, rng, should_stop=lambda: asked.append(1) or len(asked) > 2)
    assert trainer.step == 6 and not _prefetch_threads()

    class Boom(Exception):
        pass

    def failing_step(at, error):
        """A step_guard whose at-th step raises `error` from inside the step."""
        count = []

        @contextlib.contextmanager
        def guard():
            count.append(1)
            yield
            if len(count) == at:
                raise error
        return guard
    for error in (Boom("in the step"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            trainer.train_steps(buffer, 50, rng, step_guard=failing_step(3, error))
        assert not _prefetch_threads()
    # an error while sampling reaches the caller, in order, and ends the thread
    def fail_third(i, batch):
        if i == 2:
            raise Boom("sampling")
        return batch
    _record_draws(trainer, change=fail_third)
    before = trainer.step
    with pytest.raises(Boom, match="sampling"):
        trainer.train_steps(buffer, 50, rng)
    assert trainer.step == before + 2 and not _prefetch_threads()


def test_prefetcher_alone_stops_when_left():
    made = []
    with Prefetcher(lambda: made.append(1) or len(made), count=1000, depth=2) as results:
        first = [next(iter(results))]
    assert first == [1] and not _prefetch_threads()
    assert len(made) <= 1 + 2 + 1             # taken + queued + the one in progress
    with pytest.raises(ValueError, match="depth"):
        Prefetcher(lambda: 0, count=1, depth=0)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_nan_loss_raises_at_the_end_of_the_chunk_naming_its_step(buffer, prefetch):
    trainer = _trainer(prefetch)
    trainer.train_steps(buffer, 3, np.random.default_rng(0))
    _record_draws(trainer, change=_nan_value_at(2))
    with pytest.raises(FloatingPointError, match=r"training loss is nan at step 5 "):
        trainer.train_steps(buffer, 6, np.random.default_rng(1))
    assert not _prefetch_threads()


def test_a_single_train_step_still_refuses_a_nan_loss_before_applying_it(buffer):
    trainer = _trainer(0)
    batch = trainer.sample_batch(buffer, np.random.default_rng(0))
    before = [p.detach().clone() for p in trainer.net.parameters()]
    with pytest.raises(FloatingPointError, match="at step 0"):
        trainer.train_step(batch._replace(value=np.full_like(batch.value, np.inf)))
    # the weights and the optimizer untouched (BatchNorm's running statistics saw the forward)
    assert trainer.step == 0 and not trainer.optimizer.state
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.net.parameters()))


@pytest.mark.parametrize("nan", [True, False])
def test_a_second_ctrl_c_after_a_nan_step_raises_the_nan(buffer, nan):
    """The loop saves the trainer after a KeyboardInterrupt (weights permitting); one coming
    out of a chunk in which a loss was not finite becomes the FloatingPointError, which the
    loop saves nothing after."""
    from azero.loop import _InterruptFlag, _train_chunk
    trainer, flag = _trainer(2), _InterruptFlag()
    drawn = _record_draws(trainer, change=_nan_value_at(1) if nan else None)
    train_step = trainer._train_step

    def step_with_two_ctrl_c(batch, check_finite):
        if trainer.step == 2:              # the first asks, the second waits for the step
            flag._handler(None, None)
            flag._handler(None, None)
        return train_step(batch, check_finite)
    trainer._train_step = step_with_two_ctrl_c
    with pytest.raises(FloatingPointError if nan else KeyboardInterrupt):
        _train_chunk(trainer, buffer, 10, np.random.default_rng(0), flag)
    assert trainer.step == 3 and len(drawn) >= 3 and not _prefetch_threads()


def test_the_loop_stops_on_a_nan_loss_before_saving_its_update(tmp_path, monkeypatch):
    """run_loop end to end: the sixth batch's targets are NaN (step 5, inside the second
    chunk of 4 steps). The run stops with the error; trainer.pt and the candidates hold only
    the steps before it, with finite weights."""
    from azero import checkpoint as ckpt
    from azero.loop import Limits, run_loop
    from azero.rundir import RunDir
    sample = Trainer.sample_batch
    drawn = []

    def poisoned(self, buffer, rng):
        batch = sample(self, buffer, rng)
        drawn.append(1)
        if len(drawn) == 6:
            batch = batch._replace(value=np.full_like(batch.value, np.nan))
        return batch
    monkeypatch.setattr(Trainer, "sample_batch", poisoned)
    run_dir = tmp_path / "run"
    config = load_config("connect4_tiny", [f"run_dir={run_dir}", "gate.enabled=false",
                                           "log.every_steps=4", "train.checkpoint_every_steps=4",
                                           "train.prefetch_batches=2"])
    with pytest.raises(FloatingPointError, match="at step 5 "):
        run_loop(config, Limits(hours=0.1), progress=False)
    run = RunDir.at(run_dir)
    stop = run.read_metrics()[-1]
    assert stop["event"] == "stop" and stop["reason"] == "error"
    saved = ckpt.load(run.trainer_state, expected_game="connect4")
    assert saved.step == 4
    assert all(torch.isfinite(p).all() for p in saved.model.state_dict().values())
    assert [p.name for p in run.checkpoints.glob("candidate-*.pt")] == [run.candidate(4).name]


def test_muzero_windows_prefetched_are_the_windows_in_series(tmp_path):
    from azero.muzero.replay import TrajectoryBuffer
    from azero.muzero.train import MuZeroTrainer
    from test_muzero_nets import TINY
    from test_muzero_replay import random_connect4_games, write
    game, games = random_connect4_games(4, np.random.default_rng(7))
    write(tmp_path, games)
    buffer = TrajectoryBuffer(tmp_path, game, 10_000, unroll_steps=3)
    buffer.refresh()
    trainers, draws = [], []
    for prefetch in (0, 2):
        config = load_config("connect4_tiny", [*TINY, "train.batch_size=8", "train.device=cpu",
                                               f"train.prefetch_batches={prefetch}"])
        torch.manual_seed(0)
        trainers.append(MuZeroTrainer.create(config, game, "cpu"))
        draws.append(_record_draws(trainers[-1]))
    means = [t.train_steps(buffer, 4, np.random.default_rng(2)) for t in trainers]
    assert means[0] == means[1] and {"reward_loss", "value_loss"} <= means[0].keys()
    assert draws[1][0][0] is not threading.main_thread()
    for (_, a), (_, b) in zip(*draws):
        assert all((x is None and y is None) or np.array_equal(x, y) for x, y in zip(a, b))
    for p, q in zip(trainers[0].net.parameters(), trainers[1].net.parameters()):
        assert torch.equal(p, q)
    assert not _prefetch_threads()


def test_bench_train_times_prefetch_against_in_series_and_the_observation(capsys):
    from test_bench_net_train import run_json
    rows = run_json(capsys, ["bench", "train", "--game", "go9_tiny", "--batch", "16",
                             "--steps", "3", "--rounds", "1", "--positions", "300",
                             "--prefetch", "2", "--observation-batch", "32", "64"])
    names = [r["name"] for r in rows]
    assert names[:2] == [f"go9_tiny observation encoding (game.observation), batch {b}"
                         for b in (32, 64)]
    loop = rows[-1]
    assert loop["name"] == "go9_tiny 1x8 replay sample + optimizer step, batch 16, prefetch 2, cpu"
    assert loop["baseline"] == "same, sampled in series (prefetch 0)"
    assert all(r["value"] > 0 for r in rows) and loop["baseline_value"] > 0
    assert not _prefetch_threads()
