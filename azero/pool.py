"""Worker pools: run N copies of a worker function and keep them alive.

The loop only uses the small `WorkerPool` interface, made by a backend (azero/backends.py):
`ProcessWorkerPool` here (`worker(worker_id, stop_event, *args)` functions in processes of this
machine, which talk to the rest of the system only through files in the run directory), or the
Ray backend's pool (azero/ray_pool.py: one actor per worker, on many machines, whose games the
driver writes).
"""
from __future__ import annotations

import abc
import collections
import multiprocessing as mp
import time
from typing import Callable

from azero.sigint import start_ignoring_sigint


class WorkerPool(abc.ABC):
    @abc.abstractmethod
    def start(self) -> None:
        """Start every worker."""

    @abc.abstractmethod
    def check(self) -> list[str]:
        """Restart workers that died; returns a line for each restart (for the log)."""

    @abc.abstractmethod
    def stop(self, timeout: float = 10.0) -> None:
        """Ask every worker to stop, wait up to `timeout` s, then terminate the rest."""


class ProcessWorkerPool(WorkerPool):
    """One OS process per worker (spawn start method: no fork of a process holding torch threads;
    started ignoring SIGINT, azero/sigint.py).

    A worker that exits while the pool is running is restarted; more than `max_restarts` restarts
    within `restart_window` seconds make `check` raise: a worker that crashes at start-up would
    otherwise spin forever, while a run of days must survive the odd death (the OOM killer).
    """

    def __init__(self, target: Callable, num_workers: int, args: tuple = (), max_restarts: int = 20,
                 restart_window: float = 3600.0, kind: str = "self-play worker"):
        self._ctx = mp.get_context("spawn")
        self.kind = kind                     # what a worker is, for the log lines
        self._target = target
        self._args = args
        self._num_workers = num_workers
        self._stop_event = self._ctx.Event()
        self._procs: list[mp.Process | None] = [None] * num_workers
        self._restart_times: collections.deque[float] = collections.deque()
        self._max_restarts = max_restarts
        self._restart_window = restart_window

    def _spawn(self, worker_id: int) -> None:
        p = self._ctx.Process(target=self._target, args=(worker_id, self._stop_event, *self._args),
                              name=f"azero-worker-{worker_id}", daemon=True)
        start_ignoring_sigint(p)
        self._procs[worker_id] = p

    def start(self) -> None:
        for i in range(self._num_workers):
            self._spawn(i)

    def check(self) -> list[str]:
        lines = []
        if self._stop_event.is_set():
            return lines
        for i, p in enumerate(self._procs):
            if p is not None and not p.is_alive():
                now = time.monotonic()
                self._restart_times.append(now)
                while self._restart_times[0] < now - self._restart_window:
                    self._restart_times.popleft()
                if len(self._restart_times) > self._max_restarts:
                    raise RuntimeError(f"{self.kind} {i} keeps dying (exit code {p.exitcode}); "
                                       f"gave up after {self._max_restarts} restarts within "
                                       f"{self._restart_window:g} s")
                lines.append(f"{self.kind} {i} exited with code {p.exitcode}; restarted")
                self._spawn(i)
        return lines

    def stop(self, timeout: float = 10.0) -> None:
        self._stop_event.set()
        deadline = time.monotonic() + timeout
        for p in self._procs:
            if p is not None:
                p.join(max(0.0, deadline - time.monotonic()))
        for p in self._procs:
            if p is not None and p.is_alive():
                p.terminate()
                p.join(1.0)
