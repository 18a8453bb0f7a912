"""MuZero networks: shapes, min-max scaled latents, the categorical support, rebuild from the
architecture dict and checkpoints that record their algorithm."""
import numpy as np
import pytest
import torch

from azero import checkpoint as ckpt
from azero.config import load_config
from azero.games import make
from azero.muzero.support import Support, h, h_inverse
from azero.nets import MuZeroNet, build_net, make_muzero_net

TINY = ["muzero.latent_channels=4", "muzero.representation_blocks=1", "muzero.dynamics_blocks=1",
        "muzero.prediction_blocks=1", "muzero.reward_hidden=8", "model.value_hidden=8"]


def tiny_net(*overrides, game="connect4"):
    config = load_config("connect4_tiny", TINY + list(overrides))
    torch.manual_seed(0)
    return make_muzero_net(make(game).spec, config.model, config.muzero), config


@pytest.mark.parametrize("head", ["scalar", "categorical"])
def test_inference_shapes_ranges_and_latent_scaling(head):
    net, _ = tiny_net(f"muzero.value_head={head}", "muzero.support_size=5")
    net.eval()
    assert sum(p.numel() for p in net.parameters()) < 10_000
    obs = torch.randn(6, 3, 6, 7)
    with torch.no_grad():
        first = net.initial_inference(obs)
        nxt = net.recurrent_inference(first.latent, torch.tensor([0, 1, 2, 3, 4, 6]))
    for out in (first, nxt):
        assert out.latent.shape == (6, 4, 6, 7)
        flat = out.latent.flatten(1)
        # min-max scaled per sample: every sample spans exactly [0, 1]
        torch.testing.assert_close(flat.min(1).values, torch.zeros(6))
        torch.testing.assert_close(flat.max(1).values, torch.ones(6))
        assert out.policy_logits.shape == (6, 7) and out.value.shape == (6,)
        assert out.reward.shape == (6,)
        assert (out.value.abs() <= 1.0 + 1e-5).all()
    assert (first.reward == 0).all() and first.reward_logits is None
    if head == "categorical":
        assert first.value_logits.shape == (6, 11) and nxt.reward_logits.shape == (6, 11)
        torch.testing.assert_close(nxt.value, net.support.logits_to_scalar(nxt.value_logits))
    else:
        assert first.value_logits is None and nxt.reward_logits is None
    # the action matters: another action from the same latent gives another next latent
    with torch.no_grad():
        other = net.recurrent_inference(first.latent, torch.tensor([1, 1, 2, 3, 4, 6]))
    assert not torch.allclose(other.latent[0], nxt.latent[0])
    torch.testing.assert_close(other.latent[1:], nxt.latent[1:])


def test_bad_actions_are_refused():
    net, _ = tiny_net()
    latent = net.initial_inference(torch.zeros(2, 3, 6, 7)).latent
    with pytest.raises(ValueError, match=r"\[0, 7\)"):
        net.recurrent_inference(latent, torch.tensor([0, 7]))
    with pytest.raises(ValueError, match="shape"):
        net.recurrent_inference(latent, torch.tensor([0]))


def test_support_transform_is_invertible_and_two_hot_is_exact():
    x = torch.tensor([-300.0, -7.5, -1.0, -0.3, 0.0, 0.01, 0.5, 1.0, 42.0])
    torch.testing.assert_close(h_inverse(h(x)), x, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h(torch.tensor(3.0)), torch.tensor(1.0 + 0.003))
    support = Support(4, 1.0)
    values = torch.linspace(-1, 1, 23)
    probs = support.scalar_to_probs(values)
    assert probs.shape == (23, 9)
    torch.testing.assert_close(probs.sum(-1), torch.ones(23))
    assert ((probs > 0).sum(-1) <= 2).all()                     # two-hot
    torch.testing.assert_close((probs * support.points).sum(-1), h(values))
    # logits = log(two-hot) decode back to the value; out of range clips to max_value
    decoded = support.logits_to_scalar(torch.log(probs.clamp_min(1e-30)))
    torch.testing.assert_close(decoded, values, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(support.logits_to_scalar(
        torch.log(support.scalar_to_probs(torch.tensor([5.0])).clamp_min(1e-30))),
        torch.tensor([1.0]), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        Support(0, 1.0)


def test_build_net_rebuilds_from_the_architecture_dict_and_checkpoints_record_muzero(tmp_path):
    net, config = tiny_net("muzero.value_head=categorical")
    arch = net.architecture
    assert arch["kind"] == "muzero" and arch["value_head"] == "categorical"
    assert arch["projection_dim"] == 0                     # consistency loss off: no projector
    again = build_net(arch)
    assert isinstance(again, MuZeroNet)
    again.load_state_dict(net.state_dict())
    net.eval(), again.eval()
    obs = torch.rand(3, 3, 6, 7)
    with torch.no_grad():
        a, b = net.initial_inference(obs), again.initial_inference(obs)
        torch.testing.assert_close(a.value, b.value)
        torch.testing.assert_close(a.policy_logits, b.policy_logits)
    with pytest.raises(ValueError, match="bad architecture"):
        build_net({**arch, "latent_width": 3})
    path = ckpt.save(tmp_path / "mz.pt", net, step=7, config=config)
    loaded = ckpt.load(path, expected_game="connect4")
    assert loaded.algorithm == "muzero" and isinstance(loaded.model, MuZeroNet)
    assert loaded.architecture == arch
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.recurrent_inference(a.latent, torch.tensor([1, 2, 3])).value,
                                   net.recurrent_inference(a.latent, torch.tensor([1, 2, 3])).value)


@pytest.mark.parametrize("game", ["connect4", "go9"])
def test_the_dynamics_reads_the_games_action_planes_and_checkpoints_keep_them(tmp_path, game):
    spec = make(game).spec
    net, config = tiny_net(game=game)
    P = spec.action_planes.shape[1]
    assert net.architecture["action_planes"] == P and net.action_embedding is None
    assert net.dynamics_entry[0].in_channels == 4 + P
    np.testing.assert_array_equal(net.action_plane_table.numpy(), spec.action_planes)
    # the drawing of the action is what the dynamics sees: two actions, two next latents
    net.eval()
    latent = net.initial_inference(torch.rand(2, *spec.observation_shape)).latent[:1].repeat(2, 1, 1, 1)
    with torch.no_grad():
        nxt = net.recurrent_inference(latent, torch.tensor([0, 1])).latent
    assert not torch.allclose(nxt[0], nxt[1])
    # rebuilt from its checkpoint (the architecture holds only P), the planes come back
    path = ckpt.save(tmp_path / "mz.pt", net, step=1, config=config, game_name=game)
    loaded = ckpt.load(path, expected_game=game).model
    np.testing.assert_array_equal(loaded.action_plane_table.numpy(), spec.action_planes)
    # a learned plane per action on request, and for files from before the game's planes
    learned, _ = tiny_net("muzero.action_encoding=learned", game=game)
    assert learned.architecture["action_planes"] == 0 and learned.action_embedding is not None
    older = {k: v for k, v in learned.architecture.items() if k != "action_planes"}
    assert build_net(older).action_embedding is not None


def test_alphazero_checkpoints_and_older_files_read_as_alphazero(tmp_path):
    from azero.nets import make_net
    config = load_config("connect4_tiny")
    net = make_net(make("connect4").spec, config.model)
    path = ckpt.save(tmp_path / "az.pt", net, config=config)
    assert ckpt.load(path).algorithm == "alphazero"
    payload = torch.load(path, weights_only=True)
    del payload["algorithm"]                                  # a file from before the field
    torch.save(payload, tmp_path / "old.pt")
    assert ckpt.load(tmp_path / "old.pt").algorithm == "alphazero"


def test_consistency_projection_exists_only_when_the_loss_is_on():
    net, _ = tiny_net("muzero.consistency_loss_weight=1.0", "muzero.projection_dim=16")
    assert net.architecture["projection_dim"] == 16
    z = net.project(net.initial_inference(torch.rand(4, 3, 6, 7)).latent, with_predictor=True)
    assert z.shape == (4, 16)
    off, _ = tiny_net()
    with pytest.raises(ValueError, match="projection"):
        off.project(torch.rand(2, 4, 6, 7), with_predictor=False)


@pytest.mark.parametrize("snapshot", [False, True])
def test_the_position_evaluator_takes_a_muzero_net(snapshot):
    """make_evaluator (solver bench, policy-only tools) evaluates h then f of a MuZero net."""
    from azero.nets import make_evaluator
    net, _ = tiny_net("muzero.value_head=categorical")
    game = make("connect4")
    states = game.step(game.initial_states(3), np.array([0, 3, 6]))
    logits, values = make_evaluator(net, game, "cpu", snapshot=snapshot, precision="fp32")(states)
    net.eval()
    with torch.no_grad():
        out = net.initial_inference(torch.from_numpy(game.observation(states)))
    np.testing.assert_allclose(logits, out.policy_logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(values, out.value.numpy(), rtol=1e-4, atol=1e-5)


def test_the_inference_snapshot_folds_batchnorm_and_computes_the_same_functions():
    """resnet.fold_batchnorm of a MuZeroNet (what MuZeroEvaluator's snapshot searches) has no
    BatchNorm2d left and gives the same latents, logits, values and rewards, at the root and
    through the dynamics, with random running statistics (a fresh net's 0/1 would hide a wrong
    fold); the net it was made from keeps its BatchNorms."""
    from test_nets import _trained_looking

    from azero.nets.muzero_evaluator import MuZeroEvaluator
    from azero.nets.resnet import fold_batchnorm
    net, _ = tiny_net("muzero.latent_channels=8", "muzero.dynamics_blocks=2")
    net = _trained_looking(net, seed=3)
    fused = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    game = make("connect4")
    states = game.step(game.initial_states(4), np.array([0, 3, 6, 3]))
    obs = torch.from_numpy(game.observation(states))
    actions = torch.tensor([1, 2, 3, 6])
    with torch.no_grad():
        want, got = net.initial_inference(obs), fused.initial_inference(obs)
        want_next = net.recurrent_inference(want.latent, actions)
        got_next = fused.recurrent_inference(want.latent, actions)
    for a, b in [(got.latent, want.latent), (got.policy_logits, want.policy_logits),
                 (got.value, want.value), *zip(got_next[:4], want_next[:4])]:
        assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
    evaluator = MuZeroEvaluator(net, game, "cpu", snapshot=True, precision="fp32")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in evaluator.net.modules())
    _, rewards, _, logits, values = evaluator.recurrent(want.latent, actions.numpy())
    np.testing.assert_allclose(rewards, want_next.reward.numpy(), atol=1e-4)
    np.testing.assert_allclose(values, want_next.value.numpy(), atol=1e-4)


def test_layer_normalization_is_the_same_function_in_training_and_in_the_search(tmp_path):
    """muzero.normalization layer: no BatchNorm anywhere in the three networks, so a batch of
    unroll step k computes in training what the search computes one position at a time (a
    BatchNorm net does not: the control). Its architecture dict names it and a checkpoint
    rebuilds it; the snapshot evaluator (which folds BatchNorms) leaves it as it is. A BatchNorm
    net's dict has no such key, as before the key existed."""
    from test_nets import _trained_looking

    from azero.nets.muzero_evaluator import MuZeroEvaluator
    game = make("connect4")
    states = game.step(game.initial_states(6), np.array([0, 3, 6, 3, 2, 1]))
    obs = torch.from_numpy(game.observation(states))
    actions = torch.tensor([1, 2, 3, 6, 0, 5])

    def train_and_eval_outputs(net):
        out = []
        for mode in (net.train, net.eval):
            mode()
            with torch.no_grad():
                root = net.initial_inference(obs)
                out.append((root, net.recurrent_inference(root.latent, actions)))
        return out

    batch_net, _ = tiny_net("muzero.latent_channels=8")
    assert "normalization" not in batch_net.architecture
    (_, train_step), (_, eval_step) = train_and_eval_outputs(_trained_looking(batch_net, seed=3))
    assert not torch.allclose(train_step.reward, eval_step.reward, atol=1e-3)

    net, config = tiny_net("muzero.latent_channels=8", "muzero.normalization=layer")
    assert net.architecture["normalization"] == "layer"
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())
    for p in net.parameters():                  # away from the identity start of each block
        torch.nn.init.normal_(p, std=0.3)
    (train_root, train_step), (eval_root, eval_step) = train_and_eval_outputs(net)
    torch.testing.assert_close(train_root.value, eval_root.value)
    torch.testing.assert_close(train_step.reward, eval_step.reward)
    torch.testing.assert_close(train_step.policy_logits, eval_step.policy_logits)
    one = net.recurrent_inference(train_root.latent[:1], actions[:1])   # alone, not in a batch
    torch.testing.assert_close(one.reward, train_step.reward[:1])

    loaded = ckpt.load(ckpt.save(tmp_path / "layer.pt", net, step=1, config=config))
    assert loaded.architecture["normalization"] == "layer"
    evaluator = MuZeroEvaluator(loaded.model, game, "cpu", snapshot=True, precision="fp32")
    latents, _, values = evaluator.initial(states)
    np.testing.assert_allclose(values, eval_root.value.numpy(), atol=1e-5)
    _, rewards, _, _, _ = evaluator.recurrent(latents, actions.numpy())
    np.testing.assert_allclose(rewards, eval_step.reward.numpy(), atol=1e-5)
