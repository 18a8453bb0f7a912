import numpy as np
import pytest
import torch

from fake_games import DropThree, random_games
from azero.config import ModelConfig
from azero.nets import (PolicyValueNet, build_net, make_evaluator, make_net, resolve_device,
                        set_torch_threads)

SMALL = ModelConfig(blocks=2, channels=8, value_hidden=8)


def test_shapes_for_the_fake_game():
    game = DropThree()
    net = make_net(game.spec, SMALL).eval()
    logits, value = net(torch.zeros(5, *game.spec.observation_shape))
    assert logits.shape == (5, 4) and value.shape == (5,)
    assert torch.all(value.abs() <= 1)


def test_shapes_for_connect4():
    from azero import games
    game = games.make("connect4")
    net = make_net(game.spec, SMALL).eval()
    states = game.initial_states(3)
    logits, value = make_evaluator(net, game, "cpu")(states)
    assert logits.shape == (3, game.spec.num_actions) == (3, 7) and value.shape == (3,)


def test_ownership_head_is_optional_and_per_point():
    net = PolicyValueNet((3, 3, 4), 4, blocks=1, channels=8, ownership=True).eval()
    logits, value, own = net.forward_all(torch.randn(2, 3, 3, 4))
    assert own.shape == (2, 3, 4) and torch.all(own.abs() <= 1)
    assert len(net(torch.randn(2, 3, 3, 4))) == 2          # forward stays (logits, value)
    assert make_net(DropThree().spec, SMALL).ownership_head is None


def test_build_net_round_trips_the_architecture():
    net = make_net(DropThree().spec, SMALL)
    again = build_net(net.architecture)
    assert again.architecture == net.architecture
    assert again.state_dict().keys() == net.state_dict().keys()
    with pytest.raises(ValueError, match="unknown network kind"):
        build_net({**net.architecture, "kind": "transformer"})
    with pytest.raises(ValueError, match="bad architecture"):
        build_net({**net.architecture, "widgets": 3})


def test_evaluator_numpy_in_numpy_out_and_matches_the_net():
    game = DropThree()
    torch.manual_seed(0)
    net = make_net(game.spec, SMALL)
    net.train()  # the evaluator must use eval mode (BN running stats) and then restore the mode
    (states, _, _), = random_games(game, 1, np.random.default_rng(1))
    evaluate = make_evaluator(net, game, "cpu", max_batch=2)
    logits, values = evaluate(states)
    assert net.training
    assert isinstance(logits, np.ndarray) and logits.dtype == np.float32
    assert logits.shape == (len(states), 4) and values.shape == (len(states),)
    assert values.dtype == np.float32
    net.eval()
    with torch.no_grad():
        ref_logits, ref_values = net(torch.from_numpy(game.observation(states)))
    np.testing.assert_allclose(logits, ref_logits.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values, ref_values.numpy(), rtol=1e-5, atol=1e-6)
    # one row at a time gives the same answers (no batch statistics leak in)
    one = np.concatenate([evaluate(states[i:i + 1])[0] for i in range(len(states))])
    np.testing.assert_allclose(one, logits, rtol=1e-5, atol=1e-6)
    empty_logits, empty_values = evaluate(states[:0])
    assert empty_logits.shape == (0, 4) and empty_values.shape == (0,)


def test_resolve_device_and_threads():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(1) == 1
        assert set_torch_threads(processes=1000) == 1
    finally:
        torch.set_num_threads(before)


def _trained_looking(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random BatchNorm statistics and affine weights (a fresh net's are 0/1, which would hide a
    wrong fold) and random weights elsewhere."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g))
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=g))
                m.bias.copy_(torch.randn(m.num_features, generator=g))
    return net.eval()


def test_fold_batchnorm_is_the_same_function_without_batchnorm():
    from azero.games import make
    from azero.nets.resnet import fold_batchnorm
    game = make("go9")
    net = _trained_looking(PolicyValueNet(game.spec.observation_shape, game.spec.num_actions,
                                          blocks=2, channels=16, ownership=True))
    fused = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())   # original intact
    x = torch.randn(5, *game.spec.observation_shape)
    with torch.no_grad():
        for got, want in zip(fused.forward_all(x), net.forward_all(x)):
            assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()


def test_fold_batchnorm_folds_pairs_in_nested_sequentials():
    """resnet.fold_batchnorm on any module: a Conv2d-BatchNorm2d pair inside a Sequential inside
    another is folded too, and the function stays the same."""
    from azero.nets.resnet import fold_batchnorm
    net = _trained_looking(torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1, bias=False),
                            torch.nn.BatchNorm2d(4)),
        torch.nn.ReLU(), torch.nn.Conv2d(4, 4, 1), torch.nn.BatchNorm2d(4)), seed=2)
    holder = torch.nn.Module()
    holder.body = net
    fused = fold_batchnorm(holder)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = torch.randn(2, 3, 5, 5)
    with torch.no_grad():
        assert torch.allclose(fused.body(x), net(x), atol=1e-4)


def test_snapshot_evaluator_matches_and_keeps_the_weights_it_was_made_with():
    from azero.games import make
    game = make("connect4")
    net = _trained_looking(PolicyValueNet(game.spec.observation_shape, game.spec.num_actions,
                                          blocks=2, channels=16), seed=1)
    states = game.initial_states(1)
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(12):                                   # positions along a random game
        legal = np.flatnonzero(game.legal_mask(states)[0])
        states = game.step(states, np.array([rng.choice(legal)]))
        rows.append(states[0])
    states = np.stack(rows)
    plain = make_evaluator(net, game, "cpu")
    snap = make_evaluator(net, game, "cpu", snapshot=True, precision="fp32")
    first = plain(states)
    for a, b in zip(first, snap(states)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    with torch.no_grad():                                 # new weights: only `plain` sees them
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    changed = plain(states)
    assert not np.allclose(changed[0], first[0], atol=1e-2)
    for a, b in zip(first, snap(states)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    for a, b in zip(changed, make_evaluator(net, game, "cpu", snapshot=True, precision="fp32")(states)):
        np.testing.assert_allclose(a, b, atol=1e-4)



def test_inference_precision_follows_the_cpu_the_argument_and_the_environment(monkeypatch):
    from azero.nets import runtime
    cpu = torch.device("cpu")
    monkeypatch.delenv(runtime.PRECISION_ENV, raising=False)
    for native, want in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda native=native: native)
        assert runtime.inference_weight_dtype(cpu) == want
        assert runtime.inference_weight_dtype(cpu, "fp32") == torch.float32
        assert runtime.inference_weight_dtype(cpu, "bf16") == torch.bfloat16
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setenv(runtime.PRECISION_ENV, "fp32")
    assert runtime.inference_weight_dtype(cpu) == torch.float32
    assert runtime.inference_weight_dtype(cpu, "bf16") == torch.bfloat16   # the argument wins
    monkeypatch.setenv(runtime.PRECISION_ENV, "half")
    with pytest.raises(ValueError, match="AZERO_INFERENCE_PRECISION.*auto, fp32, bf16"):
        runtime.inference_weight_dtype(cpu)


def test_a_gpu_snapshot_keeps_bf16_weights_instead_of_autocasting_every_call(monkeypatch):
    """Issue 14: on a GPU with bf16 the snapshot's weights are a bf16 copy that runs without
    autocast; a GPU without bf16 keeps fp32 weights under fp16 autocast; fp32 on request."""
    from azero.nets import runtime
    cuda = torch.device("cuda")
    monkeypatch.delenv(runtime.PRECISION_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert runtime.inference_weight_dtype(cuda) == torch.bfloat16
    assert runtime.inference_weight_dtype(cuda, "bf16") == torch.bfloat16
    assert runtime.inference_weight_dtype(cuda, "fp32") == torch.float32
    assert runtime.snapshot_autocast_dtype(cuda, torch.bfloat16) is None
    assert runtime.snapshot_autocast_dtype(cuda, torch.float32) == torch.bfloat16
    assert runtime.snapshot_autocast_dtype(cuda, torch.float32, amp=False) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert runtime.inference_weight_dtype(cuda) == torch.float32
    assert runtime.inference_weight_dtype(cuda, "bf16") == torch.float32
    assert runtime.snapshot_autocast_dtype(cuda, torch.float32) == torch.float16
    assert runtime.inference_weight_dtype(torch.device("mps")) == torch.float32


def test_bf16_snapshot_evaluates_in_bf16_and_stays_close_to_fp32():
    """A bf16 snapshot computes in bf16 (its outputs differ from fp32's, by little) and returns
    float32; amp=False keeps a snapshot in fp32 whatever the precision."""
    from azero.games import make
    game = make("connect4")
    net = _trained_looking(PolicyValueNet(game.spec.observation_shape, game.spec.num_actions,
                                          blocks=2, channels=16), seed=2)
    states = game.initial_states(16)
    rng = np.random.default_rng(1)
    for _ in range(6):
        legal = game.legal_mask(states)
        states = game.step(states, np.array([rng.choice(np.flatnonzero(r)) for r in legal]))
    fp32 = make_evaluator(net, game, "cpu", snapshot=True, precision="fp32")(states)
    bf16 = make_evaluator(net, game, "cpu", snapshot=True, precision="bf16")(states)
    off = make_evaluator(net, game, "cpu", snapshot=True, precision="bf16", amp=False)(states)
    for a, b, c in zip(fp32, bf16, off):
        assert b.dtype == np.float32
        assert not np.array_equal(a, b)                   # bf16 arithmetic, not fp32
        np.testing.assert_allclose(a, b, atol=0.1)        # bf16 keeps ~3 significant digits
        np.testing.assert_allclose(a, c, atol=1e-4)
    assert (np.argmax(fp32[0], 1) == np.argmax(bf16[0], 1)).mean() >= 0.9
