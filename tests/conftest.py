"""Fixtures for every test."""
import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Commands run in-process (`azero bench net --threads N`) set torch's global thread count;
    restore it so that no later test runs under another test's setting (a network evaluated with
    a different thread count may round differently, and bitwise comparisons then fail)."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread():
    """One torch thread for the test: tiny nets on the shared 2-core box, where two threads wait on
    each other. `_restore_torch_threads` (autouse, so set up before this) puts the count back."""
    torch.set_num_threads(1)
