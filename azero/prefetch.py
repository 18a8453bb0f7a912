"""Drawing the next batches on a background thread while the current one is used.

The trainer's host side (replay gather, symmetry augmentation, game.observation, pinning on a GPU)
would otherwise run in series with each optimizer step. A `Prefetcher` runs it on one thread,
`depth` batches ahead (a bounded queue), while the caller's step runs. They overlap where both
sides leave the GIL: torch's ops and numpy's copies do, and so do numba kernels declared nogil
(Go's observation and symmetry kernels); pure Python and other numba kernels take turns.

Ordering: the thread calls draw() exactly `count` times, one after another, and the caller gets the
results in that order: whatever draw() consumes (an rng, a replay buffer's lazy caches) is
consumed in the same order as by `count` calls in series, so the batches are the same ones. The
thread is the only caller of draw() while the block runs: nothing else may use what draw() reads
or advances until the block exits (the trainer prefetches within one training chunk; the loop
refreshes the replay buffer between chunks).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class Prefetcher(Generic[T]):
    """`count` results of draw(), computed on a background thread up to `depth` ahead.

        with Prefetcher(lambda: sample(buffer, rng), count=steps, depth=2) as batches:
            for batch in batches:       # in draw() order; an exception of draw() is raised here
                step(batch)             # breaking out early is fine

    On leaving the block (normally, by break, or by an exception such as KeyboardInterrupt) the
    thread is told to stop and joined: it finishes at most the draw() in progress and puts
    nothing more, so no thread outlives the block. Results not taken are dropped; draw() has
    then run up to `depth` + 1 times more than the results taken.
    """

    def __init__(self, draw: Callable[[], T], count: int, depth: int = 2):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._draw = draw
        self._count = max(0, int(count))
        # (True, result) or (False, the exception draw() raised); at most `depth` waiting
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="azero-prefetch", daemon=True)

    def __enter__(self) -> "Prefetcher[T]":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        # Room for the thread's one last put (it checks the flag after each): it never blocks.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    def _run(self) -> None:
        try:
            for _ in range(self._count):
                if self._stop.is_set():
                    return
                self._queue.put((True, self._draw()))
        except BaseException as e:      # handed to the consumer, raised in its thread
            self._queue.put((False, e))

    def __iter__(self) -> Iterator[T]:
        for _ in range(self._count):
            ok, item = self._queue.get()
            if not ok:
                raise item
            yield item


__all__ = ["Prefetcher"]
