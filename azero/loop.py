"""The training loop: self-play workers -> replay shards -> trainer -> candidate -> gate -> best.

The algorithm (config.algorithm) is an object the loop asks for its trainer, replay, self-play
search and storage (azero.algorithms.algorithm_for: AlphaZero, azero/alphazero.py; MuZero,
azero/muzero/loop.py); the loop itself is the same.

`run_loop` is the main job behind `azero selfplay`. The trainer runs in this process; self-play
runs in the worker pool; a candidate is judged (gate, then a promoted network's figures and
anchors: azero/gate_runner.py) in a child process beside the trainer, whose verdicts this
process applies between training chunks (gate.background; false: here, while the trainer
waits). Everything goes through the run directory (azero/rundir.py), so the same call on the
same run directory resumes a stopped or killed run:
  * replay shards are never rewritten; the buffer re-reads them (newest window) on start;
  * trainer.pt holds weights + optimizer + step as of the last candidate; training since then is
    redone, never half-saved;
  * best.pt carries its generation and Elo in its metadata; best.json (the workers' cheap poll
    signal) is rewritten from it on start;
  * best.pt also carries the gate record of its promotion, logged on start if a kill came before
    metrics.jsonl got it; a gate or anchor matches cut short are played again: the newest
    candidate without a gate record is judged on start (`_gate_owed`).
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
from azero.algorithms import algorithm_for
from azero.atomic import ORPHAN_WRITE_GRACE_SECONDS, atomic_write_bytes, remove_stale_temp_files
from azero.anchors import anchors_owed, check_anchors, describe_anchors, log_anchors, play_anchors
from azero.config import Config, ConfigError
from azero.gate_runner import make_gates
from azero.rundir import RunDir
from azero.selfplay import check_random_openings

log = logging.getLogger("azero.loop")

@dataclass(frozen=True)
class Limits:
    hours: float | None = None       # wall-clock bound of this invocation
    iterations: int | None = None    # candidates judged in this invocation (verdicts applied)

    def reached(self, started: float, iterations_done: int) -> bool:
        if self.hours is not None and time.monotonic() - started >= self.hours * 3600:
            return True
        return self.iterations is not None and iterations_done >= self.iterations


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
    the self-play workers run (azero.backends.make_backend; None: processes of this machine).
    Raises RunDirBusy if another process is running in the same run directory."""
    from azero.backends import LocalBackend

    check_random_openings(config.selfplay, config.make_game())    # before anything is written
    init_checkpoint = check_init(config, init)
    backend = LocalBackend() if backend is None else backend
    with backend.connected(config), RunDir.at(config.run_dir).locked():
        return _run_locked(config, limits, progress, init_checkpoint, backend)


def _run_locked(config: Config, limits: Limits, progress: bool | None,
                init: ckpt.Checkpoint | None, backend) -> dict:
    from tqdm import tqdm

    from azero.inference_server import pool_for_run
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

    # the backend's workers, behind an inference server under selfplay.inference_server
    pool = pool_for_run(backend, run, config)
    side_pool = algorithm.side_pool(run, config)       # e.g. MuZero's Reanalyze worker
    pools = [pool] if side_pool is None else [pool, side_pool]
    gates = make_gates(run, config)
    verdicts = _Verdicts(run, config, best, buffer, tb)
    started = time.monotonic()
    iterations = 0
    run.log_metrics("start", step=trainer.step, generation=best["generation"],
                    elapsed=elapsed_before, workers=sp.workers, backend=backend.name)
    bar = tqdm(desc=f"{config.game} training", unit="step", initial=trainer.step,
               disable=not show_progress, dynamic_ncols=True)
    stop = _InterruptFlag()
    pacer = _SelfPlayPacer(run, config)

    def stopping() -> bool:
        return limits.reached(started, iterations) or stop.requested
    for p in pools:
        p.start()
    stop_reason = "limit"
    try:
        with stop.installed():
            buffer.refresh()                 # replay counts for the records logged here
            owed_record = _gate_record_owed(run, best)
            if owed_record is not None:
                owed_record = {**owed_record, **_strength(config, run.best)}
                run.log_metrics("gate", **owed_record, recovered=True)
                _announce(gate_line(owed_record))
            if anchors_owed(run, config, best):
                # Killed (or stopped) after a promotion, before its anchor matches ended.
                anchors = play_anchors(run, config, best["step"], best["generation"], tb)
                _announce(f"step {best['step']}: generation {best['generation']} | "
                          + describe_anchors(config.gate.anchors, anchors))
            owed_step = _gate_owed(run, trainer.step)
            if owed_step is not None:
                # Killed or stopped after the candidate was saved but before its judging ended.
                gates.submit(owed_step)
            while not stopping():
                # The judging's news (inline: the whole judging of a submitted candidate).
                iterations += verdicts.apply(gates.poll(), trainer.step,
                                             elapsed_before + time.monotonic() - started)
                best = verdicts.best
                if stopping():
                    break
                for line in (line for p in pools for line in p.check()):
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
                    _prune_candidates(run, tc.keep_checkpoints, gates.in_flight)
                    gates.submit(trainer.step)
        if stop.requested:
            stop_reason = "interrupted"
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    except BaseException:
        stop_reason = "error"
        raise
    finally:
        bar.close()
        gates.stop()             # a judging in flight is owed to the next start (_gate_owed)
        for p in pools:
            p.stop()
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
    stops between two optimizer steps (never inside one), or after the gate under way when it
    runs in this process (raising inside it could land in numba's compiler callbacks, where the
    exception is lost; a judging beside the trainer is terminated, and owed). A second
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
    The lead is measured between training chunks from the shards written; a gate in the
    trainer's process (gate.background false) holds the trainer, and self-play goes on during it
    unless it was paused before."""

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
    """Up to `steps` optimizer steps, stopping early on a stop request (each step whole: a
    second Ctrl-C waits for it). Returns the mean of each loss and the number of steps taken.
    The batches are sampled ahead on a thread within this chunk only (train.prefetch_batches):
    the caller refreshes the buffer between chunks. A non-finite loss is found here, once per
    chunk (Trainer.train_steps), as a FloatingPointError before the caller saves anything: the
    loop then saves no trainer state (stop reason "error"), and a second Ctrl-C after such a
    step raises that error instead of KeyboardInterrupt, so no checkpoint holds its update."""
    before = trainer.step
    losses = trainer.train_steps(buffer, steps, rng, should_stop=lambda: stop.requested,
                                 step_guard=stop.critical)
    return losses, trainer.step - before


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


def _gate_owed(run: RunDir, trainer_step: int) -> int | None:
    """The step of the candidate whose judging a kill or a stop cut short: the newest candidate
    at or below the trainer's step, unless it has its gate record or is best's network (promoted
    already: killed after the promotion, before its record). None when nothing is owed. Older
    candidates without a record were skipped by design (gate_runner's one-at-a-time rule)."""
    steps = [int(p.stem.rsplit("-", 1)[1]) for p in run.checkpoints.glob("candidate-*.pt")]
    steps = sorted(s for s in steps if 0 < s <= trainer_step)
    if not steps or (run.read_best_info() or {}).get("step") == steps[-1]:
        return None
    newest = steps[-1]
    gated = any(r.get("event") == "gate" and r.get("step") == newest for r in run.read_metrics())
    return None if gated else newest


class _Verdicts:
    """Applies, in the trainer's process, what a candidate's judging reports (gate_runner's
    messages, in order): a verdict promotes (best.pt with the generation, Elo and gate record)
    or rejects; the gate record goes to metrics.jsonl at once for a rejection, with the promoted
    network's solver figures for a promotion; then its anchors; the terminal line and
    TensorBoard's scalars when the judging is over. `best` is the run's best as applied."""

    def __init__(self, run: RunDir, config: Config, best: dict, buffer, tb):
        self.run, self.config, self.best, self.buffer, self.tb = run, config, best, buffer, tb
        self._record: dict | None = None     # the gate record of the judging under way
        self._logged = False                 # ... is in metrics.jsonl
        self._line = ""

    def apply(self, messages, trainer_step: int, elapsed: float) -> int:
        """Apply (step, kind, payload) messages; returns the judgings ended that had a verdict."""
        ended = 0
        for step, kind, payload in messages:
            if kind == "verdict":
                self._verdict(step, payload, trainer_step, elapsed)
            elif kind == "figures":
                self._record.update(payload)
                self._log_record()
            elif kind == "anchors":
                log_anchors(self.run, step, self.best["generation"], payload, self.tb)
                self._line += " | " + describe_anchors(self.config.gate.anchors, payload)
            elif kind in ("done", "failed") and self._record is not None:
                self._log_record()           # a failure after a promotion: the figures are lost
                self._finish(step)
                ended += 1
        return ended

    def _verdict(self, step: int, result: dict, trainer_step: int, elapsed: float) -> None:
        best, run = self.best, self.run
        # applied_at_step: the trainer's step when the verdict was applied (= step when inline)
        record = {"step": step, "elapsed": elapsed, "applied_at_step": trainer_step,
                  "generation": best["generation"], **result, **self.buffer.stats()}
        self._record, self._logged = record, False
        if result["promoted"]:
            gained = result["elo"] if result["games"] else 0.0
            if not np.isfinite(gained):      # a clean sweep: take the finite end of the interval
                low = result["elo_low"]
                gained = low if np.isfinite(low) else 0.0
            new_elo = best["elo"] + gained
            loaded = ckpt.load(run.candidate(step), expected_game=self.config.game)
            # "elo" (with elo_low / elo_high) stays the match's; best_elo is the new best's rating
            record.update(new_generation=best["generation"] + 1, best_elo=new_elo)
            _write_best(run, loaded.model, self.config, step=step,
                        generation=best["generation"] + 1, elo=new_elo, gate_record=record)
            self.best = {"generation": best["generation"] + 1, "elo": new_elo, "step": step}
        else:
            # Written by an earlier promotion of this candidate that a kill cut short before
            # best.pt: the replayed gate rejected it, so it is no generation of the run.
            run.generation(best["generation"] + 1).unlink(missing_ok=True)
            self._log_record()

    def _log_record(self) -> None:
        if not self._logged:
            self.run.log_metrics("gate", **self._record)
            self._logged = True
            self._line = gate_line(self._record)

    def _finish(self, step: int) -> None:
        record, tb = self._record, self.tb
        self._record = None
        _announce(self._line)
        if tb is not None:
            tb.add_scalar("gate/score", record["score"], step)
            tb.add_scalar("gate/promoted", float(record["promoted"]), step)
            tb.add_scalar("best/generation", self.best["generation"], step)
            tb.add_scalar("best/elo", self.best["elo"], step)
            for k, v in record.items():
                if k.startswith("solver/"):
                    tb.add_scalar(k, v, step)


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


def _prune_candidates(run: RunDir, keep: int, judged: int | None = None) -> None:
    """Keep the newest `keep` candidates, and the one being judged (step `judged`)."""
    candidates = sorted(run.checkpoints.glob("candidate-*.pt"))
    for p in candidates[:-keep]:
        if judged is None or p != run.candidate(judged):
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


__all__ = ["Limits", "check_init", "prepare_run", "run_loop"]
