"""The training loop: self-play workers -> replay shards -> trainer -> candidate -> gate -> best.

The algorithm (config.algorithm) is an object the loop asks for its trainer, replay, self-play
search and storage (AlphaZero below; MuZero: azero/muzero/loop.py); the loop itself is the same.

`run_loop` is the main job behind `azero selfplay`. The trainer and the gate run in this process;
self-play runs in the worker pool. Everything goes through the run directory (azero/rundir.py),
so the same call on the same run directory resumes a stopped or killed run:
  * replay shards are never rewritten; the buffer re-reads them (newest window) on start;
  * trainer.pt holds weights + optimizer + step as of the last candidate; training since then is
    redone, never half-saved;
  * best.pt carries its generation and Elo in its metadata; best.json (the workers' cheap poll
    signal) is rewritten from it on start;
  * best.pt also carries the gate record of its promotion, logged on start if a kill came before
    metrics.jsonl got it; a gate or anchor matches cut short are played again.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from azero import checkpoint as ckpt
from azero.atomic import atomic_write_bytes, remove_stale_temp_files
from azero.anchors import anchors_owed, check_anchors, describe_anchors, play_anchors
from azero.config import Config, ConfigError
from azero.rundir import RunDir
from azero.selfplay import check_random_openings

log = logging.getLogger("azero.loop")

ORPHAN_WRITE_GRACE_SECONDS = 60.0   # a shard write takes milliseconds: older temp files are dead


@dataclass(frozen=True)
class Limits:
    hours: float | None = None       # wall-clock bound of this invocation
    iterations: int | None = None    # candidates gated in this invocation

    def reached(self, started: float, iterations_done: int) -> bool:
        if self.hours is not None and time.monotonic() - started >= self.hours * 3600:
            return True
        return self.iterations is not None and iterations_done >= self.iterations


class AlphaZero:
    """What the loop asks of a training algorithm (config.algorithm): its trainer, its network's
    architecture, its replay, how its self-play workers search and store games, and a step
    run before each training chunk. MuZero's is azero.muzero.loop.MuZero."""
    name = "alphazero"

    def trainer_class(self):
        """A Trainer class: create(config, game, device), from_checkpoint(path, config), ..."""
        from azero.train import Trainer
        return Trainer

    def architecture(self, config: Config, spec) -> dict:
        """The architecture dict of the network config describes (what --init must match)."""
        from azero.nets import architecture_for
        return architecture_for(spec, config.model)

    def replay_dir(self, run: RunDir) -> Path:
        """Where the self-play workers write their shards."""
        return run.replay

    def buffer(self, run: RunDir, game, config: Config):
        """The trainer's replay over the workers' files."""
        from azero.replay import ReplayBuffer
        return ReplayBuffer(self.replay_dir(run), game, config.replay.window_positions)

    def games(self, run: RunDir, game, config: Config, worker_id: int):
        """A self-play worker's search and storage (azero.workers.AlphaZeroGames's face)."""
        from azero.workers import AlphaZeroGames
        return AlphaZeroGames(run, game, config, worker_id)

    def init_overrides(self, architecture: dict) -> dict:
        """Config keys (dotted) that make a config describe the network of `architecture`
        (`azero selfplay --init`)."""
        from azero.nets import model_settings_of
        return {f"model.{key}": value for key, value in model_settings_of(architecture).items()}

    def before_training(self, trainer, buffer, config: Config, game):
        """None, or a callable(steps) run before each chunk of `steps` optimizer steps in the
        trainer's process, returning figures (a dict) for that chunk's metrics record."""
        return None


def algorithm_for(config: Config):
    """The algorithm object of config.algorithm."""
    if config.algorithm == "muzero":
        from azero.muzero.loop import MuZero
        return MuZero()
    return AlphaZero()


def check_init(config: Config, init: str | Path | None) -> ckpt.Checkpoint | None:
    """The network a new run starts from (`azero selfplay --init CKPT`), loaded and checked before
    anything is written: CheckpointError if it is unreadable, of another game, of another
    algorithm (an AlphaZero network for a MuZero run, or the reverse) or of another architecture
    than the config's; ConfigError if the run has started already."""
    if init is None:
        return None
    run = RunDir.at(config.run_dir)
    if run.trainer_state.exists():
        raise ConfigError(f"--init: the run in {run.root} has started already; --init only starts "
                          "a new run (resume it without --init)")
    payload = ckpt.read_payload(init)
    source = str(payload.get("algorithm", "alphazero"))
    if source != config.algorithm:
        raise ckpt.CheckpointError(
            f"--init: {init} is a checkpoint of {source} and this run trains "
            f"{config.algorithm}: a {config.algorithm} run starts only from a {config.algorithm} "
            f"network (--algo {source} for a {source} run)")
    return ckpt.load(init, expected_game=config.game, expected_architecture=algorithm_for(
        config).architecture(config, config.make_game().spec))


def prepare_run(config: Config, init: ckpt.Checkpoint | None = None) -> RunDir:
    """Create the run directory and its first network (generation 0) if missing, and write the
    run's config. A new run's first network takes `init`'s weights (check_init) when given; its
    optimizer, step and schedule start afresh. Returns the RunDir."""
    check_anchors(config)
    run = RunDir.at(config.run_dir)
    run.make()
    # We hold the run's lock, so the trainer that wrote these temp files is dead; but self-play
    # workers it left behind finish their last shard for a second or two after it died (they
    # check on their parent between moves), so a young temp file in replay/ may still be theirs.
    for folder in (run.root, run.checkpoints, run.generation(0).parent, run.arena):
        remove_stale_temp_files(folder)
    remove_stale_temp_files(algorithm_for(config).replay_dir(run),
                            older_than=ORPHAN_WRITE_GRACE_SECONDS)
    atomic_write_bytes(run.config_file, config.to_yaml().encode())
    if not run.trainer_state.exists():
        game = config.make_game()
        trainer = algorithm_for(config).trainer_class().create(config, game, device="cpu")
        if init is not None:
            trainer.load_weights(init)
            run.log_metrics("init", checkpoint=str(init.path), source_step=init.step,
                            source_generation=init.metadata.get("generation"))
        trainer.save(run.trainer_state)
    if not run.best.exists():
        first = ckpt.load(run.trainer_state, expected_game=config.game)
        _write_best(run, first.model, config, step=first.step, generation=0, elo=0.0)
    _sync_best_info(run)
    return run


def _write_best(run: RunDir, model, config: Config, *, step: int, generation: int, elo: float,
                gate_record: dict | None = None) -> None:
    """best.pt (and its copy in generations/) with the generation, Elo and, for a promotion, the
    gate's metrics record, so that a kill before the record reaches metrics.jsonl loses nothing
    (`_gate_record_owed`)."""
    meta = {"generation": generation, "elo": elo}
    if gate_record is not None:
        meta["gate_record"] = gate_record
    ckpt.save(run.generation(generation), model, step=step, config=config, metadata=meta)
    atomic_write_bytes(run.best, run.generation(generation).read_bytes())
    run.write_best_info({"generation": generation, "elo": elo, "step": step})


def _sync_best_info(run: RunDir) -> dict:
    """best.json from best.pt's metadata (a kill between the two writes leaves them apart)."""
    payload = ckpt.read_payload(run.best)
    meta = payload.get("metadata") or {}
    info = {"generation": int(meta.get("generation", 0)), "elo": float(meta.get("elo", 0.0)),
            "step": int(payload["step"])}
    if run.read_best_info() != info:
        run.write_best_info(info)
    return info


def run_loop(config: Config, limits: Limits = Limits(), *, progress: bool | None = None,
             init: str | Path | None = None, backend=None) -> dict:
    """Run self-play, training and gating until `limits` or Ctrl-C. Returns a summary dict.
    `init`: a checkpoint whose network a new run starts from (see check_init). `backend`: where
    the self-play workers run (azero.pool.make_backend; None: processes of this machine).
    Raises RunDirBusy if another process is running in the same run directory."""
    from azero.pool import LocalBackend

    check_random_openings(config.selfplay, config.make_game())    # before anything is written
    init_checkpoint = check_init(config, init)
    backend = LocalBackend() if backend is None else backend
    with backend.connected(config), RunDir.at(config.run_dir).locked():
        return _run_locked(config, limits, progress, init_checkpoint, backend)


def _run_locked(config: Config, limits: Limits, progress: bool | None,
                init: ckpt.Checkpoint | None, backend) -> dict:
    from tqdm import tqdm

    from azero.nets import set_torch_threads

    run = prepare_run(config, init)
    game = config.make_game()
    algorithm = algorithm_for(config)
    sp, tc = config.selfplay, config.train
    set_torch_threads(tc.threads, processes=sp.workers + 1)
    trainer = algorithm.trainer_class().from_checkpoint(run.trainer_state, config)
    best = run.read_best_info()
    buffer = algorithm.buffer(run, game, config)
    before_training = algorithm.before_training(trainer, buffer, config, game)
    rng = np.random.default_rng(config.seed + trainer.step)
    elapsed_before = _elapsed_so_far(run)
    tb = _tensorboard(run, config)
    show_progress = config.log.progress if progress is None else progress

    pool = backend.pool(run, config)
    started = time.monotonic()
    iterations = 0
    run.log_metrics("start", step=trainer.step, generation=best["generation"],
                    elapsed=elapsed_before, workers=sp.workers, backend=backend.name)
    bar = tqdm(desc=f"{config.game} training", unit="step", initial=trainer.step,
               disable=not show_progress, dynamic_ncols=True)
    stop = _InterruptFlag()
    pacer = _SelfPlayPacer(run, config)
    pool.start()
    stop_reason = "limit"
    try:
        with stop.installed():
            buffer.refresh()                 # replay counts for the records logged here
            owed_record = _gate_record_owed(run, best)
            if owed_record is not None:
                owed_record = {**owed_record, **_strength(config, run.best)}
                run.log_metrics("gate", **owed_record, recovered=True)
                _announce(gate_line(owed_record))
            if _gate_owed(run, trainer.step, tc.checkpoint_every_steps):
                # Killed after the candidate was saved but before its gate finished.
                best = _gate(run, config, trainer.step, best, buffer, tb,
                             elapsed_before + time.monotonic() - started)
                iterations += 1
            elif anchors_owed(run, config, best):
                # Killed (or stopped) after a promotion, before its anchor matches ended.
                anchors = play_anchors(run, config, best["step"], best["generation"], tb)
                _announce(f"step {best['step']}: generation {best['generation']} | "
                          + describe_anchors(config.gate.anchors, anchors))
            while not limits.reached(started, iterations) and not stop.requested:
                for line in pool.check():
                    log.warning(line)
                    run.log_metrics("worker_restart", detail=line)
                buffer.refresh()
                owed = pacer.update(trainer, buffer.positions_seen)
                if owed == 0:
                    bar.set_postfix_str(_postfix(buffer, best, waiting=True), refresh=True)
                    time.sleep(0.5)
                    continue
                to_boundary = tc.checkpoint_every_steps - trainer.step % tc.checkpoint_every_steps
                steps = min(owed, to_boundary, config.log.every_steps)
                prepared = ({} if before_training is None or stop.requested
                            else before_training(steps))
                losses, done = _train_chunk(trainer, buffer, steps, rng, stop)
                if done == 0:
                    break
                bar.update(done)
                bar.set_postfix_str(_postfix(buffer, best, losses=losses, paused=pacer.paused),
                                    refresh=False)
                elapsed = elapsed_before + time.monotonic() - started
                if tb is not None:
                    for k, v in losses.items():
                        tb.add_scalar(f"train/{k}", v, trainer.step)
                    for k, v in buffer.stats().items():
                        tb.add_scalar(f"replay/{k}", v, trainer.step)
                run.log_metrics("train", step=trainer.step, elapsed=elapsed, **losses, **prepared,
                                selfplay_lead=pacer.lead, selfplay_paused=pacer.paused,
                                positions_forgiven=trainer.positions_forgiven,
                                **buffer.stats())
                if trainer.step % tc.checkpoint_every_steps == 0:
                    with stop.critical():
                        trainer.save(run.candidate(trainer.step))
                        trainer.save(run.trainer_state)
                    _prune_candidates(run, tc.keep_checkpoints)
                    best = _gate(run, config, trainer.step, best, buffer, tb,
                                 elapsed_before + time.monotonic() - started)
                    iterations += 1
        if stop.requested:
            stop_reason = "interrupted"
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    except BaseException:
        stop_reason = "error"
        raise
    finally:
        bar.close()
        pool.stop()
        pacer.release()
        # Our workers have stopped, and any left behind by a killed predecessor are long gone.
        remove_stale_temp_files(algorithm.replay_dir(run))
        # Save only a trainer that stopped between whole steps with sound weights: after an
        # error (NaN loss, out of memory, ...) the last saved state is the one to resume from.
        if stop_reason != "error" and _all_finite(trainer.net):
            trainer.save(run.trainer_state)
        elapsed = elapsed_before + time.monotonic() - started
        run.log_metrics("stop", reason=stop_reason, step=trainer.step, elapsed=elapsed,
                        generation=best["generation"], **buffer.stats())
        if tb is not None:
            tb.close()
    return {"reason": stop_reason, "step": trainer.step, "iterations": iterations,
            "generation": best["generation"], "elo": best["elo"], **buffer.stats()}


class _InterruptFlag:
    """Ctrl-C handling for the trainer process. The first SIGINT only sets `requested`: the loop
    stops between two optimizer steps (never inside one), or after the gate under way (raising
    inside it could land in numba's compiler callbacks, where the exception is lost). A second
    SIGINT raises KeyboardInterrupt at once, except inside a `critical()` block (an optimizer
    step, the candidate and trainer saves), which it lets finish first: the trainer saved on the
    way out is never a half-applied update, and a saved trainer.pt always has its candidate. The
    candidate and trainer state are saved before every gate, so nothing is lost but that gate."""

    def __init__(self) -> None:
        self.requested = False
        self._critical = 0
        self._deferred = False

    def _handler(self, signum, frame) -> None:
        if self.requested:
            if self._critical:
                self._deferred = True
                return
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after the current step or gate (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def critical(self):
        """A block that a second Ctrl-C does not cut: its KeyboardInterrupt comes at the end."""
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1
            if self._deferred and not self._critical:
                self._deferred = False
                raise KeyboardInterrupt

    @contextlib.contextmanager
    def installed(self):
        try:
            previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: leave SIGINT alone
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class _SelfPlayPacer:
    """Holds the ratio of training samples to self-play positions when self-play is faster than
    the trainer (a GPU with many workers). The lead is the self-play positions not yet paid for
    at train.train_samples_per_position (the trainer's owed steps, in positions).
      * Self-play pauses (RunDir.selfplay_pause_file) while the lead is more than
        train.max_selfplay_lead x replay.window_positions, and goes on once the trainer is back
        within it. Without the pause, the window would turn over before the trainer sampled it.
      * A lead beyond the whole window is written off (Trainer.forgive): those positions have
        left the window, and training them would mean many passes over the positions in it
        while self-play waits (a run resumed with a backlog, or the positions self-play wrote
        while a gate held the trainer).
    The lead is measured between training chunks from the shards written; a gate holds the
    trainer, and self-play goes on during it unless it was paused before."""

    def __init__(self, run: RunDir, config: Config):
        self.run = run
        tc = config.train
        self.positions_per_step = tc.batch_size / tc.train_samples_per_position
        self.window = config.replay.window_positions
        self.limit = (None if tc.max_selfplay_lead is None
                      else tc.max_selfplay_lead * self.window)
        self.lead = 0.0              # before the chunk this decides on (logged with it)
        self.paused = False
        run.set_selfplay_paused(False)      # a killed predecessor's pause is not ours

    def update(self, trainer, positions_seen: int) -> int:
        """Pause or release self-play for the trainer's lag; returns the steps owed now."""
        owed = trainer.steps_owed(positions_seen)
        if self.limit is not None and owed * self.positions_per_step > self.window:
            excess = int(owed * self.positions_per_step - self.window)
            trainer.forgive(excess)
            owed = trainer.steps_owed(positions_seen)
        self.lead = owed * self.positions_per_step
        paused = self.limit is not None and self.lead > self.limit
        if paused != self.paused:
            self.run.set_selfplay_paused(paused)
            self.paused = paused
        return owed

    def release(self) -> None:
        self.run.set_selfplay_paused(False)
        self.paused = False


def _train_chunk(trainer, buffer, steps: int, rng, stop: _InterruptFlag) -> tuple[dict, int]:
    """Up to `steps` optimizer steps, stopping early on a stop request. Returns the mean of each
    loss and the number of steps taken."""
    totals: dict[str, float] = {}
    done = 0
    for _ in range(steps):
        if stop.requested:
            break
        batch = trainer.sample_batch(buffer, rng)
        with stop.critical():
            losses = trainer.train_step(batch)
        for k, v in losses.items():
            totals[k] = totals.get(k, 0.0) + v
        done += 1
    return {k: v / max(1, done) for k, v in totals.items()}, done


def _all_finite(net) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in net.parameters())


def _gate_record_owed(run: RunDir, best: dict) -> dict | None:
    """The gate record of the promotion that made `best`, when a kill came after best.pt was
    written but before the record reached metrics.jsonl (the solver figures run in between);
    None when it is logged already, or for generation 0."""
    if best["generation"] == 0 or any(r.get("event") == "gate" and r.get("step") == best["step"]
                                      for r in run.read_metrics()):
        return None
    return (ckpt.read_payload(run.best).get("metadata") or {}).get("gate_record")


def _gate_owed(run: RunDir, step: int, every: int) -> bool:
    """Whether the candidate of `step` was saved but its gate never finished (a kill mid-gate)."""
    if step == 0 or step % every or not run.candidate(step).exists():
        return False
    if (run.read_best_info() or {}).get("step") == step:
        return False    # promoted already: killed after the promotion, before its record
    return not any(r.get("event") == "gate" and r.get("step") == step for r in run.read_metrics())


def _gate(run: RunDir, config: Config, step: int, best: dict, buffer, tb, elapsed: float) -> dict:
    """Gate the candidate of `step` against best; promote it if it clears the gate."""
    from azero.arena import gate
    from azero.nets import resolve_device
    from azero.records import discard_records, record_format

    candidate = run.candidate(step)
    strength: dict[str, float] = {}      # the promoted network's figures (_strength)
    records = run.arena / f"gate-{step:09d}{record_format(config.game).suffix}"
    discard_records(records)         # a gate cut short by a kill is replayed from scratch
    t0 = time.monotonic()
    result = gate(candidate, run.best, config, records=records, seed=config.seed + step,
                  device=str(resolve_device(config.train.device)))
    record = {"step": step, "elapsed": elapsed, "gate_seconds": time.monotonic() - t0,
              "generation": best["generation"], **result.as_dict(), **buffer.stats()}
    if result.promoted:
        stats = result.stats
        gained = stats.elo if stats.games else 0.0
        if not np.isfinite(gained):  # a clean sweep: take the finite end of the interval
            gained = stats.elo_interval[0] if np.isfinite(stats.elo_interval[0]) else 0.0
        new_elo = best["elo"] + gained
        loaded = ckpt.load(candidate, expected_game=config.game)
        # "elo" (with elo_low / elo_high) stays the match's; best_elo is the new best's rating
        record.update(new_generation=best["generation"] + 1, best_elo=new_elo)
        _write_best(run, loaded.model, config, step=step, generation=best["generation"] + 1,
                    elo=new_elo, gate_record=record)
        best = {"generation": best["generation"] + 1, "elo": new_elo, "step": step}
        strength = _strength(config, run.best)
        record.update(strength)
    else:
        # Written by an earlier promotion of this candidate that a kill cut short before best.pt:
        # the replayed gate rejected it, so it is no generation of the run.
        run.generation(best["generation"] + 1).unlink(missing_ok=True)
    run.log_metrics("gate", **record)
    line = gate_line(record)
    if result.promoted and config.gate.anchors:
        anchors = play_anchors(run, config, step, best["generation"], tb)
        line += " | " + describe_anchors(config.gate.anchors, anchors)
    _announce(line)
    if tb is not None:
        tb.add_scalar("gate/score", result.stats.score, step)
        tb.add_scalar("gate/promoted", float(result.promoted), step)
        tb.add_scalar("best/generation", best["generation"], step)
        tb.add_scalar("best/elo", best["elo"], step)
        for k, v in strength.items():
            tb.add_scalar(k, v, step)
    return best


def _strength(config: Config, best_path: Path) -> dict[str, float]:
    """Figures of a newly promoted network on its game's perfect-play set, where the game has one
    (registry hook `solved_positions`: azero/bench/solver.py `promoted_figures`); {} otherwise.
    A game's anchors (gate.anchors) are played after the gate record is logged."""
    from azero.bench.solver import promoted_figures
    return promoted_figures(config, best_path)


def gate_line(record: dict) -> str:
    """The terminal's line for one gate record (a "gate" event of metrics.jsonl): the generation,
    the candidate's W/D/L, score and Elo with its 95% interval against the best, and the
    promoted network's perfect-play figures where there are some."""
    from azero.bench.solver import summary
    from azero.stats import MatchStats

    stats = MatchStats(int(record["wins"]), int(record["draws"]), int(record["losses"]))
    if record["promoted"]:
        line = (f"step {record['step']}: generation {record['new_generation']} promoted, "
                f"{record['reason']}")
    else:
        line = (f"step {record['step']}: candidate rejected, {record['reason']}; generation "
                f"{record['generation']} stays")
    if stats.games:
        line += f" | against generation {record['generation']}: {stats}"
    solved = summary(record)
    return line if solved is None else f"{line} | {solved}"


def _announce(line: str) -> None:
    """A line for the terminal, printed above the progress bar without garbling it."""
    from tqdm import tqdm
    tqdm.write(line, file=sys.stdout)


def _prune_candidates(run: RunDir, keep: int) -> None:
    candidates = sorted(run.checkpoints.glob("candidate-*.pt"))
    for p in candidates[:-keep]:
        p.unlink(missing_ok=True)


def _elapsed_so_far(run: RunDir) -> float:
    """Training wall time of earlier invocations (the `elapsed` of the last metrics record)."""
    for record in reversed(run.read_metrics()):
        if "elapsed" in record:
            return float(record["elapsed"])
    return 0.0


def _tensorboard(run: RunDir, config: Config):
    if not config.log.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: curves go to metrics.jsonl only
        return None
    return SummaryWriter(str(run.tensorboard))


def _postfix(buffer, best: dict, losses: dict | None = None, waiting: bool = False,
             paused: bool = False) -> str:
    s = buffer.stats()
    parts = [f"games {s['games_seen']}", f"pos {s['positions_seen']}", f"gen {best['generation']}"]
    if losses:
        parts += [f"pi {losses['policy_loss']:.3f}", f"v {losses['value_loss']:.3f}"]
    if waiting:
        parts.append("waiting for self-play")
    if paused:
        parts.append("self-play paused: training catches up")
    return " ".join(parts)


__all__ = ["AlphaZero", "Limits", "algorithm_for", "prepare_run", "run_loop"]
