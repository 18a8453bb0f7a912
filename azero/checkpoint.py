"""Checkpoints: one file holding everything needed to rebuild and resume a network.

On disk it is `torch.save` of a dict made only of tensors and plain Python values (dict, list,
tuple, str, int, float, bool, None), so it loads with `torch.load(path, weights_only=True)`: opening a
stranger's checkpoint never runs code. Layout (FORMAT_VERSION 1):

    {
      "format": "azero-checkpoint",  "format_version": 1,
      "game": "connect4",            "step": 1234,
      "algorithm": "alphazero",       # or "muzero"; missing (older files) = "alphazero"
      "architecture": {...},          # nets.build_net(architecture) rebuilds the model
      "model": state_dict,            # tensors, on cpu
      "optimizer": state_dict | None, # torch optimizer state (plain types + tensors)
      "trainer": dict | None,         # other resumable trainer state (plain types)
      "config": dict | None,          # Config.to_dict()
      "metadata": dict,               # anything else: created time, azero version, Elo, ...
    }

Writes are atomic (azero.atomic): a crash or an error mid-save leaves any previous file untouched.
Every load problem raises CheckpointError with a one-line message naming the file.
"""
from __future__ import annotations

import os
import pickle
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import __version__
from .atomic import atomic_write_with

FORMAT = "azero-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(Exception):
    """A checkpoint that cannot be written or used; the message names the file and the problem."""


@dataclass
class Checkpoint:
    path: Path
    model: nn.Module                 # rebuilt from `architecture`, weights loaded, in eval mode
    game: str
    step: int
    architecture: dict[str, Any]
    config: dict[str, Any] | None
    optimizer_state: dict[str, Any] | None
    trainer_state: dict[str, Any] | None
    metadata: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    algorithm: str = "alphazero"     # "alphazero" | "muzero"


def _plain(value: Any, where: str) -> Any:
    """Convert to the types weights_only loading accepts (numpy scalars/arrays, paths, config
    dataclasses are converted); anything else is refused before a byte is written."""
    if isinstance(value, np.generic):      # before float: np.float64 subclasses float
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return type(value)(value) if isinstance(value, (bool, int, float, str)) else value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return _plain(value.to_dict(), where)
    if isinstance(value, dict):
        return {_plain(k, f"{where} key"): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise CheckpointError(f"cannot store {where}: {type(value).__name__} is not plain data "
                          "(use str/int/float/bool/None, lists, dicts, tensors)")


def save(path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
         step: int = 0, config: Any = None, game_name: str | None = None,
         architecture: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None, *,
         trainer_state: dict[str, Any] | None = None, algorithm: str | None = None) -> Path:
    """Atomically write a checkpoint. `config` is a Config (or its dict); `game_name` defaults to
    config's game; `architecture` defaults to `model.architecture`; `algorithm` to "muzero" for
    a MuZero architecture (kind "muzero"), else "alphazero". Returns the path."""
    path = Path(path)
    config_dict = _plain(config, "config") if config is not None else None
    if game_name is None:
        game_name = config_dict.get("game") if isinstance(config_dict, dict) else None
    if not game_name:
        raise CheckpointError(f"cannot save {path}: no game name (pass game_name or a config)")
    if architecture is None:
        architecture = getattr(model, "architecture", None)
        if architecture is None:
            raise CheckpointError(f"cannot save {path}: model has no .architecture; pass architecture")
    if algorithm is None:
        algorithm = "muzero" if architecture.get("kind") == "muzero" else "alphazero"
    meta = {"created_unix": time.time(), "azero_version": __version__}
    meta.update(metadata or {})
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "game": str(game_name),
        "step": int(step),
        "algorithm": str(algorithm),
        "architecture": _plain(dict(architecture), "architecture"),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": _plain(optimizer.state_dict(), "optimizer") if optimizer is not None else None,
        "trainer": _plain(trainer_state, "trainer_state") if trainer_state is not None else None,
        "config": config_dict,
        "metadata": _plain(meta, "metadata"),
    }
    atomic_write_with(path, lambda f: torch.save(payload, f))
    return path


def read_payload(path: str | os.PathLike) -> dict[str, Any]:
    """The raw checkpoint dict, validated as an azero checkpoint of a version we can read
    (weights_only: never runs code). Tensors are mapped to cpu."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path}: is a directory, not a checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # The weights_only unpickler names the first global (class/function) it refuses; any other
        # unpickling failure means the bytes are not a valid pickle at all.
        found = re.search(r"GLOBAL (\S+)", str(e))
        if found:
            raise CheckpointError(
                f"checkpoint {path}: refused: it pickles {found.group(1)}, not just tensors and plain "
                "data (loading it could run code)") from None
        raise CheckpointError(f"checkpoint {path}: truncated or corrupt, or a pickle that safe "
                              "(weights_only) loading cannot read") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError,
            IndexError, TypeError, AttributeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"checkpoint {path}: truncated or corrupt ({type(e).__name__}: {_first_line(e)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path}: not an azero checkpoint (a torch file without the "
                              f"{FORMAT!r} marker)")
    version = payload.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"checkpoint {path}: bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {version} is newer than this azero "
                              f"({__version__}) reads (<= {FORMAT_VERSION}); upgrade azero")
    for key, kind in (("game", str), ("step", int), ("architecture", dict), ("model", dict)):
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"checkpoint {path}: field {key!r} missing or not a {kind.__name__}")
    return payload


def load(path: str | os.PathLike, expected_game: str | None = None, *,
         expected_architecture: dict[str, Any] | None = None,
         device: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint and rebuild its network (eval mode, on `device`).
    Raises CheckpointError: missing file, truncated/corrupt, refused unsafe pickle, not an azero
    checkpoint, format from the future, wrong game, architecture mismatch."""
    from .nets import build_net

    path = Path(path)
    payload = read_payload(path)
    game = payload["game"]
    if expected_game is not None and game != expected_game:
        raise CheckpointError(f"checkpoint {path} is for {game}, not {expected_game}")
    architecture = payload["architecture"]
    if expected_architecture is not None and dict(expected_architecture) != architecture:
        diffs = sorted(k for k in set(architecture) | set(expected_architecture)
                       if architecture.get(k) != expected_architecture.get(k))
        detail = ", ".join(f"{k}: {architecture.get(k)!r} != expected {expected_architecture.get(k)!r}"
                           for k in diffs)
        raise CheckpointError(f"checkpoint {path}: architecture mismatch ({detail})")
    try:
        model = build_net(architecture)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: cannot build its network: {e}") from None
    try:
        model.load_state_dict(payload["model"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {path}: architecture mismatch: weights do not fit the "
                              f"stored architecture ({_first_line(e, 200)})") from None
    model.to(device).eval()
    return Checkpoint(
        path=path, model=model, game=game, step=payload["step"], architecture=architecture,
        config=payload.get("config"), optimizer_state=payload.get("optimizer"),
        trainer_state=payload.get("trainer"), metadata=payload.get("metadata") or {},
        format_version=payload["format_version"],
        algorithm=str(payload.get("algorithm", "alphazero")))


def load_best(run, game_name: str, device: str | torch.device = "cpu") -> tuple[int, nn.Module]:
    """(generation, network) of a run's best checkpoint (azero.rundir.RunDir.best), both read
    from best.pt itself (best.json may already name a newer one)."""
    loaded = load(run.best, expected_game=game_name, device=device)
    return int(loaded.metadata.get("generation", 0)), loaded.model


def _first_line(e: BaseException, limit: int = 160) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = " ".join(lines[:2]) if lines else type(e).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


__all__ = ["Checkpoint", "CheckpointError", "FORMAT_VERSION", "load", "read_payload", "save"]
