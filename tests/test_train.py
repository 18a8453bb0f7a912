import math

import numpy as np
import pytest
import torch

from fake_games import DropThree, random_games
from azero.config import load_config
from azero.replay import ReplayBuffer, ShardWriter
from azero.train import Trainer, learning_rate, ownership_kl, policy_cross_entropy


# one torch thread (conftest.one_torch_thread): tiny nets on a shared 2-core box
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(*overrides):
    return load_config("connect4_tiny", ["game=dropthree", "model.blocks=1", "model.channels=16",
                                         "model.value_hidden=16", *overrides])


def _fixed_batch(n=32, seed=0):
    game = DropThree()
    rows = []
    for states, policy, value in random_games(game, 12, np.random.default_rng(seed)):
        rows += list(zip(states, policy, value))
    rows = rows[:n]
    states = np.array([r[0] for r in rows])
    # sharp, learnable targets: a fixed preferred legal column per position
    mask = game.legal_mask(states)
    rng = np.random.default_rng(seed)
    policy = np.zeros_like(mask, np.float32)
    for i, m in enumerate(mask):
        policy[i, rng.choice(np.flatnonzero(m))] = 1.0
    value = np.array([r[2] for r in rows], np.float32)
    return game.observation(states), policy, value


@pytest.mark.parametrize("optimizer, lr", [("adamw", 3e-3), ("sgd", 0.05)])
def test_loss_falls_when_overfitting_a_fixed_batch(optimizer, lr):
    torch.manual_seed(0)
    trainer = Trainer.create(_config(f"train.optimizer={optimizer}", f"train.lr={lr}",
                                     "train.lr_schedule=constant", "train.warmup_steps=0"),
                             DropThree(), "cpu")
    batch = _fixed_batch()
    first = trainer.train_step(batch)
    for _ in range(100):
        last = trainer.train_step(batch)
    assert trainer.step == 101 and trainer.samples_trained == 101 * 32
    assert last["policy_loss"] < 0.3 * first["policy_loss"], (first, last)
    assert last["value_loss"] < 0.3 * first["value_loss"], (first, last)
    assert last["policy_kl"] == pytest.approx(last["policy_loss"], abs=1e-5)   # one-hot targets
    assert all(math.isfinite(v) for v in last.values())


def test_policy_loss_is_finite_with_minus_inf_logits_on_zero_targets():
    logits = torch.tensor([[0.0, -math.inf, 1.0], [2.0, 0.0, -math.inf]])
    target = torch.tensor([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])
    loss = policy_cross_entropy(logits, target)
    expected = -(0.5 * math.log(1 / (1 + math.e)) + 0.5 * math.log(math.e / (1 + math.e))
                 + math.log(math.e ** 2 / (math.e ** 2 + 1))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_steps_owed_keeps_the_samples_per_position_ratio():
    cfg = _config("train.batch_size=16", "train.train_samples_per_position=2.0",
                  "replay.min_positions_to_train=100")
    trainer = Trainer.create(cfg, DropThree(), "cpu")
    assert trainer.steps_owed(99) == 0                     # not enough data yet
    assert trainer.steps_owed(100) == 12                   # floor(100 * 2 / 16)
    batch = _fixed_batch(16)
    for _ in range(5):
        trainer.train_step(batch)
    assert trainer.steps_owed(100) == 7                    # owed minus taken
    assert trainer.steps_owed(200) == 20
    for _ in range(25):
        trainer.train_step(batch)
    assert trainer.steps_owed(200) == 0                    # ahead of self-play: wait
    # over a run, samples drawn / positions generated -> the configured ratio
    positions = 0
    for generated in (150, 77, 300, 233):
        positions += generated
        for _ in range(trainer.steps_owed(positions)):
            trainer.train_step(batch)
    assert abs(trainer.samples_trained - 2.0 * positions) < 16


def test_learning_rate_schedules():
    cos = _config("train.lr=1.0", "train.lr_schedule=cosine", "train.warmup_steps=10",
                  "train.total_steps=110", "train.lr_final_fraction=0.1").train
    assert learning_rate(0, cos) == pytest.approx(0.1) and learning_rate(9, cos) == pytest.approx(1.0)
    assert learning_rate(10, cos) == pytest.approx(1.0)
    assert learning_rate(60, cos) == pytest.approx(0.55)
    assert learning_rate(110, cos) == pytest.approx(0.1) and learning_rate(10**6, cos) == pytest.approx(0.1)
    step = _config("train.lr=1.0", "train.lr_schedule=step", "train.warmup_steps=0",
                   "train.lr_milestones=[5, 8]", "train.lr_gamma=0.5").train
    assert [learning_rate(s, step) for s in (0, 4, 5, 7, 8, 100)] == [1, 1, 0.5, 0.5, 0.25, 0.25]
    const = _config("train.lr=0.3", "train.lr_schedule=constant", "train.warmup_steps=0").train
    assert learning_rate(12345, const) == pytest.approx(0.3)


def test_weight_decay_spares_batchnorm_and_biases():
    trainer = Trainer.create(_config("train.weight_decay=0.5"), DropThree(), "cpu")
    decayed, spared = trainer.optimizer.param_groups
    assert decayed["weight_decay"] == 0.5 and spared["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim == 1 for p in spared["params"])


def test_train_steps_from_a_replay_buffer(tmp_path):
    game = DropThree()
    writer = ShardWriter(tmp_path, worker=0, games_per_shard=8)
    for g in random_games(game, 8, np.random.default_rng(0)):
        writer.add_game(*g)
    buf = ReplayBuffer(tmp_path, game, 1000)
    buf.refresh()
    trainer = Trainer.create(_config(), game, "cpu")
    losses = trainer.train_steps(buf, 3, np.random.default_rng(0))
    assert trainer.step == 3 and set(losses) >= {"loss", "policy_loss", "value_loss", "lr"}


def test_resume_restores_the_lr_schedule_position(tmp_path):
    cfg = _config("train.warmup_steps=100", "train.lr=1.0")
    trainer = Trainer.create(cfg, DropThree(), "cpu")
    batch = _fixed_batch(8)
    for _ in range(7):
        trainer.train_step(batch)
    trainer.save(tmp_path / "c.pt")
    resumed = Trainer.from_checkpoint(tmp_path / "c.pt", cfg, "cpu")
    assert resumed.step == 7 and resumed.samples_trained == 56
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(learning_rate(7, cfg.train))
    assert resumed.steps_owed(10_000) == trainer.steps_owed(10_000)


def _go9_batch(n=32, seed=0):
    """Random go9 positions with their (current-board) ownership as targets: all three values
    occur (neutral points on crowded random boards)."""
    from azero.games import make
    game = make("go9")
    rng = np.random.default_rng(seed)
    s = game.initial_states(n)
    for _ in range(int(rng.integers(20, 40))):
        mask = game.legal_mask(s)
        mask[:, 81] = False                                  # no passes: games go on
        s = game.step(s, np.array([rng.choice(np.flatnonzero(m)) for m in mask]))
    mask = game.legal_mask(s)
    policy = (mask / mask.sum(1, keepdims=True)).astype(np.float32)
    ownership = game.ownership(s).astype(np.float32)
    assert set(np.unique(ownership)) == {-1.0, 0.0, 1.0}
    return game, (game.observation(s), policy, rng.choice([-1.0, 1.0], n).astype(np.float32),
                  ownership)


def test_ownership_loss_falls_when_overfitting():
    game, batch = _go9_batch()
    torch.manual_seed(0)
    cfg = load_config("go9_tiny", ["model.blocks=1", "model.channels=16", "train.lr=3e-3",
                                   "train.lr_schedule=constant", "train.warmup_steps=0"])
    trainer = Trainer.create(cfg, game, "cpu")
    assert trainer.net.ownership_head is not None
    first = trainer.train_step(batch)
    for _ in range(60):
        last = trainer.train_step(batch)
    assert last["ownership_loss"] < 0.25 * first["ownership_loss"], (first, last)
    assert last["loss"] < first["loss"] and math.isfinite(last["loss"])
    # Without targets (a game or window without them) the head is simply not trained.
    assert "ownership_loss" not in trainer.train_step((*batch[:3], None))
    assert "ownership_loss" not in trainer.train_step(batch[:3])


def test_ownership_kl_is_the_cross_entropy_of_the_tanh_head_and_never_stuck():
    z = torch.tensor([[0.0, 3.0, -3.0, 0.4]], requires_grad=True)
    t = torch.tensor([[0.0, 1.0, 1.0, -1.0]])
    loss = ownership_kl(z, t)
    p = (1 + torch.tanh(z.detach())) / 2                     # P(the side to move owns it)
    q = (1 + t) / 2
    bce = -(q * p.log() + (1 - q) * (1 - p).log())
    entropy = torch.tensor([[math.log(2), 0, 0, 0]])
    assert loss.item() == pytest.approx((bce - entropy).mean().item(), rel=1e-5)
    learnt = [ownership_kl(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)),    # neutral: o = 0
              ownership_kl(torch.full((1, 2), 20.0), torch.ones(1, 2))]     # owned: o -> 1
    assert [x.item() for x in learnt] == pytest.approx([0, 0], abs=1e-7)
    loss.backward()
    # d/dz = 2 (p - q) / points: confidently wrong (z = -3, t = +1) still pulls hard, where MSE
    # on tanh would give (o - t)(1 - o^2) ~ 0.02.
    np.testing.assert_allclose(z.grad.numpy(), (2 * (p - q) / 4).numpy(), atol=1e-6)
    assert abs(z.grad[0, 2].item()) > 0.45


def test_weighted_ownership_loss_ignores_weight_0_rows():
    torch.manual_seed(0)
    z = torch.randn(4, 3, 3)
    t = torch.randint(-1, 2, (4, 3, 3)).float()
    w = torch.tensor([1.0, 0.0, 1.0, 0.0])
    manual = (ownership_kl(z[0:1], t[0:1]) + ownership_kl(z[2:3], t[2:3])) / 2
    assert ownership_kl(z, t, w).item() == pytest.approx(manual.item(), rel=1e-6)
    # whatever the weight-0 rows hold (even non-finite logits) does not matter
    z2, t2 = z.clone(), t.clone()
    z2[1], t2[3] = float("nan"), 1.0
    assert ownership_kl(z2, t2, w).item() == pytest.approx(manual.item(), rel=1e-6)
    assert ownership_kl(z, t, torch.zeros(4)).item() == 0.0
    assert ownership_kl(z, t, torch.ones(4)).item() == pytest.approx(ownership_kl(z, t).item())


def test_train_step_uses_the_ownership_weights():
    game, batch = _go9_batch(n=8)
    # fp32 (no bf16 autocast): the loss is compared with an fp32 forward pass
    cfg = load_config("go9_tiny", ["model.blocks=1", "model.channels=16", "train.amp=false"])
    torch.manual_seed(0)
    trainer = Trainer.create(cfg, game, "cpu")
    w = np.array([1, 0, 1, 0, 0, 1, 0, 0], np.float32)
    with torch.no_grad():
        trainer.net.train()                 # batch-norm statistics as in the step
        _, _, z = trainer.net.forward_all(torch.as_tensor(batch[0]), ownership_logits=True)
    own = torch.as_tensor(batch[3])
    expected = ownership_kl(z[w == 1], own[w == 1]).item()
    stats = trainer.train_step((*batch, w))
    assert stats["ownership_loss"] == pytest.approx(expected, rel=1e-4)
    assert trainer.train_step((*batch, np.zeros(8, np.float32)))["ownership_loss"] == 0.0


def test_training_autocasts_to_bf16_only_where_the_device_computes_it(monkeypatch):
    """train.amp: bf16 autocast on a CPU with native bf16 (the step's activations are bf16, the
    weights stay fp32), fp32 on other CPUs and with amp off."""
    import torch
    from azero.nets import runtime
    seen = []
    for native, amp in ((True, True), (False, True), (True, False)):
        monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda native=native: native)
        trainer = Trainer.create(_config(f"train.amp={str(amp).lower()}"), DropThree(), "cpu")
        with trainer._autocast():
            x = torch.zeros(2, *DropThree().spec.observation_shape)
            logits, _ = trainer.net(x.contiguous(memory_format=torch.channels_last))
        seen.append(logits.dtype)
        assert all(p.dtype == torch.float32 for p in trainer.net.parameters())
    assert seen == [torch.bfloat16, torch.float32, torch.float32]
