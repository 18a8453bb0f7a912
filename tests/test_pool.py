"""The self-play process pool: dead workers are restarted, a worker that keeps dying stops the run,
and the restart budget is a rate, not a lifetime total."""
import time

import pytest

from azero.pool import ProcessWorkerPool


def dies_at_once(worker_id, stop_event):
    raise SystemExit(3)


def wait_dead(pool):
    deadline = time.monotonic() + 60
    while any(p.is_alive() for p in pool._procs):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_worker_that_keeps_dying_stops_the_pool():
    pool = ProcessWorkerPool(dies_at_once, 1, max_restarts=2)
    pool.start()
    try:
        for _ in range(2):
            wait_dead(pool)
            assert pool.check() == ["self-play worker 0 exited with code 3; restarted"]
        wait_dead(pool)
        with pytest.raises(RuntimeError, match="keeps dying.*2 restarts"):
            pool.check()
    finally:
        pool.stop()


def test_restarts_spread_over_time_are_allowed():
    pool = ProcessWorkerPool(dies_at_once, 1, max_restarts=1, restart_window=0.2)
    pool.start()
    try:
        for _ in range(3):
            wait_dead(pool)
            time.sleep(0.3)                # the earlier restart has left the window
            assert len(pool.check()) == 1
    finally:
        pool.stop()
