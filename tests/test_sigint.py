"""Ctrl-C while a child process is still starting: a child started by start_ignoring_sigint
never sees it (exit code 0), even before its target runs; one started plainly dies of it, which
shows that the signals below land inside the start-up window. The parent's handler is back
afterwards."""
import multiprocessing as mp
import os
import signal
import threading
import time

import pytest

from azero.sigint import start_ignoring_sigint


def child_that_sleeps():
    time.sleep(0.3)                 # SIGINTs keep coming meanwhile


def start_and_interrupt(start) -> int:
    """The child's exit code after SIGINTs sent every millisecond from its start to its end."""
    process = mp.get_context("spawn").Process(target=child_that_sleeps, daemon=True)
    start(process)
    deadline = time.monotonic() + 60
    while process.is_alive() and time.monotonic() < deadline:
        try:
            os.kill(process.pid, signal.SIGINT)
        except ProcessLookupError:
            break
        time.sleep(0.001)
    process.join(10)
    return process.exitcode


@pytest.fixture(autouse=True)
def python_handles_sigint():
    """Python's own SIGINT handler in this process, as in a terminal: a test run started in the
    background of a shell inherits SIGINT ignored, and so would every child."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_child_started_ignoring_sigint_survives_ctrl_c_during_its_start():
    assert start_and_interrupt(start_ignoring_sigint) == 0


def test_a_plainly_started_child_dies_of_it():
    assert start_and_interrupt(lambda p: p.start()) != 0


def test_the_parent_keeps_its_handler():
    start_and_interrupt(start_ignoring_sigint)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_from_another_thread_it_still_starts_the_child():
    """signal.signal raises ValueError outside the main thread: the start goes on plainly."""
    codes = []
    thread = threading.Thread(target=lambda: codes.append(
        start_and_interrupt(lambda p: (start_ignoring_sigint(p), time.sleep(2)))))
    thread.start()
    thread.join(60)
    assert codes == [0]             # started there; the SIGINTs began after its end
