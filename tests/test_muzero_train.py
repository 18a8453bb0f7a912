"""MuZero training: the K-step unroll, the paper's two gradient scalings checked with autograd,
a tiny net overfitting Connect Four windows, and resume after SIGKILL mid-unroll."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from azero import checkpoint as ckpt
from azero.config import load_config
from azero.muzero.replay import TrajectoryBuffer
from azero.muzero.train import MuZeroTrainer, scale_gradient, unroll, unrolled_loss

from test_muzero_nets import TINY
from test_muzero_replay import random_connect4_games, write

TRAIN = ["train.batch_size=8", "train.warmup_steps=0", "train.lr_schedule=constant",
         "train.device=cpu", "train.threads=1"]


def tiny_trainer(*overrides):
    config = load_config("connect4_tiny", TINY + TRAIN + list(overrides))
    torch.manual_seed(0)
    from azero.games import make
    return MuZeroTrainer.create(config, make("connect4"), "cpu"), config


# one torch thread (conftest.one_torch_thread): tiny nets on a shared 2-core box
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def connect4_buffer(tmp_path_factory):
    d = tmp_path_factory.mktemp("traj")
    game, games = random_connect4_games(6, np.random.default_rng(7))
    write(d, games)
    buf = TrajectoryBuffer(d, game, 10_000, unroll_steps=3)
    buf.refresh()
    return buf


def tensors(batch):
    return {k: torch.as_tensor(v, dtype=torch.long if k == "actions" else torch.float32)
            for k, v in batch._asdict().items() if v is not None}


def test_unroll_shapes_and_loss_parts(connect4_buffer):
    trainer, _ = tiny_trainer()
    batch = tensors(connect4_buffer.sample(5, np.random.default_rng(0)))
    outs = unroll(trainer.net, batch["obs"], batch["actions"])
    assert len(outs) == 4
    for out in outs:
        assert out.latent.shape == (5, 4, 6, 7) and out.policy_logits.shape == (5, 7)
        assert out.value.shape == (5,) and out.reward.shape == (5,)
    loss, stats = unrolled_loss(trainer.net, batch)
    assert set(stats) == {"loss", "policy_loss", "policy_kl", "value_loss", "reward_loss"}
    assert 0 <= stats["policy_kl"] < stats["policy_loss"]
    assert torch.isfinite(loss) and loss.item() == pytest.approx(stats["loss"].item())


def test_the_gradient_into_each_dynamics_entry_is_halved(connect4_buffer):
    """d(loss at step k) / d(root latent): exactly 1/2^k of the unscaled gradient (each step
    passes one dynamics entry), and unrolled_loss uses the halving by default."""
    trainer, _ = tiny_trainer()
    net = trainer.net
    batch = tensors(connect4_buffer.sample(4, np.random.default_rng(1)))

    def root_grad(scale, step):
        outs = unroll(net, batch["obs"], batch["actions"], dynamics_gradient_scale=scale)
        outs[0].latent.retain_grad()
        (outs[step].value.sum() + outs[step].reward.sum()
         + outs[step].policy_logits.square().sum()).backward()
        return outs[0].latent.grad

    for step in (1, 2, 3):
        full, half = root_grad(1.0, step), root_grad(0.5, step)
        assert full.abs().max() > 0
        torch.testing.assert_close(half, full * 0.5 ** step, rtol=1e-5, atol=1e-9)
    # scale_gradient itself: forward unchanged, backward scaled
    x = torch.tensor([1.5, -2.0], requires_grad=True)
    y = scale_gradient(x, 0.25)
    assert torch.equal(y, x.detach())
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((2,), 0.25))

    # the loss's default: a reward-only loss at step 1 gives the root half the gradient
    def loss_root_grad(**kw):
        captured = []
        original = net.initial_inference

        def keep(obs):
            out = original(obs)
            out.latent.retain_grad()
            captured.append(out.latent)
            return out
        net.initial_inference = keep
        try:
            only_reward = {**batch, "policy": torch.zeros_like(batch["policy"]),
                           "actions": batch["actions"][:, :1]}
            loss, _ = unrolled_loss(net, only_reward, value_loss_weight=0.0, **kw)
            loss.backward()
        finally:
            del net.initial_inference
        return captured[0].grad

    torch.testing.assert_close(loss_root_grad(), 0.5 * loss_root_grad(dynamics_gradient_scale=1.0))


def test_unrolled_steps_count_one_over_k(connect4_buffer):
    """The reward head only sees unrolled steps: its gradient is exactly 1/K of the unscaled
    one; a loss only at step 0 (value, policy) keeps its full gradient; forward values equal."""
    trainer, _ = tiny_trainer()
    net = trainer.net
    batch = tensors(connect4_buffer.sample(6, np.random.default_rng(2)))
    K = batch["actions"].shape[1]

    def grads(batch, **kw):
        net.zero_grad()
        loss, _ = unrolled_loss(net, batch, **kw)
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in net.named_parameters()
                               if p.grad is not None}

    loss_k, g_k = grads(batch)
    loss_1, g_1 = grads(batch, step_gradient_scale=1.0)
    assert loss_k == pytest.approx(loss_1.item(), rel=1e-6)
    reward_params = [n for n in g_k if n.startswith("reward_head.")]
    assert reward_params
    for n in reward_params:
        assert g_1[n].abs().max() > 0
        torch.testing.assert_close(g_k[n], g_1[n] / K, rtol=1e-4, atol=1e-8)
    step0 = {**batch, "value_mask": batch["value_mask"] * torch.tensor([1.0] + [0.0] * K),
             "policy": batch["policy"] * torch.tensor([1.0] + [0.0] * K)[:, None]}
    _, h_k = grads(step0, reward_loss_weight=0.0)
    _, h_1 = grads(step0, reward_loss_weight=0.0, step_gradient_scale=1.0)
    for n in ("value_head.6.weight", "policy_head.4.weight"):
        assert h_k[n].abs().max() > 0
        torch.testing.assert_close(h_k[n], h_1[n])


@pytest.mark.parametrize("head", ["scalar", "categorical"])
def test_a_tiny_net_overfits_a_few_connect4_windows(connect4_buffer, head):
    trainer, _ = tiny_trainer(f"muzero.value_head={head}", "muzero.support_size=5",
                              "train.lr=0.01", "train.weight_decay=0", "train.grad_clip_norm=null")
    assert sum(p.numel() for p in trainer.net.parameters()) < 10_000
    batch = connect4_buffer.sample(8, np.random.default_rng(3), augment=False)
    first = trainer.train_step(batch)
    for _ in range(150):
        last = trainer.train_step(batch)
    trainer.net.eval()
    # measured: KL 0.44 -> 5e-5, value 1.1 -> 7e-6 (scalar), 2.4 -> 5e-5 (categorical)
    assert last["policy_kl"] < 0.01 * first["policy_kl"], (first, last)
    assert last["value_loss"] < 0.01 * first["value_loss"], (first, last)
    assert last["reward_loss"] < 0.05 * first["reward_loss"], (first, last)


def test_the_consistency_loss_trains_the_dynamics_towards_the_next_representation(
        connect4_buffer):
    trainer, config = tiny_trainer("muzero.consistency_loss_weight=1.0", "muzero.projection_dim=16",
                                   "train.lr=0.01")
    with pytest.raises(ValueError, match="future_obs"):
        trainer.train_step(connect4_buffer.sample(4, np.random.default_rng(0)))
    batch = connect4_buffer.sample(8, np.random.default_rng(4), future_observations=True)
    first = trainer.train_step(batch)
    for _ in range(40):
        last = trainer.train_step(batch)
    assert -1.0 <= first["consistency_loss"] <= 1.0
    assert last["consistency_loss"] < first["consistency_loss"] - 0.2, (first, last)
    mean = trainer.train_steps(connect4_buffer, 2, np.random.default_rng(5))
    assert np.isfinite(mean["consistency_loss"]) and trainer.step == 43
    # the term, by its definition: step k's predicted latent against h(observation at t + k)
    net = trainer.net.eval()
    b = tensors(connect4_buffer.sample(6, np.random.default_rng(6), future_observations=True))
    with torch.no_grad():
        _, stats = unrolled_loss(net, b, consistency_loss_weight=1.0)
        outs = unroll(net, b["obs"], b["actions"])
        expected = 0.0
        for k in range(1, len(outs)):
            online = net.project(outs[k].latent, with_predictor=True)
            target = net.project(net.representation(b["future_obs"][:, k - 1]),
                                 with_predictor=False)
            cos = torch.nn.functional.cosine_similarity(online, target, dim=-1)
            expected -= (cos * b["inside_mask"][:, k]).mean().item()
    assert stats["consistency_loss"].item() == pytest.approx(expected / (len(outs) - 1), abs=1e-5)


CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    import torch
    from azero.config import load_config
    from azero.games import make
    from azero.muzero.replay import TrajectoryBuffer
    from azero.muzero.train import MuZeroTrainer
    from azero.nets.muzero import MuZeroNet

    traj, path, freeze_at, until = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    config = load_config("connect4_tiny", sys.argv[5:])
    torch.set_num_threads(config.train.threads)
    game = make("connect4")
    if path.exists():
        trainer = MuZeroTrainer.from_checkpoint(path, config, "cpu")
        print("resumed", trainer.step, flush=True)
    else:
        trainer = MuZeroTrainer.create(config, game, "cpu")
    buffer = TrajectoryBuffer(traj, game, 10_000, config.muzero.unroll_steps)
    buffer.refresh()
    original, calls = MuZeroNet.recurrent_inference, [0]

    def recurrent(self, latent, actions):
        if trainer.step == freeze_at:
            calls[0] += 1
            if calls[0] == 2:                  # inside the unroll of step freeze_at
                (path.parent / "mid-unroll").write_text(str(trainer.step))
                time.sleep(120)
        return original(self, latent, actions)

    MuZeroNet.recurrent_inference = recurrent
    rng = np.random.default_rng(trainer.step)
    while trainer.step < until:
        trainer.train_step(buffer.sample(config.train.batch_size, rng))
        trainer.save(path)
    print("done", trainer.step, buffer.games_seen, flush=True)
""")


def test_a_trainer_killed_mid_unroll_resumes_from_its_checkpoint_and_the_shards(tmp_path):
    traj = tmp_path / "trajectories"
    game, games = random_connect4_games(4, np.random.default_rng(11))
    write(traj, games, per_shard=2)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    path = tmp_path / "trainer.pt"
    args = [str(traj), str(path)]
    overrides = TINY + TRAIN + ["muzero.unroll_steps=3"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(script), *args, "3", "10", *overrides],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while not (tmp_path / "mid-unroll").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)                 # mid-unroll of the 4th step
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = ckpt.load(path, expected_game="connect4")
    assert saved.step == 3 and saved.algorithm == "muzero"
    assert saved.optimizer_state is not None
    (tmp_path / "mid-unroll").unlink()
    done = subprocess.run([sys.executable, str(script), *args, "-1", "6", *overrides],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["resumed", "3", "done", "6", "4"]
    final = ckpt.load(path)
    assert final.step == 6 and final.trainer_state["samples_trained"] == 6 * 8
    # the resumed optimizer went on from the saved moments: Adam's step count is 6, not 3
    steps = {int(s["step"]) for s in final.optimizer_state["state"].values()}
    assert steps == {6}
    assert not list(tmp_path.glob(".*.tmp"))
