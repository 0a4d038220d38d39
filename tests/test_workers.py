"""The process pools' workers: one BLAS thread each, so that the workers do not crowd each other's cores."""

from multiprocessing import get_context

from cmrpipe.workers import THREAD_VARIABLES, single_threaded


def _threads() -> dict[str, int]:
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info()}


def test_a_pool_worker_started_with_single_threaded_runs_one_thread_per_library(monkeypatch):
    for name in THREAD_VARIABLES:  # a worker inherits these: two threads each unless it limits them
        monkeypatch.setenv(name, "2")
    ctx = get_context("spawn")
    with ctx.Pool(1) as pool:
        before = pool.apply(_threads)
    with ctx.Pool(1, initializer=single_threaded) as pool:
        after = pool.apply(_threads)
    assert before.keys() == after.keys() and after  # numpy's and scipy's BLAS at least
    assert set(before.values()) == {2} and set(after.values()) == {1}
