"""What every worker process of cmrpipe's process pools does first."""

import os

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def n_cores() -> int:
    """How many workers the pools start by default: one per core."""
    return os.cpu_count() or 1


def single_threaded() -> None:
    """Limit this process's BLAS and OpenMP thread pools to one thread (a pool's ``initializer``).

    A pool starts one worker per core. Left alone, each worker's BLAS starts a thread per
    core as well, and the threads of all the workers, spinning while they wait for work,
    take turns on the same cores. On 2 cores, a pool of two made four smoke subjects (two
    samples per pixel side) no faster than one process (41 s against 38 s); one thread
    each, it is 1.7-1.9 times as fast as one process (``make bench``, ``synth_pool``).

    The libraries read the environment when they load, so it is set for those loaded
    later; numpy's and scipy's are loaded now and limited with ``threadpoolctl``.
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    import numpy  # noqa: F401  (loads numpy's BLAS)
    import scipy.linalg  # noqa: F401  (and scipy's)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
