"""The self-play worker: a process that plays games with the current best network and writes them
as replay shards. It talks to the rest of the run only through files (RunDir), so any pool backend
(azero/pool.py) can host it.

    worker(worker_id, stop_event, run_dir, config_dict)
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np

# Finished games wait in memory for at most this long before they are written, so a kill loses
# little more than the games in flight even when shards fill slowly.
MAX_UNWRITTEN_SECONDS = 60.0
# While the run's selfplay.pause file exists (the trainer is behind), check again this often.
PAUSE_POLL_SECONDS = 0.2


def selfplay_worker(worker_id: int, stop_event, run_dir: str, config_dict: dict) -> None:
    """Play until `stop_event` is set, SIGTERM arrives or the parent dies. A new best network
    (checkpoints/best.json's generation changes) is loaded between moves without a restart.
    Ctrl-C goes to the parent, which sets the event; the worker then writes the games it has
    finished and exits."""
    terminating = []
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: terminating.append(signum))
    from azero import checkpoint as ckpt
    from azero.config import Config
    from azero.loop import algorithm_for
    from azero.nets import resolve_device, set_torch_threads
    from azero.records import GameRecord, open_record_writer, record_format
    from azero.rundir import RunDir
    from azero.selfplay import SelfPlay

    config = Config.from_dict(config_dict)
    sp_cfg = config.selfplay
    set_torch_threads(sp_cfg.threads_per_worker, processes=sp_cfg.workers + 1)
    run = RunDir.at(run_dir)
    game = config.make_game()
    device = resolve_device(config.train.device)
    # the algorithm's search and storage (AlphaZeroGames below; MuZero's: azero/muzero/selfplay.py)
    kit = algorithm_for(config).games(run, game, config, worker_id)
    writer = kit.writer

    generation, net = _load_best(run, game.spec.name, device, ckpt)
    evaluator = kit.evaluator(net, device)                  # remade on a new best
    seed = np.random.SeedSequence([config.seed, worker_id, os.getpid(), time.time_ns()])
    selfplay = SelfPlay(game, config.search, sp_cfg, seed=seed,
                        make_search=kit.search_factory(evaluator))
    records = open_record_writer(
        game, run.games / f"selfplay-w{worker_id:03d}{record_format(game.spec.name).suffix}")
    tally = _Tally()
    last_poll = last_write = time.monotonic()
    parent = os.getppid()

    def write(path) -> None:
        nonlocal last_write
        last_write = time.monotonic()
        if path is not None:
            run.log_metrics("selfplay", worker=worker_id, generation=generation, **tally.take())

    def write_if_stale() -> None:
        """Write the pending finished games once MAX_UNWRITTEN_SECONDS have passed since the
        last write."""
        if writer.pending_games and time.monotonic() - last_write >= MAX_UNWRITTEN_SECONDS:
            write(writer.flush())

    try:
        # A parent killed with SIGKILL cannot stop us: leave when we are orphaned.
        while not stop_event.is_set() and not terminating and os.getppid() == parent:
            if run.selfplay_paused():           # the trainer is behind: let it catch up
                write_if_stale()
                paused_since = time.monotonic()
                time.sleep(PAUSE_POLL_SECONDS)
                tally.paused += time.monotonic() - paused_since
                continue
            finished = selfplay.play_move(evaluator)
            tally.played += sp_cfg.games_per_worker          # one move in every game
            for g in finished:
                tally.add(g)
                player = f"{config.game}-generation-{generation}"
                records.write(GameRecord(
                    game=config.game, players=(player, player),
                    moves=g.opening.tolist() + g.actions.tolist(),
                    result=None if g.truncated else (g.result_first_player + 1) / 2,
                    opening_plies=len(g.opening),
                    info={"generation": generation, "resigned": g.resigned,
                          "truncated": g.truncated, "selfplay": True}))
                if not g.for_training:              # truncated, selfplay.truncated_value_target: drop
                    continue
                write(kit.add_game(g, generation))
            write_if_stale()
            if time.monotonic() - last_poll >= sp_cfg.checkpoint_poll_seconds:
                last_poll = time.monotonic()
                info = run.read_best_info()
                if info is not None and info["generation"] != generation:
                    generation, net = _load_best(run, game.spec.name, device, ckpt)
                    evaluator = kit.evaluator(net, device)
                    make_search = kit.search_factory(evaluator)
                    if make_search is not None:     # a search bound to the old network
                        selfplay.search = make_search(sp_cfg.games_per_worker,
                                                      int(selfplay.rng.integers(2 ** 31)))
    finally:
        write(writer.flush())
        records.close()


class AlphaZeroGames:
    """How an AlphaZero self-play worker searches and stores its games: SelfPlay's BatchedSearch
    over the rules with the policy-value net as evaluator, and replay shards of the searched
    positions (azero/replay.py). The loop's algorithm object makes one per worker
    (azero.loop.AlphaZero.games); MuZero's is azero.muzero.selfplay.MuZeroGames."""

    def __init__(self, run, game, config, worker_id: int):
        from azero.replay import ShardWriter
        self.game = game
        self.writer = ShardWriter(run.replay, worker=worker_id,
                                  games_per_shard=config.selfplay.games_per_shard)

    def evaluator(self, net, device):
        """The evaluator of a newly loaded best network (a snapshot of its weights)."""
        from azero.nets import make_evaluator
        return make_evaluator(net, self.game, device, snapshot=True)

    def search_factory(self, evaluator):
        """SelfPlay's make_search for `evaluator`; None: SelfPlay's own BatchedSearch, which
        takes the evaluator at every run."""
        return None

    def add_game(self, g, generation: int):
        """Queue a finished game (selfplay.FinishedGame) for the shard writer; the shard's path
        when one was written."""
        # false_resignation: -1 no resignation was due, 0 it would have been right, 1 wrong.
        flag = -1 if g.false_resignation is None else int(g.false_resignation)
        # Ownership targets (int8 [T, H, W]) for games that have them (Go); a game either
        # always or never has them, so every game of a shard has the same fields.
        # ownership_weight (uint8 [T]) is 0 for games that did not end by the rules
        # (their target is zeros), so the fields never change between games.
        optional = {} if g.ownership_targets is None else {
            "ownership": g.ownership_targets,
            "ownership_weight": g.ownership_weight.astype(np.uint8)}
        return self.writer.add_game(
            g.states, g.policy_targets, g.value_targets,
            generation=np.full(len(g.value_targets), generation, np.int32),
            false_resignation=np.full(len(g.value_targets), flag, np.int8), **optional)


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


def _load_best(run, game_name: str, device, ckpt):
    """(generation, net) of the current best checkpoint, both read from best.pt itself."""
    loaded = ckpt.load(run.best, expected_game=game_name, device=device)
    return int(loaded.metadata.get("generation", 0)), loaded.model
