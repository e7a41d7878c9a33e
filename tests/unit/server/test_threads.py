"""The server's BLAS thread policy: one thread per call while serving, every core in builds."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from vecdb.server import threads


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
