"""Judging a candidate network: the gate match against best and, for a network it promotes, the
perfect-play figures and the anchor matches. `judge` is the one judging procedure; the trainer's
process applies what it reports (azero/loop.py), and it runs either

  * in the trainer's process, as the trainer polls it (`InlineGates`, gate.background false):
    the trainer waits for each gate; or
  * in a child process beside the trainer (`BackgroundGates`, gate.background true), on the
    saved candidate and best files, while training and self-play go on; the trainer polls the
    child between training chunks and applies each message when it arrives. Each judging has
    a fresh child (spawned: its imports and CUDA start come before the gate, outside
    gate_seconds), so nothing of one judging outlives it.

Both take `submit(step)` (a candidate was saved) and `poll()`, an iterator of
(step, kind, payload) messages in the order they are to be applied:
  ("verdict", GateResult.as_dict() + gate_seconds)   the gate's result: promote or reject
  ("figures", solver figures)                        a promoted network's (may be {})
  ("anchors", anchor figures)                        a promoted network's, when gate.anchors
  ("done", {})                                       the judging of `step` is over
  ("failed", {"error": text})                        the background judging crashed (below)

Invariants of the background runner:
  * One judging at a time. A candidate saved while one runs waits; when the runner is free it
    judges the NEWEST waiting candidate, and the older ones are skipped (a "gate_skipped" event
    in metrics.jsonl names them).
  * The child writes no file but the match records (arena/, replayed from scratch by the next
    gate of that candidate) and "anchor_error" lines; best.pt and every other record are
    written by the trainer, so terminating the child (`stop`: a limit, Ctrl-C) leaves nothing
    half-done, and a resumed run judges that candidate again (loop._gate_owed).
  * The child leaves by itself within ORPHAN_POLL_SECONDS when the trainer is killed (-9).
  * A child that crashes is reported in one line (log warning and a "gate_error" event naming
    the error) and is not retried in this run: the candidate stays unpromoted and the next
    candidate is judged as usual (a crash that repeats would repeat on every retry; a resumed
    run judges the candidate again if it is still the newest). A crash after the verdict
    leaves the verdict applied and only the figures or anchors missing.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from typing import Iterator

from azero.config import Config
from azero.rundir import RunDir
from azero.sigint import start_ignoring_sigint

log = logging.getLogger(__name__)

ORPHAN_POLL_SECONDS = 0.5      # how often the child checks that the trainer is still its parent
TERMINATE_GRACE_SECONDS = 5.0  # after SIGTERM, before SIGKILL


def judge(run: RunDir, config: Config, step: int) -> Iterator[tuple[str, dict]]:
    """Judge the candidate of `step` against the run's best network: yields ("verdict", ...),
    then for a promotion ("figures", ...) and, with gate.anchors, ("anchors", ...) (the module's
    docstring). Works on the files only (candidate, best.pt, best.json): the promoted network's
    figures and anchors are measured on the candidate's file, the weights best.pt gets."""
    from azero import arena
    from azero.anchors import anchor_matches
    from azero.bench import solver
    from azero.nets import resolve_device
    from azero.records import discard_records, record_format

    candidate = run.candidate(step)
    generation = run.read_best_info()["generation"]      # the best this candidate meets
    records = run.arena / f"gate-{step:09d}{record_format(config.game).suffix}"
    discard_records(records)         # a gate cut short by a kill is replayed from scratch
    t0 = time.monotonic()
    result = arena.gate(candidate, run.best, config, records=records, seed=config.seed + step,
                        device=str(resolve_device(config.train.device)))
    yield "verdict", {"gate_seconds": time.monotonic() - t0, **result.as_dict()}
    if not result.promoted:
        return
    yield "figures", solver.promoted_figures(config, candidate)
    if config.gate.anchors:
        yield "anchors", anchor_matches(run, config, generation + 1, network=candidate)


class InlineGates:
    """Judging in the trainer's process (gate.background false): `poll` runs `judge` of the
    candidate submitted, so the trainer waits for it."""

    def __init__(self, run: RunDir, config: Config):
        self.run, self.config = run, config
        self.in_flight: int | None = None        # the step being judged (only inside poll)
        self._waiting: int | None = None

    def submit(self, step: int) -> None:
        self._waiting = step

    def poll(self) -> Iterator[tuple[int, str, dict]]:
        step, self._waiting = self._waiting, None
        if step is None:
            return
        self.in_flight = step
        try:
            for kind, payload in judge(self.run, self.config, step):
                yield step, kind, payload
        finally:
            self.in_flight = None
        yield step, "done", {}

    def stop(self) -> None:
        self._waiting = None


class BackgroundGates:
    """Judging in a spawned child process beside the trainer (gate.background true); the
    invariants are the module's docstring's."""

    def __init__(self, run: RunDir, config: Config):
        self.run, self.config = run, config
        self._ctx = mp.get_context("spawn")      # no fork of a process holding torch threads
        self._waiting: list[int] = []            # saved candidates not judged yet, oldest first
        self._job: tuple[int, mp.Process, object] | None = None   # (step, child, its pipe end)
        self._ended: list[mp.Process] = []      # children whose judging is over, maybe exiting

    @property
    def in_flight(self) -> int | None:
        """The step of the candidate being judged (its file must stay), or None."""
        return None if self._job is None else self._job[0]

    def submit(self, step: int) -> None:
        if step != self.in_flight and step not in self._waiting:
            self._waiting.append(step)

    def poll(self) -> Iterator[tuple[int, str, dict]]:
        """The messages that have arrived (never blocks). A free runner first starts on the
        newest waiting candidate."""
        if self._job is None:
            if not self._waiting:
                return
            self._start()
        step, child, conn = self._job
        exited = not child.is_alive()        # read before draining: what it sent is all there
        while True:
            try:
                if not conn.poll():
                    break
                kind, payload = conn.recv()
            except (EOFError, OSError):      # the child closed its end (it exited)
                exited = True
                break
            if kind in ("done", "error"):    # after "error" (judge raised) the child exits
                yield from self._end(step, kind, payload.get("error"))
                return
            yield step, kind, payload
        if exited:
            child.join()
            yield from self._end(step, "failed", f"the gate process exited with code "
                                                 f"{child.exitcode} before the judging ended")

    def stop(self) -> None:
        """Terminate the judging in flight (a limit or Ctrl-C stops the loop without waiting)."""
        self._waiting.clear()
        if self._job is not None:
            _, child, conn = self._job
            self._job = None
            conn.close()
            self._ended.append(child)
        for child in self._ended:
            if child.is_alive():
                child.terminate()
                child.join(TERMINATE_GRACE_SECONDS)
                if child.is_alive():
                    child.kill()
            child.join()
        self._ended.clear()

    def _start(self) -> None:
        step = self._waiting[-1]
        skipped = [s for s in self._waiting if s != step]
        self._waiting.clear()
        if skipped:
            log.info("gating the candidate of step %d; skipped the older %s", step, skipped)
            self.run.log_metrics("gate_skipped", steps=skipped, gated=step)
        receiver, sender = self._ctx.Pipe(duplex=False)
        child = self._ctx.Process(target=_child, args=(sender, os.getpid(), str(self.run.root),
                                                       self.config.to_dict(), step),
                                  name=f"azero-gate-{step}", daemon=True)
        start_ignoring_sigint(child)
        sender.close()                       # the child holds the only writing end
        self._job = (step, child, receiver)

    def _end(self, step: int, kind: str, error: str | None = None):
        _, child, conn = self._job
        self._job = None
        conn.close()
        # The child exits by itself once it has sent its last message: reaped here without
        # waiting for it, or by stop().
        self._ended = [c for c in self._ended if c.is_alive()] + [child]
        if kind == "done":
            yield step, "done", {}
            return
        log.warning("the gate of the candidate of step %d failed: %s", step, error)
        self.run.log_metrics("gate_error", step=step, error=error)
        yield step, "failed", {"error": error}


def make_gates(run: RunDir, config: Config):
    """The judging runner gate.background asks for."""
    return (BackgroundGates if config.gate.background else InlineGates)(run, config)


def _child(conn, parent_pid: int, run_dir: str, config_dict: dict, step: int) -> None:
    """The background judging process: sends judge's messages, then ("done", {}) or, when judge
    raises, ("error", {"error": ...}) and exits with code 1."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C is the trainer's; it stops us
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    try:
        from azero.nets import set_torch_threads
        set_torch_threads(1)
        config = Config.from_dict(config_dict)
        for kind, payload in judge(RunDir.at(run_dir), config, step):
            conn.send((kind, payload))
        conn.send(("done", {}))
    except Exception as e:
        import traceback
        traceback.print_exc()
        conn.send(("error", {"error": f"{type(e).__name__}: {e}"}))
        raise SystemExit(1) from None
    finally:
        conn.close()


def _exit_when_orphaned(parent_pid: int) -> None:
    """A trainer killed with SIGKILL cannot stop its child: leave once it is gone."""
    while os.getppid() == parent_pid:
        time.sleep(ORPHAN_POLL_SECONDS)
    os._exit(1)


__all__ = ["BackgroundGates", "InlineGates", "judge", "make_gates"]
