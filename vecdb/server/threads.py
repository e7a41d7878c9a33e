"""The server's thread policy: one BLAS thread per request for queries, every core for builds.

numpy's and faiss's OpenBLAS start one thread per core for every large enough matrix product, and
those threads keep spinning for a while after each call. A server already runs requests on a
thread pool, so per-call threads only oversubscribe the cores: on a small machine the spinning
threads of one search compete for the cores the next request (and any client on the same
machine) needs. The server therefore limits BLAS to one thread per call
while it serves queries, and lets index builds and batch plans, which run long products on
purpose, use every core while they run. OpenBLAS's thread count is process-wide, so a search that
runs during a build also gets the wider setting until the build ends.

faiss's OpenMP threads follow the same policy, per thread: OpenMP keeps its thread count per
calling thread, so a request handler limits its own thread to one (:func:`one_thread_here`; many
faiss searches open a parallel region even for one query, and on a busy machine the region's
second thread, waiting for a core, holds up the whole small scan) while a build in
another handler widens only its own. OpenMP's idle threads wait passively (they sleep instead of
spinning at barriers, which slows small searches down when they share cores with gRPC
workers) unless ``OMP_WAIT_POLICY`` says otherwise; that is read when faiss loads, so
:mod:`vecdb.engine` sets it before anything imports faiss.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

import vecdb.engine  # noqa: F401  (sets OpenMP's wait policy before anything here loads faiss)

_lock = threading.Lock()
_controller: ThreadpoolController | None = None
_wide = 0  # how many all_cores() blocks are running


def one_thread_per_request() -> None:
    """Limit BLAS to one thread per call in this process (the server calls it on start)."""
    global _controller
    import faiss  # noqa: F401  (loaded first, so its own OpenBLAS is found and limited too)

    with _lock:
        _controller = ThreadpoolController()
        if _wide == 0:
            _controller.limit(limits=1, user_api="blas")


def blas_threads() -> list[int]:
    """Return the thread count of every BLAS library loaded (for tests and diagnostics)."""
    controller = ThreadpoolController()
    return [int(info["num_threads"]) for info in controller.info() if info["user_api"] == "blas"]


def one_thread_here() -> None:
    """Limit faiss's OpenMP to one thread for parallel regions started by the calling thread."""
    import faiss

    faiss.omp_set_num_threads(1)


def openmp_threads() -> int:
    """Return the OpenMP thread count for regions the calling thread starts."""
    import faiss

    return int(faiss.omp_get_max_threads())


@contextmanager
def all_cores() -> Iterator[None]:
    """Let BLAS, and faiss's OpenMP in this thread, use every core inside the block (index
    builds, batch plans)."""
    global _wide
    import faiss

    cores = os.cpu_count() or 1
    with _lock:
        _wide += 1
        if _wide == 1 and _controller is not None:
            _controller.limit(limits=cores, user_api="blas")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(cores)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
        with _lock:
            _wide -= 1
            if _wide == 0 and _controller is not None:
                _controller.limit(limits=1, user_api="blas")
