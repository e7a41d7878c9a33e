"""The server's BLAS thread policy: one thread per call while serving, every core in builds."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import faiss
import pytest
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from vecdb.server import servicer, threads
from vecdb.server.config import ServerConfig


@pytest.fixture
def restored() -> Iterator[None]:
    controller = ThreadpoolController()
    original = controller.info()
    yield
    threads._controller = None
    for info in original:
        controller.select(filepath=info["filepath"]).limit(limits=info["num_threads"])


def test_serving_limits_blas_to_one_thread_and_builds_widen_it(restored: None) -> None:
    cores = os.cpu_count() or 1
    threads.one_thread_per_request()
    assert threads.blas_threads()  # numpy's and faiss's OpenBLAS are both found
    assert set(threads.blas_threads()) == {1}
    with threads.all_cores():
        assert set(threads.blas_threads()) == {cores}
        with threads.all_cores():  # nested / concurrent blocks keep it wide until the last ends
            pass
        assert set(threads.blas_threads()) == {cores}
    assert set(threads.blas_threads()) == {1}


def test_openmp_is_limited_per_request_thread_and_widened_only_in_that_threads_builds() -> None:
    cores = os.cpu_count() or 1
    here = threads.openmp_threads()
    faiss.omp_set_num_threads(cores + 1)  # this thread's own setting, distinct from any below
    seen: dict[str, int] = {}

    def request() -> None:
        threads.one_thread_here()
        seen["request"] = threads.openmp_threads()
        with threads.all_cores():
            seen["build"] = threads.openmp_threads()
        seen["after build"] = threads.openmp_threads()

    worker = threading.Thread(target=request)
    worker.start()
    worker.join()
    assert seen == {"request": 1, "build": cores, "after build": 1}
    # the setting belongs to the thread that made it: this thread's is untouched
    try:
        assert threads.openmp_threads() == cores + 1
    finally:
        faiss.omp_set_num_threads(here)


def test_a_unary_handler_runs_with_one_openmp_thread() -> None:
    seen: list[int] = []

    class Servicer:
        config = ServerConfig()

        @servicer.unary
        def Probe(self, request: object, principal: object) -> int:
            seen.append(threads.openmp_threads())
            return 0

    class Context:
        def invocation_metadata(self) -> tuple[()]:
            return ()

    worker = threading.Thread(target=lambda: Servicer().Probe(None, Context()))  # type: ignore[arg-type]
    worker.start()
    worker.join()
    assert seen == [1]


def test_the_server_waits_passively_in_openmp() -> None:
    # faiss spins at OpenMP barriers unless told otherwise; the engine sets the policy before
    # faiss loads (a subprocess, so that this test's own imports do not decide it)
    code = "import os, vecdb.server.app; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "PASSIVE", out.stderr
