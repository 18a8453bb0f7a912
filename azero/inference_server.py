"""The inference server: one process per device holds the run's best network and answers the leaf
evaluations of many self-play workers with one forward pass per batch of their requests
(selfplay.inference_server; `azero selfplay --inference-server`).

    workers (CPU processes or Ray actors, inference_groups game groups each, one connection per
    group; azero/inference_client.py)  --states-->  server: take every request ready (up to
    inference_server_max_batch rows, waiting up to inference_server_wait_ms for more),
    concatenate, ONE evaluator call, split  --logits, values, generation-->  each client

  * Transport: multiprocessing.connection over TCP with a per-run random key (HMAC handshake), so a
    local worker process and a Ray actor on another node reach the server the same way. Messages
    are raw array bytes behind a small JSON header (encode / decode), never pickles.
  * States, not observations, travel: the server's evaluator computes game.observation. MuZero's
    latents travel too, as float32 host arrays (exact for bf16 latents): on a GPU each call then
    copies them across twice, which the batching of many workers' leaves is meant to pay for.
  * The network: checkpoints/best.pt, reloaded between batches when best.json's generation
    changes (polled every selfplay.checkpoint_poll_seconds, as a worker does); every reply names
    the generation that computed it. A search whose calls straddle a reload mixes the two networks'
    evaluations for that move; a MuZero client drops its trees at a new generation
    (inference_client.ServedPlayer), since their latents belong to the old network.
  * Faults: a client that disconnects (a killed worker) is dropped and the others go on; a request
    that does not fit the game gets an error reply for that client alone. The loop restarts a dead
    server on the same address (ServedPool.check); the workers meanwhile lose their connection,
    raise, and are restarted by their pool, and reconnect.
  * Ray: the server listens on the driver's node IP (ray.util.get_node_ip_address()); every node
    must reach that address's port (the firewall open between the nodes, as Ray's own ports are).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from multiprocessing.connection import Listener, wait

import numpy as np

from azero.pool import WorkerPool
from azero.sigint import start_ignoring_sigint

log = logging.getLogger(__name__)

# How long start() waits for the server to bind its port and load the network.
START_SECONDS = 180.0
# The serving loop's longest wait for a request, between its checks of stop, parent and network.
IDLE_SECONDS = 0.2
_HEADER_BYTES = 4       # little-endian length of the JSON header that starts every message


# --- the wire format: one message = header length, JSON header, raw array bytes -------------

def encode(op: str, meta: dict | None = None, arrays=()) -> bytes:
    """A message: `op` (what is asked or answered), `meta` (JSON-able), and numpy arrays sent
    as raw bytes (their dtype and shape go in the header)."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    header = json.dumps({"op": op, "meta": meta or {},
                         "arrays": [[a.dtype.str, list(a.shape)] for a in arrays]}).encode()
    return b"".join([len(header).to_bytes(_HEADER_BYTES, "little"), header,
                     *(a.tobytes() for a in arrays)])


def decode(message: bytes) -> tuple[str, dict, list[np.ndarray]]:
    """(op, meta, arrays) of an encoded message; ValueError if it is malformed. The arrays are
    read-only views of `message`."""
    view = memoryview(message)
    length = int.from_bytes(view[:_HEADER_BYTES], "little")
    header = json.loads(bytes(view[_HEADER_BYTES:_HEADER_BYTES + length]))
    offset, arrays = _HEADER_BYTES + length, []
    for dtype, shape in header["arrays"]:
        dtype = np.dtype(dtype)
        if dtype.hasobject:
            raise ValueError("object arrays are not accepted")
        count = int(np.prod(shape, dtype=np.int64))
        arrays.append(np.frombuffer(view, dtype, count, offset).reshape(shape))
        offset += count * dtype.itemsize
    if offset != len(view):
        raise ValueError(f"message of {len(view)} bytes, its header describes {offset}")
    return header["op"], header["meta"], arrays


def format_endpoint(host: str, port: int, authkey: bytes) -> str:
    """HOST:PORT/KEY (the key in hex): what a worker needs to reach the server."""
    return f"{host}:{port}/{authkey.hex()}"


def parse_endpoint(endpoint: str) -> tuple[tuple[str, int], bytes]:
    """((host, port), authkey) of a format_endpoint string; ValueError naming the problem."""
    address, sep, key = endpoint.partition("/")
    host, colon, port = address.rpartition(":")
    if not sep or not colon or not host or not port.isdigit():
        raise ValueError(f"inference server endpoint {endpoint!r}: want HOST:PORT/KEY")
    return (host.strip("[]"), int(port)), bytes.fromhex(key)


# --- the server process ----------------------------------------------------------------------

def _serve(run_root: str, config_dict: dict, host: str, port: int, authkey: bytes, ready,
           stop_event, parent: int) -> None:
    """The server process: bind, load the best network, report ("ready", port) or ("error",
    message) on `ready`, then serve until `stop_event`, SIGTERM or the death of `parent`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C goes to the loop, which stops us
    try:
        from azero.config import Config
        from azero.nets import resolve_device, set_torch_threads
        from azero.rundir import RunDir

        config = Config.from_dict(config_dict)
        sp = config.selfplay
        set_torch_threads(sp.threads_per_worker, processes=sp.workers + 1)
        listener = Listener((host, port), authkey=authkey)
        server = _Server(listener, RunDir.at(run_root), config,
                         resolve_device(config.train.device))
    except BaseException as e:
        ready.send(("error", f"{type(e).__name__}: {e}"))
        raise
    ready.send(("ready", listener.address[1]))
    server.serve(stop_event, parent)


@dataclasses.dataclass
class _Request:
    client: object              # its Connection
    op: str                     # "eval" | "initial" (states) | "recurrent" (latents, actions)
    arrays: list                # the request's arrays, rows first


class _Server:
    """The serving loop's state: the network's evaluator, the clients, the counters."""

    def __init__(self, listener, run, config, device):
        from azero.algorithms import algorithm_for

        self.listener = listener
        self.run = run
        self.config = config
        self.device = device
        self.game = config.make_game()
        # the algorithm's evaluator of a network (a snapshot): AlphaZero's make_evaluator,
        # MuZero's MuZeroEvaluator; the search half needs no run directory
        self.kit = algorithm_for(config).games(None, self.game, config, -1)
        self.muzero = config.algorithm == "muzero"
        self.clients: list = []
        self._accepted: list = []               # connections the accept thread added
        self._lock = threading.Lock()
        self._wake_reader, self._wake_writer = mp.Pipe(duplex=False)
        self.stats = {"batches": 0, "rows": 0, "requests": 0, "multi_client_batches": 0,
                      "max_clients_per_batch": 0, "clients_dropped": 0, "reloads": 0,
                      "errors": 0}
        self._load()
        self._last_poll = time.monotonic()
        threading.Thread(target=self._accept, name="azero-inference-accept", daemon=True).start()

    def _load(self) -> None:
        from azero import checkpoint as ckpt

        self.generation, net = ckpt.load_best(self.run, self.game.spec.name, self.device)
        self.evaluator = self.kit.evaluator(net, self.device)

    def _accept(self) -> None:
        """Adds each client that connects with the key (a wrong key is logged and refused)."""
        while True:
            try:
                conn = self.listener.accept()
            except Exception as e:          # a wrong key, a client gone mid-handshake
                log.warning("inference server: refused a connection (%s: %s)",
                            type(e).__name__, e)
                time.sleep(0.01)
                continue
            with self._lock:
                self._accepted.append(conn)
            self._wake_writer.send_bytes(b"")

    def serve(self, stop_event, parent: int) -> None:
        sp = self.config.selfplay
        while not stop_event.is_set() and os.getppid() == parent:
            self._poll_network()
            ready = wait([self._wake_reader, *self.clients], timeout=IDLE_SECONDS)
            if self._wake_reader in ready:
                self._take_new_clients()
            requests, rows = self._read(c for c in ready if c is not self._wake_reader)
            if requests and sp.inference_server_wait_ms > 0:
                deadline = time.monotonic() + sp.inference_server_wait_ms / 1000.0
                while rows < sp.inference_server_max_batch:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    asked = set(r.client for r in requests)   # each waits for its answer
                    more = wait([c for c in self.clients if c not in asked], timeout=left)
                    if not more:
                        break
                    extra, extra_rows = self._read(more, rows)
                    requests += extra
                    rows += extra_rows
            if requests:
                self._answer(requests)
            # the next round starts its reading with other clients (no client waits behind the
            # cap every round)
            if self.clients:
                self.clients.append(self.clients.pop(0))

    def _take_new_clients(self) -> None:
        while self._wake_reader.poll():
            self._wake_reader.recv_bytes()
        with self._lock:
            self.clients += self._accepted
            self._accepted = []

    def _drop(self, conn) -> None:
        if conn in self.clients:
            self.clients.remove(conn)
            self.stats["clients_dropped"] += 1
        try:
            conn.close()
        except OSError:
            pass

    def _read(self, connections, rows: int = 0) -> tuple[list[_Request], int]:
        """The evaluation requests of `connections` (each has one ready), until
        inference_server_max_batch rows are taken (the rest stay in their sockets for the next
        round); control requests (info, stats) and bad ones are answered at once."""
        requests, taken = [], 0
        for conn in connections:
            if rows + taken >= self.config.selfplay.inference_server_max_batch:
                break
            try:
                op, meta, arrays = decode(conn.recv_bytes())
            except (EOFError, OSError):         # the client is gone (a killed worker)
                self._drop(conn)
                continue
            except ValueError as e:
                self._reply(conn, "error", {"message": f"malformed message: {e}"})
                continue
            if op in ("info", "stats"):
                self._reply(conn, op, self._info() if op == "info" else self._stats())
                continue
            problem = self._check(op, arrays)
            if problem is not None:
                self.stats["errors"] += 1
                self._reply(conn, "error", {"message": problem})
                continue
            requests.append(_Request(conn, op, arrays))
            taken += len(arrays[0])
        return requests, taken

    def _check(self, op: str, arrays: list) -> str | None:
        """What is wrong with an evaluation request, or None."""
        spec = self.game.spec
        if op in ("eval", "initial"):
            if op == "initial" and not self.muzero:
                return "initial: this server holds an AlphaZero network (ask eval)"
            if len(arrays) != 1 or arrays[0].ndim != 2 or arrays[0].shape[1] != spec.state_size:
                return f"{op}: want one array of states [L, {spec.state_size}]"
            if arrays[0].dtype != np.dtype(spec.state_dtype):
                return f"{op}: states must be {np.dtype(spec.state_dtype)}, got {arrays[0].dtype}"
            return None
        if op == "recurrent":
            if not self.muzero:
                return "recurrent: this server holds an AlphaZero network"
            latent_shape = tuple(self.evaluator.latent_shape)
            if (len(arrays) != 2 or arrays[0].shape[1:] != latent_shape
                    or arrays[0].dtype != np.float32 or arrays[1].shape != arrays[0].shape[:1]):
                return (f"recurrent: want latents float32 [L, {', '.join(map(str, latent_shape))}] "
                        f"and actions [L]")
            return None
        return f"unknown request {op!r}"

    def _answer(self, requests: list[_Request]) -> None:
        """One evaluator call per kind of request; each client gets its rows' answers."""
        clients = len(set(id(r.client) for r in requests))
        rows = sum(len(r.arrays[0]) for r in requests)
        self.stats["batches"] += 1
        self.stats["requests"] += len(requests)
        self.stats["rows"] += rows
        self.stats["multi_client_batches"] += int(clients > 1)
        self.stats["max_clients_per_batch"] = max(self.stats["max_clients_per_batch"], clients)
        for op in ("eval", "initial", "recurrent"):
            mine = [r for r in requests if r.op == op]
            if not mine:
                continue
            columns = [np.concatenate([r.arrays[k] for r in mine]) for k in range(len(mine[0].arrays))]
            answers = self._evaluate(op, columns)        # each [rows, ...]
            sizes = np.array([len(r.arrays[0]) for r in mine])
            ends = np.cumsum(sizes)
            for r, start, end in zip(mine, ends - sizes, ends):
                self._reply(r.client, op, {"generation": self.generation},
                            [a[start:end] for a in answers])

    def _evaluate(self, op: str, columns: list[np.ndarray]) -> list[np.ndarray]:
        """The evaluator's answers as host arrays [rows, ...]: eval -> (logits, values);
        initial -> (latents float32, logits, values); recurrent -> (latents, rewards, logits,
        values)."""
        ev = self.evaluator
        if op == "eval":
            return list(ev(columns[0]))
        import torch
        if op == "initial":
            latents, logits, values = ev.initial(columns[0])
            return [latents.float().cpu().numpy(), logits, values]
        # columns are fresh arrays (np.concatenate), writable as torch wants
        latents = torch.from_numpy(columns[0]).to(ev.device, dtype=ev.latent_dtype)
        latents, rewards, _, logits, values = ev.recurrent(latents, columns[1])
        return [latents.float().cpu().numpy(), rewards, logits, values]

    def _reply(self, conn, op: str, meta: dict, arrays=()) -> None:
        try:
            conn.send_bytes(encode(op, meta, arrays))
        except OSError:                         # the client is gone
            self._drop(conn)

    def _info(self) -> dict:
        info = {"generation": self.generation, "algorithm": self.config.algorithm,
                "num_actions": int(self.game.spec.num_actions)}
        if self.muzero:
            info.update(latent_shape=list(self.evaluator.latent_shape),
                        discount=float(self.evaluator.discount))
        return info

    def _stats(self) -> dict:
        return {**self.stats, "clients": len(self.clients), "generation": self.generation}

    def _poll_network(self) -> None:
        """Load the best network when best.json names a new generation."""
        if time.monotonic() - self._last_poll < self.config.selfplay.checkpoint_poll_seconds:
            return
        self._last_poll = time.monotonic()
        info = self.run.read_best_info()
        if info is not None and info["generation"] != self.generation:
            self._load()
            self.stats["reloads"] += 1


# --- the loop's side -------------------------------------------------------------------------

class InferenceServer:
    """The server process, seen from the process that starts it. `start` binds HOST:PORT (port 0:
    any free port; `endpoint` then names the real one) with a fresh random key and waits until
    the best network is loaded; `restart` starts a new process on the same endpoint."""

    def __init__(self, run_root, config, host: str = "127.0.0.1", port: int = 0):
        self._ctx = mp.get_context("spawn")
        self._run_root = str(run_root)
        self._config_dict = config.to_dict()
        self._host, self._port = host, port
        self._authkey = os.urandom(16)
        self._stop_event = self._ctx.Event()
        self.process = None

    @property
    def endpoint(self) -> str:
        """HOST:PORT/KEY, once started."""
        if self._port == 0:
            raise RuntimeError("the inference server has not started")
        return format_endpoint(self._host, self._port, self._authkey)

    def start(self, timeout: float = START_SECONDS) -> None:
        """RuntimeError naming the cause when the server cannot bind or load the network."""
        reader, writer = self._ctx.Pipe(duplex=False)
        self._stop_event.clear()
        self.process = self._ctx.Process(
            target=_serve, name="azero-inference-server", daemon=True,
            args=(self._run_root, self._config_dict, self._host, self._port, self._authkey,
                  writer, self._stop_event, os.getpid()))
        start_ignoring_sigint(self.process)
        writer.close()
        deadline = time.monotonic() + timeout
        while not reader.poll(0.1):
            if not self.process.is_alive() or time.monotonic() > deadline:
                self.stop(timeout=1.0)
                raise RuntimeError(f"the inference server did not start within {timeout:g} s"
                                   if self.process.exitcode is None else
                                   f"the inference server exited at start-up (code "
                                   f"{self.process.exitcode})")
        try:
            status, detail = reader.recv()
        except EOFError:
            self.process.join(5.0)
            status, detail = "error", f"exited at start-up (code {self.process.exitcode})"
        if status != "ready":
            self.stop(timeout=1.0)
            raise RuntimeError(f"the inference server at {self._host}:{self._port} could not "
                               f"start: {detail}")
        self._port = int(detail)

    def is_alive(self) -> bool:
        return self.process is not None and self.process.is_alive()

    def restart(self) -> None:
        self.stop(timeout=1.0)
        self.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        self._stop_event.set()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5.0)


def with_endpoint(config, endpoint: str):
    """A copy of `config` whose workers reach the server at `endpoint`."""
    return dataclasses.replace(config, selfplay=dataclasses.replace(
        config.selfplay, inference_server_endpoint=endpoint))


def server_host(backend) -> str:
    """The address the workers of `backend` reach this machine at: the loopback for local
    processes, this node's IP for Ray actors (which may run on other nodes)."""
    if backend.name == "ray":
        import ray
        return ray.util.get_node_ip_address()
    return "127.0.0.1"


class ServedPool(WorkerPool):
    """A backend's worker pool behind an inference server: `start` starts the server, then the
    pool with the server's endpoint in its workers' config; `check` restarts a dead server on the
    same endpoint (more than `max_restarts` within `restart_window` s make it raise, as the pools
    do for their workers) and the pool's dead workers; `stop` stops the pool, then the server."""

    def __init__(self, backend, run, config, *, host: str | None = None, max_restarts: int = 20,
                 restart_window: float = 3600.0):
        self._backend, self._run, self._config = backend, run, config
        self._host = host
        self._max_restarts, self._restart_window = max_restarts, restart_window
        self._restart_times: list[float] = []
        self.server: InferenceServer | None = None
        self.pool: WorkerPool | None = None

    def start(self) -> None:
        self.server = InferenceServer(self._run.root, self._config,
                                      self._host or server_host(self._backend))
        self.server.start()
        try:
            self.pool = self._backend.pool(self._run, with_endpoint(self._config,
                                                                    self.server.endpoint))
            self.pool.start()
        except BaseException:
            self.server.stop()
            raise

    def check(self) -> list[str]:
        lines = []
        if self.server is not None and not self.server.is_alive():
            code = self.server.process.exitcode
            now = time.monotonic()
            self._restart_times = [t for t in self._restart_times
                                   if t >= now - self._restart_window] + [now]
            if len(self._restart_times) > self._max_restarts:
                raise RuntimeError(f"the inference server keeps dying (exit code {code}); gave up "
                                   f"after {self._max_restarts} restarts within "
                                   f"{self._restart_window:g} s")
            self.server.restart()
            lines.append(f"inference server exited with code {code}; restarted")
        return lines + (self.pool.check() if self.pool is not None else [])

    def stop(self, timeout: float = 10.0) -> None:
        try:
            if self.pool is not None:
                self.pool.stop(timeout)
        finally:
            if self.server is not None:
                self.server.stop()


def pool_for_run(backend, run, config) -> WorkerPool:
    """The run's self-play pool: the backend's own, behind an inference server when
    selfplay.inference_server is on."""
    if config.selfplay.inference_server:
        return ServedPool(backend, run, config)
    return backend.pool(run, config)


__all__ = ["InferenceServer", "ServedPool", "decode", "encode", "format_endpoint",
           "parse_endpoint", "pool_for_run", "with_endpoint"]
