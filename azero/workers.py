"""The self-play worker: a process that plays games with the current best network and writes them
as replay shards. It talks to the rest of the run only through files (RunDir; and a socket to the
inference server where there is one), so the process pool (azero/pool.py) hosts it.

    selfplay_worker(worker_id, stop_event, run_dir, config_dict)

It is two halves that the Ray backend (azero/ray_pool.py) uses apart: GamePlayer plays the games
and touches no file (a Ray actor holds one on any node); GameSink writes a worker's finished games
into the run directory (the Ray driver holds one per actor). Under selfplay.inference_server the
playing half is inference_client.ServedPlayer instead, which holds no network and asks the run's
inference server (azero/inference_server.py) over a socket.
"""
from __future__ import annotations

import os
import signal
import time

# Finished games wait in memory for at most this long before they are written, so a kill loses
# little more than the games in flight even when shards fill slowly.
MAX_UNWRITTEN_SECONDS = 60.0
# While the run's selfplay.pause file exists (the trainer is behind), check again this often.
PAUSE_POLL_SECONDS = 0.2


def selfplay_worker(worker_id: int, stop_event, run_dir: str, config_dict: dict) -> None:
    """Play until `stop_event` is set, SIGTERM arrives or the parent dies. A new best network
    (checkpoints/best.json's generation changes) is loaded between moves without a restart (by the
    inference server instead, when there is one: the generation then comes with its replies).
    Ctrl-C goes to the parent, which sets the event; the worker then writes the games it has
    finished and exits."""
    terminating = []
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: terminating.append(signum))
    from azero import checkpoint as ckpt
    from azero.config import Config
    from azero.algorithms import algorithm_for
    from azero.nets import resolve_device, set_torch_threads
    from azero.rundir import RunDir

    config = Config.from_dict(config_dict)
    sp_cfg = config.selfplay
    set_torch_threads(sp_cfg.threads_per_worker, processes=sp_cfg.workers + 1)
    run = RunDir.at(run_dir)
    game = config.make_game()
    device = resolve_device(config.train.device)
    # the algorithm's search and storage (selfplay.AlphaZeroGames; MuZero's: muzero/selfplay.py)
    kit = algorithm_for(config).games(run, game, config, worker_id)
    if sp_cfg.inference_server:     # the server holds the network; replies name its generation
        from azero.inference_client import ServedPlayer
        player = ServedPlayer(config, game, kit, worker_id)
    else:
        player = GamePlayer(config, game, kit, worker_id, device,
                            *ckpt.load_best(run, game.spec.name, device))
    sink = GameSink(run, config, game, kit, worker_id)
    last_poll = time.monotonic()
    parent = os.getppid()
    try:
        # A parent killed with SIGKILL cannot stop us: leave when we are orphaned.
        while not stop_event.is_set() and not terminating and os.getppid() == parent:
            if run.selfplay_paused():           # the trainer is behind: let it catch up
                sink.write_if_stale()
                paused_since = time.monotonic()
                time.sleep(PAUSE_POLL_SECONDS)
                sink.tally.paused += time.monotonic() - paused_since
                continue
            finished = player.play_move()
            sink.tally.played += sp_cfg.games_per_worker          # one move in every game
            sink.add(finished, player.generation)
            sink.write_if_stale()
            if (not sp_cfg.inference_server
                    and time.monotonic() - last_poll >= sp_cfg.checkpoint_poll_seconds):
                last_poll = time.monotonic()
                info = run.read_best_info()
                if info is not None and info["generation"] != player.generation:
                    player.use_network(*ckpt.load_best(run, game.spec.name, device))
    finally:
        try:
            sink.close()
        finally:
            if sp_cfg.inference_server:
                player.close()


class GamePlayer:
    """The playing half of a self-play worker: `games_per_worker` games in lockstep with the
    current best network, one batched move at a time. It touches no file, so the same object
    serves a local worker process and a Ray actor on another machine (azero/ray_pool.py)."""

    def __init__(self, config, game, kit, worker_id: int, device, generation: int, net):
        from azero.selfplay import SelfPlay, worker_seed

        self.config = config
        self.kit = kit                      # the algorithm's search half (kit.evaluator, ...)
        self.device = device
        self.generation = int(generation)   # of the network in use
        self.evaluator = kit.evaluator(net, device)
        seed = worker_seed(config, worker_id)
        self.selfplay = SelfPlay(game, config.search, config.selfplay, seed=seed,
                                 make_search=kit.search_factory(self.evaluator))

    def use_network(self, generation: int, net) -> None:
        """Play the next moves with `net` (a snapshot of its weights), promoted as `generation`."""
        self.generation = int(generation)
        self.evaluator = self.kit.evaluator(net, self.device)
        make_search = self.kit.search_factory(self.evaluator)
        if make_search is not None:     # a search bound to the old network
            self.selfplay.search = make_search(self.config.selfplay.games_per_worker,
                                               int(self.selfplay.rng.integers(2 ** 31)))

    def play_move(self) -> list:
        """One move in every game; the games it finished (selfplay.FinishedGame)."""
        return self.selfplay.play_move(self.evaluator)


class GameSink:
    """The storing half of a self-play worker, on the machine that holds the run directory: a
    worker's finished games go to its game records (games/selfplay-w<id>.*) at once and to the
    algorithm's replay writer (kit.add_game: atomic shards of games_per_shard games), and each
    shard written logs a "selfplay" metrics record. Finished games wait unwritten at most
    MAX_UNWRITTEN_SECONDS (write_if_stale), so a kill loses little more than the games in flight.
    A local worker keeps its own; the Ray backend keeps one per actor on the driver."""

    def __init__(self, run, config, game, kit, worker_id: int):
        from azero.records import open_record_writer, record_format

        self.run = run
        self.config = config
        self.kit = kit
        self.worker_id = worker_id
        self.records = open_record_writer(
            game, run.games / f"selfplay-w{worker_id:03d}{record_format(game.spec.name).suffix}")
        self.tally = _Tally()
        self.generation: int | None = None      # of the newest game added (for the metrics)
        self._last_write = time.monotonic()

    def add(self, finished: list, generation: int) -> None:
        """Record finished games (selfplay.FinishedGame) played by the network of `generation`
        and queue those for training with the replay writer (a shard when enough are queued)."""
        from azero.records import GameRecord

        self.generation = generation
        for g in finished:
            self.tally.add(g)
            player = f"{self.config.game}-generation-{generation}"
            self.records.write(GameRecord(
                game=self.config.game, players=(player, player),
                moves=g.opening.tolist() + g.actions.tolist(),
                result=None if g.truncated else (g.result_first_player + 1) / 2,
                opening_plies=len(g.opening),
                info={"generation": generation, "resigned": g.resigned,
                      "truncated": g.truncated, "selfplay": True}))
            if not g.for_training:              # truncated, selfplay.truncated_value_target: drop
                continue
            self._wrote(self.kit.add_game(g, generation))

    def write_if_stale(self) -> None:
        """Write the queued finished games once MAX_UNWRITTEN_SECONDS have passed since the last
        write."""
        if (self.kit.writer.pending_games
                and time.monotonic() - self._last_write >= MAX_UNWRITTEN_SECONDS):
            self._wrote(self.kit.writer.flush())

    def close(self) -> None:
        """Write every queued game and close the records."""
        try:
            self._wrote(self.kit.writer.flush())
        finally:
            self.records.close()

    def _wrote(self, path) -> None:
        if path is not None:
            self._last_write = time.monotonic()
            self.run.log_metrics("selfplay", worker=self.worker_id, generation=self.generation,
                                 **self.tally.take())


class _Tally:
    """Self-play counts between two shard writes, for the run's metrics."""

    def __init__(self) -> None:
        self.take()

    def add(self, g) -> None:
        self.games += 1
        self.positions += len(g.value_targets) if g.for_training else 0   # written to replay
        self.resigned += int(g.resigned)
        self.truncated += int(g.truncated)
        if g.false_resignation is not None:
            self.resign_checked += 1
            self.false_resignations += int(g.false_resignation)

    def take(self) -> dict:
        now = time.monotonic()
        out = {}
        if hasattr(self, "since"):
            seconds = max(1e-9, now - self.since - self.paused)
            # positions: of the games finished (stored); positions_per_second: moves searched
            # and played, finished or not (games finish in bursts, moves do not), over the
            # time not spent paused (selfplay.pause).
            out = {"games": self.games, "positions": self.positions, "resigned": self.resigned,
                   "truncated": self.truncated,
                   "resign_checked": self.resign_checked,
                   "false_resignations": self.false_resignations,
                   "positions_per_second": self.played / seconds}
        self.games = self.positions = self.resigned = self.truncated = self.played = 0
        self.resign_checked = self.false_resignations = 0
        self.paused = 0.0
        self.since = now
        return out
