"""Self-play on a Ray cluster: `azero selfplay --backend ray [--address auto|HOST:PORT]`.

Each self-play worker is a Ray actor (SelfPlayActor) on any node of the cluster. It plays with the
same workers.GamePlayer as a local worker process and touches no file: a call to `play` returns
the games it finished to the driver as a Ray object. On the driver, one thread (RayWorkerPool's
collector) fetches each result (ray.get, then the reference is dropped: nothing stays in the
object store longer than it takes to write it) and writes the games through one
workers.GameSink per worker, the code a local worker writes with: the same atomic shards,
records and metrics in the run directory, which lives on the driver only.

    driver: loop (trainer, gate)       collector thread  --play(generation, [network])-->  actors
            run directory  <-- GameSink(worker) <-- ray.get(result)  <--  finished games --'

  * Networks: a promoted network (best.pt) is put in the object store once per promotion (its
    architecture and weights); every call names the newest one, and an actor fetches it only
    when the generation changes.
  * Faults: a call returns as soon as a game finishes, so an actor holds no finished game for
    longer than a move. An actor that dies (killed, out of memory, its node lost) is replaced by
    a new one and loses only its unfinished games; a replacement that cannot be placed (its
    node is gone) waits without stopping anything. More than max_restarts deaths of one worker
    within an hour make `check` raise (a worker that dies at start-up); the budget is per worker,
    not the process pool's one for all, since a lost node takes all its actors at once. A
    driver killed with SIGKILL takes its actors with it (Ray ends a dead driver's actors) and
    loses the games not yet written, as a killed local worker does; a rerun resumes from the
    run directory as today.
  * Set-up errors (Ray missing, an unreachable address, a node with another azero version) are
    ConfigErrors raised before anything starts (RayBackend.connected).
  * With selfplay.inference_server, the actors hold no network: they ask the driver's inference
    server (azero/inference_server.py), which listens on the driver's node IP; every node must
    reach that port.

Ray is an optional extra (`pip install -e ".[ray]"`): this module imports it only inside the
functions that need it, and nothing imports this module unless --backend ray is asked for.
"""
from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from azero.config import ConfigError
from azero.pool import WorkerPool

# A call to SelfPlayActor.play returns after the first move that finishes a game, or after this
# many seconds of moves when none does (so that a new network or a stop is taken up soon).
CALL_SECONDS = 2.0
# Calls queued on each actor: while the driver writes one result, the actor plays the next.
CALLS_IN_FLIGHT = 2
# How long the collector waits for any result before it looks at the run directory again.
WAIT_SECONDS = 0.2
# How long `connected` waits for every node to report its azero version.
NODE_CHECK_SECONDS = 60.0
# How long a TCP connection to --address HOST:PORT may take before it counts as unreachable.
CONNECT_SECONDS = 5.0
RAY_INSTALL = "pip install 'azero[ray]' (in a checkout: pip install -e '.[ray]')"


def import_ray():
    """The ray module, or ConfigError with the command that installs it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--backend ray needs Ray, an optional extra: {RAY_INSTALL}") from None
    return ray


class VersionMismatch(RuntimeError):
    """An actor's node runs another azero version than the driver."""


class Delivery(NamedTuple):
    """What one SelfPlayActor.play call returns."""
    generation: int       # of the network every move of the call was played with
    games: list           # selfplay.FinishedGame, in the order they finished
    played: int           # positions searched and played (one per game per move)


def network_message(run) -> dict:
    """The best network as the actors receive it: {"generation", "architecture", "model" (state
    dict of cpu tensors)}, read from best.pt (its generation from best.pt itself, as a local
    worker reads it)."""
    from azero import checkpoint as ckpt

    payload = ckpt.read_payload(run.best)
    return {"generation": int((payload.get("metadata") or {}).get("generation", 0)),
            "architecture": payload["architecture"], "model": payload["model"]}


def network_from_message(message: dict, device):
    """The network of a network_message, in eval mode on `device`."""
    from azero.nets import build_net

    net = build_net(message["architecture"])
    net.load_state_dict(message["model"], strict=True)
    return net.to(device).eval()


class SelfPlayActor:
    """One self-play worker on a Ray node (made a Ray actor class by RayWorkerPool). It holds
    its games and network in memory and returns finished games to the caller."""

    def __init__(self, config_dict: dict, worker_id: int, driver_version: str):
        import azero

        self._mismatch = None
        if azero.__version__ != driver_version:
            # Raised by the first call (an error there reaches the driver as itself).
            self._mismatch = VersionMismatch(
                f"node {socket.gethostname()} runs azero {azero.__version__}, the driver "
                f"{driver_version}: install the driver's azero on every node ({RAY_INSTALL})")
            return
        import ray

        from azero.config import Config
        from azero.algorithms import algorithm_for
        from azero.nets import resolve_device, set_torch_threads

        self.config = Config.from_dict(config_dict)
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
        set_torch_threads(self.config.selfplay.threads_per_worker or max(1, int(cpus)))
        self.worker_id = worker_id
        self.game = self.config.make_game()
        # the algorithm's search half only: the storage half works on the driver (GameSink)
        self.kit = algorithm_for(self.config).games(None, self.game, self.config, worker_id)
        # Ray shows an actor no GPU unless its options ask for one (num_gpus): the CPU then
        self.device = (resolve_device(self.config.train.device) if ray.get_gpu_ids()
                       else resolve_device("cpu"))
        self.player = None                  # workers.GamePlayer, made with the first network

    def play(self, generation: int, network: list, max_seconds: float = CALL_SECONDS) -> Delivery:
        """Moves with the network of `generation` (network: [ObjectRef of its network_message],
        fetched only when the generation is new to this actor) until a move finishes at least
        one game or `max_seconds` pass; the games finished."""
        if self._mismatch is not None:
            raise self._mismatch
        if self.config.selfplay.inference_server:
            # the driver's inference server holds the network (the generation comes with its
            # replies); this node must reach the server's port on the driver
            if self.player is None:
                from azero.inference_client import ServedPlayer
                self.player = ServedPlayer(self.config, self.game, self.kit, self.worker_id)
        elif self.player is None or self.player.generation != generation:
            import ray

            from azero.workers import GamePlayer

            net = network_from_message(ray.get(network[0]), self.device)
            if self.player is None:
                self.player = GamePlayer(self.config, self.game, self.kit, self.worker_id,
                                         self.device, generation, net)
            else:
                self.player.use_network(generation, net)
        started = time.monotonic()
        moves = 0
        while True:
            finished = self.player.play_move()
            moves += 1
            if finished or time.monotonic() - started >= max_seconds:
                break
        return Delivery(self.player.generation, finished,
                        moves * self.config.selfplay.games_per_worker)


def _azero_version() -> str:
    """Run on each node by check_node_versions."""
    import azero
    return azero.__version__


def check_node_versions(ray, timeout: float = NODE_CHECK_SECONDS) -> None:
    """ConfigError naming the first node whose azero version is not the driver's, or that cannot
    run azero at all (not installed there); a zero-CPU task on every live node asks it."""
    import azero
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_azero_version)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    asked = [(f"{n['NodeManagerAddress']} (node {n['NodeID'][:8]})", probe.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote())
        for n in nodes]
    deadline = time.monotonic() + timeout
    for name, ref in asked:
        try:
            version = ray.get(ref, timeout=max(0.1, deadline - time.monotonic()))
        except ray.exceptions.GetTimeoutError:
            raise ConfigError(f"Ray node {name} did not answer within {timeout:g} s; check that "
                              "it is up (ray status)") from None
        except Exception as e:
            raise ConfigError(f"Ray node {name} cannot run azero ({_gist(e)}): install "
                              f"azero {azero.__version__} there ({RAY_INSTALL})") from None
        if version != azero.__version__:
            raise ConfigError(f"Ray node {name} runs azero {version} but the driver runs "
                              f"{azero.__version__}: install the same azero on every node "
                              f"({RAY_INSTALL})")


def _gist(e: BaseException) -> str:
    """The last line of an error's message (Ray's errors end with the cause's own line)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[-1][:200] if lines else type(e).__name__


def check_address(address: str, timeout: float = CONNECT_SECONDS) -> None:
    """ConfigError unless `address` is "auto" or a HOST:PORT that accepts a TCP connection
    (ray.init would retry an unreachable address for minutes)."""
    if address == "auto":
        return
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--address {address!r}: want auto or HOST:PORT (the address "
                          "'ray start --head' printed, e.g. 10.0.0.5:6379)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConfigError(f"--address {address}: no Ray cluster answers there "
                          f"({e.strerror or type(e).__name__}); start one with 'ray start --head' "
                          "on that machine, or give the address it printed") from None


@dataclass
class RayBackend:
    """Self-play workers as Ray actors. `address`: None starts a Ray instance on this machine
    (num_cpus, object_store_memory: its size, Ray's defaults when None); "auto" or HOST:PORT
    joins a running cluster. `actor_options(worker_id)`: extra ray options of that worker's
    actor (e.g. {"resources": {"gpu-box": 1}} to place it)."""
    address: str | None = None
    num_cpus: int | None = None
    object_store_memory: int | None = None
    actor_options: Callable[[int], dict] | None = None
    name: str = field(default="ray", init=False)

    @contextlib.contextmanager
    def connected(self, config):
        """Connect to (or start) Ray and check every node; ConfigError with what to fix
        otherwise, leaving nothing started. A Ray connection made before is used as it is."""
        ray = import_ray()
        owned = not ray.is_initialized()
        if owned:
            if self.address is None:
                sp = config.selfplay
                cpus = self.num_cpus or max(os.cpu_count() or 1,
                                            sp.workers * (sp.threads_per_worker or 1))
                ray.init(num_cpus=cpus, object_store_memory=self.object_store_memory,
                         include_dashboard=False, logging_level=logging.WARNING)
            else:
                check_address(self.address)
                try:
                    ray.init(address=self.address, logging_level=logging.WARNING)
                except ConnectionError as e:
                    hint = ("start a cluster with 'ray start --head', or leave --address out for "
                            "a Ray instance on this machine" if self.address == "auto" else
                            "if it is a Ray head with token authentication, this machine needs "
                            "RAY_AUTH_MODE=token and the head's token (ray get-auth-token)")
                    raise ConfigError(f"--address {self.address}: {_gist(e)} ({hint})") from None
        try:
            check_node_versions(ray)
            yield
        finally:
            if owned:
                ray.shutdown()

    def pool(self, run, config) -> "RayWorkerPool":
        return RayWorkerPool(run, config, actor_options=self.actor_options)


@dataclass
class _Worker:
    """The driver's view of one worker: its actor, its calls under way (oldest first), and since
    when it has had none (monotonic seconds; None while it has some)."""
    handle: object
    calls: list = field(default_factory=list)
    idle_since: float | None = None


class RayWorkerPool(WorkerPool):
    """config.selfplay.workers SelfPlayActors and the driver thread that feeds them networks and
    writes their games (see the module docstring). Needs a Ray connection
    (RayBackend.connected)."""

    def __init__(self, run, config, *, actor_options: Callable[[int], dict] | None = None,
                 max_restarts: int = 20, restart_window: float = 3600.0):
        self.run = run
        self.config = config
        self._actor_options = actor_options
        self._max_restarts = max_restarts
        self._restart_window = restart_window
        self._restart_times: dict[int, list[float]] = {}     # worker id -> its replacements
        self._workers: list[_Worker] = []
        self._sinks: list = []
        self._network = None            # (generation, ObjectRef of its network_message)
        self._last_poll = 0.0
        self._stopping = threading.Event()
        self._stop_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._lines: list[str] = []     # restarts to report (check)
        self._error: BaseException | None = None

    # --- the loop's side -------------------------------------------------------------------
    def start(self) -> None:
        import ray

        from azero.algorithms import algorithm_for
        from azero.workers import GameSink

        game = self.config.make_game()
        algorithm = algorithm_for(self.config)
        self._actor_class = ray.remote(SelfPlayActor)
        self._sinks = [GameSink(self.run, self.config, game,
                                algorithm.games(self.run, game, self.config, i), i)
                       for i in range(self.config.selfplay.workers)]
        self._publish_network()
        self._workers = [_Worker(self._spawn(i), idle_since=time.monotonic())
                         for i in range(self.config.selfplay.workers)]
        self._thread = threading.Thread(target=self._collect, name="azero-ray-collector",
                                        daemon=True)
        self._thread.start()

    def check(self) -> list[str]:
        with self._lock:
            lines, self._lines = self._lines, []
        if self._error is not None:
            raise RuntimeError(f"Ray self-play stopped: {self._error}") from self._error
        return lines

    def stop(self, timeout: float = 10.0) -> None:
        """Stop asking for games, write what the calls under way return within `timeout` s and
        every game queued, then end the actors."""
        self._stop_deadline = time.monotonic() + timeout
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout + 30.0)

    # --- the collector thread --------------------------------------------------------------
    def _collect(self) -> None:
        try:
            while not self._stopping.is_set():
                self._poll_network()
                if not self.run.selfplay_paused():       # the trainer is behind: no new calls
                    self._submit()
                self._receive(WAIT_SECONDS)
                for sink in self._sinks:
                    sink.write_if_stale()
            while (any(w.calls for w in self._workers)
                   and time.monotonic() < self._stop_deadline):
                self._receive(min(WAIT_SECONDS, max(0.0, self._stop_deadline - time.monotonic())))
        except BaseException as e:  # reported by check(); the games received are still written
            self._error = e
        finally:
            self._shut_down()

    def _spawn(self, worker_id: int):
        import azero

        sp = self.config.selfplay
        # max_restarts 0: a dead actor is replaced by _replace, which keeps the restart budget
        options = {"num_cpus": sp.threads_per_worker or 1, "max_restarts": 0,
                   **(self._actor_options(worker_id) if self._actor_options else {})}
        return self._actor_class.options(**options).remote(self.config.to_dict(), worker_id,
                                                           azero.__version__)

    def _poll_network(self) -> None:
        """Put a newly promoted best network in the object store (once per promotion)."""
        if time.monotonic() - self._last_poll < self.config.selfplay.checkpoint_poll_seconds:
            return
        self._last_poll = time.monotonic()
        info = self.run.read_best_info()
        if info is not None and info["generation"] != self._network[0]:
            self._publish_network()

    def _publish_network(self) -> None:
        import ray

        message = network_message(self.run)
        self._network = (message["generation"], ray.put(message))   # the old one is dropped

    def _submit(self) -> None:
        generation, ref = self._network
        now = time.monotonic()
        for i, w in enumerate(self._workers):
            while len(w.calls) < CALLS_IN_FLIGHT:
                w.calls.append(w.handle.play.remote(generation, [ref]))
            if w.idle_since is not None:
                self._sinks[i].tally.paused += now - w.idle_since
                w.idle_since = None

    def _receive(self, timeout: float) -> None:
        """Write the games of every call that finishes within `timeout` s; replace the actors
        whose call failed."""
        import ray

        owner = {ref: i for i, w in enumerate(self._workers) for ref in w.calls}
        if not owner:
            time.sleep(timeout)
            return
        ready, _ = ray.wait(list(owner), num_returns=1, timeout=timeout)
        if ready:       # take every call finished by now (an actor's calls finish in order)
            ready, _ = ray.wait(list(owner), num_returns=len(owner), timeout=0)
        for ref in ready:       # the references die with this call: the results leave the store
            i = owner[ref]
            w = self._workers[i]
            if ref not in w.calls:              # dropped with an actor replaced just now
                continue
            w.calls.remove(ref)
            try:
                delivery = ray.get(ref)
            except VersionMismatch as e:          # a node that joined after the start
                raise VersionMismatch(str(getattr(e, "cause", e))) from None
            except ray.exceptions.RayError as e:
                self._replace(i, e)
                continue
            sink = self._sinks[i]
            sink.tally.played += delivery.played
            sink.add(delivery.games, delivery.generation)
            if not w.calls:
                w.idle_since = time.monotonic()

    def _replace(self, worker_id: int, error: BaseException) -> None:
        """A new actor for a dead one (its calls under way are lost with it); none once the
        pool is stopping."""
        import ray

        w = self._workers[worker_id]
        if self._stopping.is_set():
            w.calls = []
            return
        now = time.monotonic()
        times = [t for t in self._restart_times.get(worker_id, [])
                 if t >= now - self._restart_window] + [now]
        self._restart_times[worker_id] = times
        if len(times) > self._max_restarts:
            raise RuntimeError(f"self-play worker {worker_id} keeps dying ({_gist(error)}); "
                               f"gave up after {self._max_restarts} restarts of it within "
                               f"{self._restart_window:g} s")
        with contextlib.suppress(Exception):
            ray.kill(w.handle, no_restart=True)
        w.handle, w.calls, w.idle_since = self._spawn(worker_id), [], now
        with self._lock:
            self._lines.append(f"worker {worker_id} died ({type(error).__name__}: "
                               f"{_gist(error)}); a new actor replaces it")

    def _shut_down(self) -> None:
        """Write every queued game, close the records, end the actors."""
        import ray

        try:
            for sink in self._sinks:
                sink.close()
        finally:
            for w in self._workers:
                with contextlib.suppress(Exception):
                    ray.kill(w.handle, no_restart=True)
            self._workers = []
            self._network = None


__all__ = ["CALL_SECONDS", "Delivery", "RayBackend", "RayWorkerPool", "SelfPlayActor",
           "VersionMismatch", "check_address", "check_node_versions", "import_ray"]
