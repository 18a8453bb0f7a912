"""The run directory: how the stages of the loop talk to each other through files (KataGo-style).

    <run_dir>/
      config.yaml            the resolved config of the run (written once; resume reads it)
      replay/                self-play shards (azero/replay.py), never rewritten
      checkpoints/
        best.pt              the network self-play uses; replaced atomically on promotion
        best.json            {"generation": g, "step": s, "elo": e}: workers poll this small file
        trainer.pt           trainer state (weights, optimizer, step) for resuming
        candidate-<step>.pt  candidates, the newest few kept
        generations/gen-<g>.pt   every promoted network, kept for Elo progressions and replays
      arena/                 records of gating and anchor matches
      games/                 records of every self-play game (SGF for Go, JSON lines for
                             Connect Four), one file or folder per worker
      metrics.jsonl          one JSON object per event (append-only)
      selfplay.pause         present while the trainer is too far behind: workers wait
      tb/                    TensorBoard logs

Every file is written with azero/atomic.py, so a kill at any moment leaves each file either old
or new and loses at most the games in flight and the training since the last checkpoint.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from azero.atomic import atomic_write_bytes


class RunDirBusy(RuntimeError):
    """Another process holds the run directory."""


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike) -> "RunDir":
        return cls(Path(path))

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def replay(self) -> Path:
        return self.root / "replay"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best(self) -> Path:
        return self.checkpoints / "best.pt"

    @property
    def best_info_file(self) -> Path:
        return self.checkpoints / "best.json"

    @property
    def trainer_state(self) -> Path:
        return self.checkpoints / "trainer.pt"

    def candidate(self, step: int) -> Path:
        return self.checkpoints / f"candidate-{step:09d}.pt"

    def generation(self, generation: int) -> Path:
        return self.checkpoints / "generations" / f"gen-{generation:04d}.pt"

    @property
    def games(self) -> Path:
        return self.root / "games"

    @property
    def arena(self) -> Path:
        return self.root / "arena"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tb"

    @property
    def selfplay_pause_file(self) -> Path:
        return self.root / "selfplay.pause"

    def selfplay_paused(self) -> bool:
        """Whether self-play should wait (the trainer is behind its sample ratio)."""
        return self.selfplay_pause_file.exists()

    def set_selfplay_paused(self, paused: bool) -> None:
        if paused:
            self.selfplay_pause_file.touch()
        else:
            self.selfplay_pause_file.unlink(missing_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the run directory's lock (an flock on `.lock`, released by the OS when the process
        dies, so a killed run never leaves it stuck) so that two trainers never share a run."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunDirBusy(f"run directory {self.root} is in use by another azero process") from None
            yield
        finally:
            os.close(fd)

    def make(self) -> None:
        for d in (self.root, self.replay, self.checkpoints, self.arena, self.games):
            d.mkdir(parents=True, exist_ok=True)
        self._end_cut_metrics_line()

    def _end_cut_metrics_line(self) -> None:
        """A kill during an append can leave a last line without its newline; end it so the next
        record starts on a line of its own."""
        try:
            with open(self.metrics, "rb+") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        f.write(b"\n")
        except FileNotFoundError:
            pass

    def read_best_info(self) -> dict | None:
        """The promoted network's generation record, or None before the first one is written."""
        try:
            return json.loads(self.best_info_file.read_text())
        except FileNotFoundError:
            return None

    def write_best_info(self, info: dict) -> None:
        atomic_write_bytes(self.best_info_file, json.dumps(info).encode())

    def log_metrics(self, event: str, **fields) -> dict:
        """Append one line to metrics.jsonl. A line is small and written with one write() call on
        an O_APPEND descriptor, so a kill leaves at worst a last line without its newline, which
        `read_metrics` skips."""
        record = {"event": event, "time": time.time(), **fields}
        line = (json.dumps(_strict_json(record), allow_nan=False) + "\n").encode()
        fd = os.open(self.metrics, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return record

    def read_metrics(self) -> list[dict]:
        records = []
        try:
            text = self.metrics.read_text()
        except FileNotFoundError:
            return records
        for line in text.splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill
        return records


def _strict_json(value):
    """`value` with every infinite or NaN float replaced by None (JSON has no such numbers: an
    Elo bound after a clean sweep is infinite), so strict JSON parsers read metrics.jsonl."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value
