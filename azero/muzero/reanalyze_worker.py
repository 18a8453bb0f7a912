"""The Reanalyze worker: a process beside the trainer that refreshes stored games' targets with
the trainer's newest network (what and why: azero/muzero/reanalyze.py).

It talks to the trainer through files in <run>/reanalyze/, all written atomically:

    network.pt        the trainer's weights before each training chunk (NetworkHandOff, the
                      loop's before_training step), an ordinary checkpoint whose metadata
                      "announced_step" is the step the trainer reaches at the chunk's end
    targets/<shard>   a refreshed shard's targets (RefreshedTargets): policy float32 [n, A],
                      root_value float32 [n] (n: the shard's rows) and the step of the
                      weights that searched them

Invariants:
  * Pacing: the worker owes fraction x batch_size / train_samples_per_position positions for each
    step announced since it started (reanalyze.Reanalyzer's credit), so Reanalyze costs in
    proportion to the training it feeds; with nothing owed it sleeps, and whatever core it
    leaves goes to self-play and the trainer.
  * The trainer reads a targets file once its shard is in its window (ReanalyzeBuffer.refresh)
    and again when it is rewritten; the worker deletes the files of shards that left the window.
  * A kill of either side loses at most the search under way: targets on disk survive, and a
    resumed run (or a restarted worker) reads them again; the worker's pacing starts afresh.
  * The worker leaves when the trainer is gone (stop event, SIGTERM, or orphaned after a kill -9),
    between two searches.
"""
from __future__ import annotations

import os
import signal
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import ORPHAN_WRITE_GRACE_SECONDS, atomic_write_with, remove_stale_temp_files
from .replay import trajectory_dir

POLL_SECONDS = 0.2          # how often an idle worker looks for new credit
REPORT_SECONDS = 60.0       # a "reanalyze" metrics record at most this often


def reanalyze_dir(run_root) -> Path:
    return Path(run_root) / "reanalyze"


class RefreshedTargets:
    """The refreshed shards' targets in `directory` (one .npz per shard, named as the shard)."""

    def __init__(self, directory):
        self.directory = Path(directory)
        self._read: dict[str, int] = {}          # name -> mtime_ns of the version read

    def write(self, chunk, policy: np.ndarray, root_value: np.ndarray, step: int) -> None:
        """Reanalyzer's publish: the targets of `chunk` (a _TrajectoryChunk of the window)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write_with(self.directory / chunk.name, lambda f: np.savez_compressed(
            f, policy=np.asarray(policy, np.float32), root_value=np.asarray(root_value, np.float32),
            step=np.int64(step)))

    def _files(self) -> dict[str, os.DirEntry]:
        if not self.directory.is_dir():
            return {}
        with os.scandir(self.directory) as entries:
            return {e.name: e for e in entries if not e.name.startswith(".")}

    def steps(self) -> dict[str, int]:
        """name -> the step of each stored shard's targets (unreadable files left out)."""
        out = {}
        for name in self._files():
            try:
                with np.load(self.directory / name, allow_pickle=False) as data:
                    out[name] = int(data["step"])
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                continue
        return out

    def read_new(self, live):
        """(name, policy, root_value, step) of each file of a shard in `live` (names) that is new or
        rewritten since this object last read it. An unreadable file is skipped with a warning
        (until it is rewritten)."""
        for name, entry in self._files().items():
            if name not in live:
                continue
            mtime = entry.stat().st_mtime_ns
            if self._read.get(name) == mtime:
                continue
            self._read[name] = mtime
            try:
                with np.load(entry.path, allow_pickle=False) as data:
                    found = (np.asarray(data["policy"]), np.asarray(data["root_value"]),
                             int(data["step"]))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
                warnings.warn(f"reanalyze: skipping unreadable targets {entry.path}: "
                              f"{type(e).__name__}: {e}", RuntimeWarning, stacklevel=2)
                continue
            yield (name, *found)

    def prune(self, live) -> int:
        """Delete the files of shards not in `live` (names); returns how many."""
        gone = [name for name in self._files() if name not in live]
        for name in gone:
            (self.directory / name).unlink(missing_ok=True)
            self._read.pop(name, None)
        return len(gone)


class NetworkHandOff:
    """The trainer's side (the loop's before_training step): writes network.pt before each
    chunk of `steps` steps, and returns figures of the refreshed targets the trainer holds for
    that chunk's metrics record."""

    def __init__(self, trainer, buffer, run, config):
        self.trainer, self.buffer, self.config = trainer, buffer, config
        self.path = reanalyze_dir(run.root) / "network.pt"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write(0)                  # before the worker starts: it searches with these

    def _write(self, steps: int) -> None:
        from .. import checkpoint as ckpt
        ckpt.save(self.path, self.trainer.net, step=self.trainer.step, config=self.config,
                  metadata={"announced_step": self.trainer.step + int(steps)})

    def __call__(self, steps: int) -> dict[str, float]:
        self._write(steps)
        fresh = self.buffer.refreshed()
        ages = [self.trainer.step - self.buffer.refreshed_step[c.name] for c in fresh]
        return {"reanalyzed_shards_live": len(fresh),
                "reanalyzed_targets_age": float(np.mean(ages)) if ages else float("nan")}


class _Network:
    """network.pt as the worker sees it: the weights loaded into one net (the Reanalyzer's),
    reloaded when the file changes."""

    def __init__(self, path: Path, game_name: str, device):
        self.path, self.game_name, self.device = path, game_name, device
        self.net = None
        self.step = 0                 # the weights' training step
        self.announced = 0            # the step the trainer announced with them
        self._mtime = None

    def changed(self) -> bool:
        try:
            return self.path.stat().st_mtime_ns != self._mtime
        except FileNotFoundError:
            return False

    def load(self) -> None:
        from .. import checkpoint as ckpt
        mtime = self.path.stat().st_mtime_ns
        if self.net is None:
            loaded = ckpt.load(self.path, expected_game=self.game_name, device=self.device)
            self.net, payload = loaded.model, {"step": loaded.step, "metadata": loaded.metadata}
        else:
            payload = ckpt.read_payload(self.path)
            self.net.load_state_dict(payload["model"])
        self.step = int(payload["step"])
        self.announced = int((payload.get("metadata") or {}).get("announced_step", self.step))
        self._mtime = mtime


def reanalyze_worker(worker_id: int, stop_event, run_dir: str, config_dict: dict) -> None:
    """The worker process (a ProcessWorkerPool target): refresh what the announced steps are owed
    until `stop_event` is set, SIGTERM arrives or the trainer is gone."""
    terminating = []
    signal.signal(signal.SIGINT, signal.SIG_IGN)           # Ctrl-C is the trainer's
    signal.signal(signal.SIGTERM, lambda signum, frame: terminating.append(signum))
    from ..config import Config
    from ..nets import resolve_device, set_torch_threads
    from ..rundir import RunDir
    from .reanalyze import Reanalyzer
    from .replay import TrajectoryBuffer

    config = Config.from_dict(config_dict)
    sp, tc, mz = config.selfplay, config.train, config.muzero
    set_torch_threads(sp.threads_per_worker, processes=sp.workers + 2)
    run = RunDir.at(run_dir)
    game = config.make_game()
    store = RefreshedTargets(reanalyze_dir(run.root) / "targets")
    remove_stale_temp_files(store.directory, older_than=ORPHAN_WRITE_GRACE_SECONDS)
    network = _Network(reanalyze_dir(run.root) / "network.pt", config.game,
                       resolve_device(config.train.device))
    parent = os.getppid()

    def stopping() -> bool:
        return stop_event.is_set() or bool(terminating) or os.getppid() != parent

    while not network.changed():                 # the trainer writes it before starting us
        if stopping():
            return
        time.sleep(POLL_SECONDS)
    network.load()
    buffer = TrajectoryBuffer(trajectory_dir(run.root), game, config.replay.window_positions,
                              mz.unroll_steps, mz.td_steps, sp.value_target_root_weight)
    reanalyzer = Reanalyzer(
        network.net, game, buffer, config.search, batch_size=sp.games_per_worker,
        positions_per_step=mz.reanalyze_fraction * tc.batch_size / tc.train_samples_per_position,
        seed=config.seed + network.step + 1, step_of=lambda: network.step, publish=store.write)
    reanalyzer.refreshed_step.update(store.steps())   # a restart: what is on disk is refreshed
    report = _Report(run, worker_id)
    announced = network.step          # the chunk the first weights came with is owed too
    while not stopping():
        buffer.refresh()
        store.prune({c.name for c in buffer.chunks})
        if network.changed():
            network.load()
        new_steps, announced = max(0, network.announced - announced), max(announced,
                                                                          network.announced)
        if new_steps or reanalyzer.owed:
            shards = reanalyzer.shards_refreshed
            figures = reanalyzer(new_steps, should_stop=lambda: stopping() or network.changed())
            report.add(figures, reanalyzer.shards_refreshed - shards)
        else:
            time.sleep(POLL_SECONDS)
            report.idle += POLL_SECONDS
        report.flush_if_due(network.step)
    report.flush_if_due(network.step, force=True)
    remove_stale_temp_files(store.directory)      # ours are done; a killed worker's long gone


class _Report:
    """The worker's figures since its last "reanalyze" metrics record."""

    def __init__(self, run, worker_id: int):
        self.run, self.worker_id = run, worker_id
        self.positions, self.seconds, self.shards, self.idle = 0, 0.0, 0, 0.0
        self.since = time.monotonic()

    def add(self, figures: dict, shards: int) -> None:
        self.positions += figures["reanalyzed_positions"]
        self.seconds += figures["reanalyze_seconds"]
        self.shards += shards

    def flush_if_due(self, network_step: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.since < REPORT_SECONDS:
            return
        if self.positions or self.shards:
            self.run.log_metrics(
                "reanalyze", worker=self.worker_id, network_step=network_step,
                positions=self.positions, shards=self.shards, search_seconds=self.seconds,
                idle_seconds=self.idle, wall_seconds=now - self.since,
                positions_per_second=self.positions / self.seconds if self.seconds else 0.0)
        self.positions, self.seconds, self.shards, self.idle = 0, 0.0, 0, 0.0
        self.since = now


def reanalyze_pool(run, config):
    """The run's Reanalyze worker as a one-process pool (restarted if it dies)."""
    from ..pool import ProcessWorkerPool
    return ProcessWorkerPool(reanalyze_worker, 1, args=(str(run.root), config.to_dict()),
                             kind="Reanalyze worker")


__all__ = ["NetworkHandOff", "RefreshedTargets", "reanalyze_dir", "reanalyze_pool",
           "reanalyze_worker"]
