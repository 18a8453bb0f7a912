import os
import pickle
import warnings

import numpy as np
import pytest
import torch

from fake_games import DropThree
from azero import checkpoint as ckpt
from azero.checkpoint import CheckpointError
from azero.config import load_config
from azero.nets import make_net
from azero.train import Trainer


@pytest.fixture
def config():
    return load_config("connect4_tiny", ["game=dropthree", "model.blocks=1", "model.channels=8"])


@pytest.fixture
def saved(tmp_path, config):
    torch.manual_seed(0)
    trainer = Trainer(make_net(DropThree().spec, config.model), config, "cpu")
    rng = np.random.default_rng(0)
    batch = (rng.random((16, 3, 3, 4), np.float32), np.full((16, 4), 0.25, np.float32),
             rng.choice([-1.0, 1.0], 16).astype(np.float32))
    trainer.train_step(batch)          # non-trivial optimizer state and BN statistics
    path = trainer.save(tmp_path / "a.pt", metadata={"elo": np.float64(12.5), "note": "hi"})
    return path, trainer


def test_round_trip_with_weights_only_gives_identical_outputs(saved, config):
    path, trainer = saved
    raw = torch.load(path, weights_only=True)           # plain data: loadable without trust
    assert raw["format_version"] == ckpt.FORMAT_VERSION and raw["game"] == "dropthree"
    assert raw["config"] == config.to_dict()
    c = ckpt.load(path, expected_game="dropthree")
    assert c.step == 1 and c.architecture == trainer.net.architecture
    assert c.metadata["elo"] == 12.5 and c.metadata["note"] == "hi"
    x = torch.randn(7, 3, 3, 4)
    trainer.net.eval()
    with torch.no_grad():
        for a, b in zip(trainer.net(x), c.model(x)):
            assert torch.equal(a, b)


def test_trainer_resumes_step_optimizer_and_schedule(saved, config):
    path, trainer = saved
    resumed = Trainer.from_checkpoint(path, config, "cpu")
    assert resumed.step == trainer.step == 1
    a, b = trainer.optimizer.state_dict(), resumed.optimizer.state_dict()
    for k in a["state"]:
        for name, t in a["state"][k].items():
            assert torch.equal(torch.as_tensor(t), torch.as_tensor(b["state"][k][name]))
    # the same next step on both gives the same weights
    rng = np.random.default_rng(5)
    batch = (rng.random((16, 3, 3, 4), np.float32), np.full((16, 4), 0.25, np.float32),
             np.ones(16, np.float32))
    la, lb = trainer.train_step(batch), resumed.train_step(batch)
    assert la["lr"] == lb["lr"]
    for p, q in zip(trainer.net.parameters(), resumed.net.parameters()):
        torch.testing.assert_close(p, q)


def _expect(path, match, **kw):
    before = path.read_bytes() if path.is_file() else None
    with pytest.raises(CheckpointError, match=match) as e:
        ckpt.load(path, **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    if before is not None:
        assert path.read_bytes() == before        # never touched
    return msg


def test_missing_file(tmp_path):
    _expect(tmp_path / "nope.pt", "no such file")


def test_truncated_file(saved):
    path, _ = saved
    data = path.read_bytes()
    for cut in (len(data) // 2, 100, 0):
        bad = path.with_name(f"cut{cut}.pt")
        bad.write_bytes(data[:cut])
        _expect(bad, "truncated or corrupt")


def test_random_bytes(tmp_path):
    p = tmp_path / "junk.pt"
    p.write_bytes(np.random.default_rng(0).bytes(5000))
    _expect(p, "corrupt")


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + str(Evil.marker),))


@pytest.mark.parametrize("name, writer, match", [
    ("zip.pt", lambda obj, f: torch.save(obj, f), r"refused: it pickles \S*system"),
    ("legacy2.pt", lambda obj, f: pickle.dump(obj, f, protocol=2), r"refused: it pickles \S*system"),
    # protocol 4 framing is beyond the weights_only unpickler: refused as unreadable
    ("legacy4.pt", lambda obj, f: pickle.dump(obj, f, protocol=4), "cannot read"),
])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, name, writer, match):
    Evil.marker = tmp_path / "pwned"
    p = tmp_path / name
    with open(p, "wb") as f:
        writer({"format": "azero-checkpoint", "format_version": 1, "x": Evil()}, f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # torch warns about the protocol 4 legacy pickle
        _expect(p, match)
    assert not Evil.marker.exists()


def test_not_an_azero_checkpoint(tmp_path):
    p = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(3)}}, p)
    _expect(p, "not an azero checkpoint")
    torch.save([1, 2, 3], p)
    _expect(p, "not an azero checkpoint")


def test_format_from_the_future(saved, tmp_path):
    path, _ = saved
    raw = torch.load(path, weights_only=True)
    raw["format_version"] = ckpt.FORMAT_VERSION + 1
    p = tmp_path / "future.pt"
    torch.save(raw, p)
    _expect(p, f"format version {ckpt.FORMAT_VERSION + 1} is newer")


def test_other_game(saved):
    path, _ = saved
    msg = _expect(path, "is for dropthree, not connect4", expected_game="connect4")
    assert msg == f"checkpoint {path} is for dropthree, not connect4"


def test_architecture_mismatch(saved, tmp_path):
    path, trainer = saved
    _expect(path, "architecture mismatch.*channels",
            expected_architecture={**trainer.net.architecture, "channels": 16})
    raw = torch.load(path, weights_only=True)
    raw["architecture"]["channels"] = 16        # weights no longer fit the stored architecture
    p = tmp_path / "mismatch.pt"
    torch.save(raw, p)
    _expect(p, "architecture mismatch")


def test_failed_save_leaves_the_old_file_untouched(saved):
    path, trainer = saved
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="not plain data"):
        ckpt.save(path, trainer.net, step=9, game_name="dropthree", metadata={"f": lambda: 0})
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []
