"""A self-play worker's side of the inference server (azero/inference_server.py): evaluators that
ask the server, and ServedPlayer, a workers.GamePlayer whose games are split into groups that
keep two or more batches in flight.

    connect(endpoint, game)   -> RemoteEvaluator (AlphaZero: the Evaluator contract of
                                 azero/search.py) or RemoteMuZeroEvaluator (MuZeroEvaluator's
                                 initial / recurrent, for MuZeroSearch), as the server's network is
    ServedPlayer(config, game, kit, worker_id)

A reply that does not come within `reply_timeout` seconds, or a connection the server closed,
raises InferenceServerError naming the server: a worker never hangs on a dead server; it exits,
its pool restarts it, and it connects again (waiting up to `connect_timeout` s for a server that
is being restarted).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from multiprocessing.connection import Client

import numpy as np

from azero.inference_server import decode, encode, parse_endpoint

# How long a client waits for a reply: a forward pass, or a network being reloaded.
REPLY_SECONDS = 120.0
# How long a client tries to connect (the server may be starting or restarting).
CONNECT_SECONDS = 60.0


class InferenceServerError(ConnectionError):
    """The inference server did not answer, closed the connection or refused a request."""


class _Channel:
    """One connection to the server; one request at a time, each answered before the next."""

    def __init__(self, endpoint: str, reply_timeout: float, connect_timeout: float):
        self.address, authkey = parse_endpoint(endpoint)
        self.name = f"{self.address[0]}:{self.address[1]}"
        self.reply_timeout = reply_timeout
        deadline = time.monotonic() + connect_timeout
        while True:
            try:
                self.conn = Client(self.address, authkey=authkey)
                break
            except (ConnectionRefusedError, ConnectionResetError, EOFError) as e:
                if time.monotonic() > deadline:
                    raise InferenceServerError(
                        f"no inference server answers at {self.name} after {connect_timeout:g} s "
                        f"({type(e).__name__}); a worker on another machine must reach this port "
                        f"of the driver") from None
                time.sleep(0.2)
            except OSError as e:
                raise InferenceServerError(f"cannot reach the inference server at {self.name}: "
                                           f"{e}") from None
            except Exception as e:      # multiprocessing.AuthenticationError: another key
                raise InferenceServerError(f"the inference server at {self.name} refused this "
                                           f"worker ({type(e).__name__}: {e})") from None
        self.info = self.request("info")[0]
        self.generation = int(self.info["generation"])  # of the network of the last reply

    def request(self, op: str, *arrays) -> tuple[dict, list[np.ndarray]]:
        """Send a request, wait for its answer: (meta, arrays)."""
        try:
            self.conn.send_bytes(encode(op, None, arrays))
            if not self.conn.poll(self.reply_timeout):
                raise InferenceServerError(
                    f"the inference server at {self.name} sent no reply within "
                    f"{self.reply_timeout:g} s (hung or overloaded)")
            answer, meta, out = decode(self.conn.recv_bytes())
        except (EOFError, OSError) as e:
            if isinstance(e, InferenceServerError):
                raise
            raise InferenceServerError(f"the inference server at {self.name} closed the "
                                       f"connection ({type(e).__name__}): it died or "
                                       f"stopped") from None
        if answer == "error":
            raise InferenceServerError(f"the inference server at {self.name} refused a request: "
                                       f"{meta['message']}")
        if "generation" in meta:
            self.generation = int(meta["generation"])
        return meta, out

    def close(self) -> None:
        try:
            self.conn.close()
        except OSError:
            pass


class RemoteEvaluator:
    """The Evaluator contract over the server: states [L, S] -> (logits float32 [L, A], values
    float32 [L], side to move's view). `generation`: of the network that made the last reply."""

    def __init__(self, channel: _Channel, game):
        self.channel = channel
        self.game = game
        self.num_actions = int(game.spec.num_actions)

    @property
    def generation(self) -> int:
        return self.channel.generation

    def __call__(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        states = np.asarray(states, self.game.spec.state_dtype)
        if len(states) == 0:
            return np.zeros((0, self.num_actions), np.float32), np.zeros(0, np.float32)
        _, (logits, values) = self.channel.request("eval", states)
        return logits, values

    def server_stats(self) -> dict:
        """The server's counters (batches, rows, multi_client_batches, clients, ...)."""
        return self.channel.request("stats")[0]

    def close(self) -> None:
        self.channel.close()


class RemoteMuZeroEvaluator(RemoteEvaluator):
    """MuZeroEvaluator's face over the server, for MuZeroSearch: initial(states) and
    recurrent(latents, actions). Latents are float32 torch tensors on this host's CPU (the
    search's TorchNodeStore keeps them there); they travel to the server and back as host arrays
    at every call (on a GPU server, a copy each way: the batching is what pays)."""

    def __init__(self, channel: _Channel, game):
        import torch

        super().__init__(channel, game)
        info = channel.info
        self.latent_shape = tuple(int(d) for d in info["latent_shape"])
        self.latent_dtype = torch.float32
        self.device = torch.device("cpu")
        self.discount = float(info["discount"])

    def initial(self, states: np.ndarray):
        """states [N, S] -> (latents float32 [N, *L] (torch, cpu), logits float32 [N, A],
        values float32 [N])."""
        import torch
        _, (latents, logits, values) = self.channel.request(
            "initial", np.asarray(states, self.game.spec.state_dtype))
        return torch.from_numpy(latents.copy()), logits, values

    def recurrent(self, latents, actions: np.ndarray) -> tuple:
        """ModelSearch's recurrent_fn: (next latents, rewards, None, logits, values)."""
        import torch
        _, (latents, rewards, logits, values) = self.channel.request(
            "recurrent", latents.detach().float().cpu().numpy(), np.asarray(actions, np.int64))
        return torch.from_numpy(latents.copy()), rewards, None, logits, values


def connect(endpoint: str, game, *, reply_timeout: float = REPLY_SECONDS,
            connect_timeout: float = CONNECT_SECONDS) -> RemoteEvaluator:
    """An evaluator over the server at `endpoint` (HOST:PORT/KEY), of the kind its network needs:
    RemoteMuZeroEvaluator for a MuZero network, else RemoteEvaluator."""
    channel = _Channel(endpoint, reply_timeout, connect_timeout)
    kind = RemoteMuZeroEvaluator if channel.info["algorithm"] == "muzero" else RemoteEvaluator
    return kind(channel, game)


class ServedPlayer:
    """workers.GamePlayer's face (play_move, generation) over the inference server: the worker's
    games_per_worker games are split into selfplay.inference_groups groups (sizes differing by
    one at most), each a SelfPlay with its own connection, and play_move moves every group once,
    each in its own thread: while one group waits for its batch (the socket wait releases the
    GIL), another runs its tree work, so the worker has that many batches in flight. The groups
    share nothing but the game (pure functions) and the kit (a factory); each SelfPlay, search and
    generator is its own. No network is loaded here."""

    def __init__(self, config, game, kit, worker_id: int, endpoint: str | None = None, **connect_args):
        from azero.selfplay import SelfPlay, worker_seed

        sp = config.selfplay
        endpoint = endpoint or sp.inference_server_endpoint
        if endpoint is None:
            raise ValueError("selfplay.inference_server_endpoint is not set (the loop sets it "
                             "when it starts the inference server)")
        sizes = [len(rows) for rows in np.array_split(np.arange(sp.games_per_worker),
                                                      min(sp.inference_groups, sp.games_per_worker))]
        seeds = worker_seed(config, worker_id).spawn(len(sizes))
        self.evaluators = []
        try:
            for _ in sizes:
                self.evaluators.append(connect(endpoint, game, **connect_args))
        except BaseException:
            self.close()
            raise
        self.groups = []
        self._bound = False         # whether a search is bound to one network (MuZero's)
        for size, seed, ev in zip(sizes, seeds, self.evaluators):
            make_search = kit.search_factory(ev)
            self._bound = make_search is not None
            self.groups.append(SelfPlay(game, config.search,
                                        dataclasses.replace(sp, games_per_worker=size),
                                        seed=seed, make_search=make_search))
        self._generations = [ev.generation for ev in self.evaluators]   # at each group's last move

    @property
    def generation(self) -> int:
        """The newest generation that answered (a move may straddle a promotion)."""
        return max(ev.generation for ev in self.evaluators)

    def play_move(self) -> list:
        """One move in every game of every group; the games it finished (FinishedGame). The first
        group's error (InferenceServerError) is raised after every group's move has ended."""
        results: list = [None] * len(self.groups)

        def move(i: int) -> None:
            try:
                results[i] = self.groups[i].play_move(self.evaluators[i])
            except BaseException as e:       # raised in the caller's thread below
                results[i] = e

        # daemon threads: a worker that exits never waits for a group blocked on a dead server
        threads = [threading.Thread(target=move, args=(i,), daemon=True,
                                    name=f"azero-group-{i}") for i in range(1, len(self.groups))]
        for t in threads:
            t.start()
        move(0)
        for t in threads:
            t.join()
        finished = []
        for i, result in enumerate(results):
            if isinstance(result, BaseException):
                raise result
            finished += result
            generation = self.evaluators[i].generation
            if self._bound and generation != self._generations[i]:
                # a new network: the trees' latents are the old network's (as use_network's
                # new search for a local worker)
                self.groups[i].search.reset()
            self._generations[i] = generation
        return finished

    def close(self) -> None:
        for ev in self.evaluators:
            ev.close()


__all__ = ["CONNECT_SECONDS", "InferenceServerError", "REPLY_SECONDS", "RemoteEvaluator",
           "RemoteMuZeroEvaluator", "ServedPlayer", "connect"]
