"""Where a run's self-play workers run: a backend connects for the length of a run and makes its
WorkerPool (azero/pool.py). `make_backend` gives the one `azero selfplay --backend NAME` names:
LocalBackend (processes of this machine) or azero.ray_pool.RayBackend (Ray actors, many machines).
"""
from __future__ import annotations

import contextlib

from azero.pool import ProcessWorkerPool, WorkerPool

BACKENDS = ("local", "ray")


class LocalBackend:
    """Self-play workers as processes of this machine (ProcessWorkerPool). A backend connects
    for the length of a run (`connected`, where set-up errors are raised before anything
    starts) and makes the run's pool; the Ray one is azero.ray_pool.RayBackend."""
    name = "local"

    @contextlib.contextmanager
    def connected(self, config):
        yield

    def pool(self, run, config) -> WorkerPool:
        from azero.workers import selfplay_worker
        return ProcessWorkerPool(selfplay_worker, config.selfplay.workers,
                                 args=(str(run.root), config.to_dict()))


def make_backend(name: str = "local", address: str | None = None):
    """The backend `azero selfplay --backend NAME [--address A]` asks for; ConfigError for a bad
    combination (Ray itself is imported and checked when the backend connects)."""
    from azero.config import ConfigError

    if name == "local":
        if address is not None:
            raise ConfigError("--address is for --backend ray (the local backend runs its "
                              "workers on this machine)")
        return LocalBackend()
    if name == "ray":
        from azero.ray_pool import RayBackend
        return RayBackend(address=address)
    raise ConfigError(f"--backend {name!r}: want one of {', '.join(BACKENDS)}")
