"""Ctrl-C and the processes a run starts: the terminal sends SIGINT to every process of the
foreground group, but only the main process decides how a run stops (it then stops its
children), so each child ignores SIGINT (its target's first line does so too).

A spawned child runs a fresh interpreter, which installs Python's own SIGINT handler and dies
of a KeyboardInterrupt (or "Fatal Python error: init_import_site") when Ctrl-C lands while it
is still starting, before its target could ignore the signal. An ignored signal stays ignored
across fork and exec, and Python keeps it so, so the parent ignores SIGINT for the moment of
the start (fork and exec: milliseconds; a Ctrl-C in exactly those is lost and must be pressed
again, where before the child's start-up, a second or more, printed a traceback). The signal
mask does not help: multiprocessing's spawn clears it in the child.
"""
from __future__ import annotations

import signal
import threading


def start_ignoring_sigint(process) -> None:
    """`process.start()` (a multiprocessing Process) with SIGINT ignored in the child from its
    first instruction. Only the main thread can change a signal's handler: started from
    another thread, the child ignores SIGINT from its target's first line only."""
    if threading.current_thread() is not threading.main_thread():
        process.start()
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process.start()
    finally:
        signal.signal(signal.SIGINT, previous)
