"""BatchSearch over a real server: saved workload partitionings, streaming and cancelling."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vecdb
from vecdb import Client
from vecdb.client import Query
from vecdb.engine import batch as engine_batch
from vecdb.server import servicer
from vecdb.server.app import start_server
from vecdb.server.config import load_config

DIM = 16
COUNT = 6_000
COLORS = ("red", "green", "blue", "white")
FILTERS: tuple[dict[str, Any] | None, ...] = (
    None,
    {"field": "color", "eq": "red"},
    {"field": "year", "gte": 2010},
    {"and": [{"field": "color", "in": ["green", "blue"]}, {"field": "year", "lt": 2015}]},
    {"not": {"field": "color", "eq": "white"}},
)


def run_cli(*args: str, address: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vecdb.cli", *args]
    # faulthandler on: a command that hangs is aborted with every thread's stack in the failure
    env = {**os.environ, "VECDB_ADDRESS": address, "PYTHONFAULTHANDLER": "1"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            stdout, stderr = process.communicate()
            pytest.fail(f"{' '.join(args)} hung for 120 s; its threads:\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _load(client: Client, name: str = "docs") -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((8, DIM)).astype(np.float32)
    cluster = rng.integers(0, len(centres), COUNT)
    vectors = (centres[cluster] + 0.5 * rng.standard_normal((COUNT, DIM))).astype(np.float32)
    attributes = [
        {"color": COLORS[int(cluster[i]) % len(COLORS)], "year": 2000 + int(cluster[i]) * 3}
        for i in range(COUNT)
    ]
    client.create_collection(name, DIM, "cosine", {"color": "keyword", "year": "int"})
    client.upsert_many(name, [f"p{i}" for i in range(COUNT)], vectors, attributes)
    return vectors


def _queries(vectors: np.ndarray, count: int, seed: int = 1) -> list[Query]:
    rng = np.random.default_rng(seed)
    base = vectors[rng.integers(0, len(vectors), count)]
    noisy = base + 0.3 * rng.standard_normal(base.shape).astype(np.float32)
    return [Query(f"q{i}", noisy[i], 10, None, FILTERS[i % len(FILTERS)]) for i in range(count)]


def test_a_saved_partitioning_is_listed_reused_and_survives_a_restart(
    server_factory: Any,
) -> None:
    server = server_factory("saved").start()
    queries: list[Query]
    with Client(server.address) as client:
        client.wait_ready()
        vectors = _load(client)
        queries = _queries(vectors, 300)
        progress: list[tuple[str, float]] = []
        learned = dict(
            client.batch_search(
                "docs",
                queries,
                save_partitioning="weekly",
                recall_target=0.9,
                on_progress=lambda stage, fraction: progress.append((stage, fraction)),
            )
        )
        assert sorted(learned) == sorted(q.query_id for q in queries)
        stages = [stage for stage, _ in progress]
        assert "calibration" in stages and stages[-1] == "saved"
        (saved,) = client.describe_collection("docs").partitionings
        assert saved["name"] == "weekly"
        assert saved["workload_queries"] == 300
        assert saved["covered_points"] == COUNT
        assert int(saved["cells"]) >= int(saved["leaves"]) >= 1  # type: ignore[call-overload]

        # the same partitioning answers a later batch identically
        reused = dict(client.batch_search("docs", queries, partitioning="weekly"))
        assert {q: m.ids for q, m in reused.items()} == {q: m.ids for q, m in learned.items()}
        # and as well as the collection's own plans do
        exact = [
            client.search("docs", q.vector, q.k, filter=q.filter, exact=True).ids for q in queries
        ]
        recall = np.mean(
            [
                len(set(reused[q.query_id].ids) & set(e)) / len(e)
                for q, e in zip(queries, exact, strict=True)
            ]
        )
        assert recall >= 0.85  # calibrated for 0.9: a broken router falls far below

        with pytest.raises(vecdb.NotFound, match="no partitioning 'daily' \\(saved: weekly\\)"):
            list(client.batch_search("docs", queries[:3], partitioning="daily"))
        with pytest.raises(vecdb.InvalidArgument, match="not both"):
            list(client.batch_search("docs", queries[:3], partitioning="a", save_partitioning="b"))
        with pytest.raises(vecdb.InvalidArgument, match="invalid partitioning name"):
            list(client.batch_search("docs", queries[:3], save_partitioning="no spaces"))

    server.terminate()
    server.start()
    with Client(server.address) as client:
        client.wait_ready()
        assert [p["name"] for p in client.describe_collection("docs").partitionings] == ["weekly"]
        again = dict(client.batch_search("docs", queries, partitioning="weekly"))
        assert {q: m.ids for q, m in again.items()} == {q: m.ids for q, m in learned.items()}


def test_vecdb_batch_saves_and_reuses_a_partitioning(server_factory: Any, tmp_path: Path) -> None:
    server = server_factory("cli-saved").start()
    with Client(server.address) as client:
        client.wait_ready()
        vectors = _load(client)
    with (tmp_path / "queries.jsonl").open("w") as out:
        for query in _queries(vectors, 120):
            record = {"id": query.query_id, "vector": np.asarray(query.vector).tolist()}
            if query.filter is not None:
                record["filter"] = query.filter
            out.write(json.dumps(record) + "\n")
    outputs = []
    for option in ("--save-partitioning", "--partitioning"):
        out_file = tmp_path / f"results{option}.jsonl"
        result = run_cli(
            "batch",
            "docs",
            str(tmp_path / "queries.jsonl"),
            "--out",
            str(out_file),
            option,
            "nightly",
            address=server.address,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stderr.strip().splitlines()[-1])["partitioning"] == "nightly"
        records = [json.loads(line) for line in out_file.read_text().splitlines()]
        assert len(records) == 120
        outputs.append({r["query_id"]: [x["id"] for x in r["results"]] for r in records})
    assert outputs[0] == outputs[1]
    stats = run_cli("stats", "docs", address=server.address)
    assert stats.returncode == 0, stats.stderr
    (saved,) = json.loads(stats.stdout)["partitionings"]
    assert (saved["name"], saved["workload_queries"]) == ("nightly", 120)
    missing = run_cli(
        "batch",
        "docs",
        str(tmp_path / "queries.jsonl"),
        "--out",
        str(tmp_path / "x.jsonl"),
        "--partitioning",
        "weekly",
        address=server.address,
    )
    assert missing.returncode == 2
    assert "no partitioning 'weekly' (saved: nightly)" in missing.stderr


@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[str]:
    """A server in this process (so a test can watch its batch engine); its address."""
    config = load_config(None, environ={}, host="127.0.0.1", port=0, data_dir=tmp_path / "data")
    running = start_server(config)
    yield f"127.0.0.1:{running.port}"
    running.stop(grace=1.0)


def test_results_stream_before_the_batch_ends_and_cancelling_stops_the_server(
    in_process: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks_started: list[int] = []
    chunks_closed: list[int] = []

    def watched(*args: Any, **kwargs: Any) -> Iterator[Any]:
        number = len(chunks_started)
        chunks_started.append(number)
        try:
            yield from engine_batch.run_batch(*args, **kwargs)
        finally:
            chunks_closed.append(number)

    monkeypatch.setattr(servicer, "run_batch", watched)
    release = threading.Event()
    sent = [0]
    chunk = servicer.BATCH_CHUNK
    with Client(in_process) as client:
        client.wait_ready()
        vectors = _load(client, "live")

        def endless() -> Iterator[Query]:
            rng = np.random.default_rng(3)
            while True:
                if sent[0] == chunk + 1:
                    # the rest of the batch waits until a result has come back
                    release.wait(timeout=60)
                yield Query(f"q{sent[0]}", vectors[rng.integers(0, COUNT)], 5)
                sent[0] += 1

        stream = client.batch_search("live", endless())
        _, first = next(stream)
        streamed_while_sending = not release.is_set() and sent[0] == chunk + 1
        assert streamed_while_sending  # the first chunk came back before the batch ended
        assert len(first.ids) == 5
        release.set()
        received = 1 + len(list(itertools.islice(stream, chunk + 10)))
        assert received == chunk + 11  # the second chunk streams too
        stream.close()  # cancel: the call ends, the endless batch stops being read
        deadline = time.monotonic() + 10
        while len(chunks_closed) < len(chunks_started) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(chunks_closed) == len(chunks_started)  # the server's batch work stopped
        stopped_at = sent[0]
        time.sleep(0.5)
        assert sent[0] == stopped_at  # nothing reads the stream any more
        # and the server goes on serving
        assert len(client.search("live", vectors[0], 3).ids) == 3


def test_only_an_admin_key_may_save_a_partitioning(server_factory: Any) -> None:
    env = {"VECDB_ADMIN_KEYS": "admin-key", "VECDB_TENANT_KEYS": "acme=acme-key"}
    server = server_factory("keyed-batch", env=env).start()
    with Client(server.address, api_key="admin-key") as admin:
        admin.wait_ready()
        vectors = _load(admin)
    queries = _queries(vectors, 20)
    with Client(server.address, api_key="acme-key") as acme:
        with pytest.raises(vecdb.PermissionDenied, match="save partitionings"):
            list(acme.batch_search("docs", queries, save_partitioning="mine"))
        assert len(dict(acme.batch_search("docs", queries))) == 20  # plain batches are fine
    with Client(server.address, api_key="admin-key") as admin:
        assert admin.describe_collection("docs").partitionings == []
