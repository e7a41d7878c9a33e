"""Service benchmark: bulk ingest over gRPC, search latency through gRPC vs in-process, restart.

Run: ``python benchmarks/serve.py`` (or ``--quick``). Prints a markdown table and writes
``benchmarks/results/serve.json``. Ratios are measured side by side in one run; absolute numbers
depend on the machine (and its disk, since every acknowledged batch is fsynced).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from vecdb import Client
from vecdb.engine import Database
from vecdb.server import threads

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"


class Server:
    """A ``vecdb serve`` subprocess on a free loopback port."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[str] | None = None
        self.address = ""

    def start(self) -> float:
        """Start the server; return seconds until it answers a request."""
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vecdb.cli",
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--port",
                "0",
                "--log-level",
                "info",
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stderr is not None
        for line in self.process.stderr:
            found = re.search(r"serving on [^ ]+:(\d+)", line)
            if found:
                self.address = f"127.0.0.1:{found.group(1)}"
                break
        else:
            raise RuntimeError("server did not start")
        with Client(self.address) as client:
            client.list_collections()
        return time.perf_counter() - began

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=120)


def percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def ingest(client: Client, name: str, vectors: np.ndarray, batch_size: int) -> float:
    """Return vectors/s of a bulk stream into a new collection."""
    client.create_collection(name, vectors.shape[1], "cosine")
    ids = [f"{name}-{i}" for i in range(len(vectors))]
    began = time.perf_counter()
    written = client.upsert_many(name, ids, vectors, batch_size=batch_size)
    elapsed = time.perf_counter() - began
    assert written == len(vectors)
    return len(vectors) / elapsed


T = TypeVar("T")
BLOCK = 50  # queries per block when the two paths alternate block by block


def latencies(
    client: Client, database: Database, name: str, queries: np.ndarray, k: int
) -> dict[str, float]:
    """Single-query latency through gRPC and in-process on the same data, in two protocols.

    - interleaved (the headline): every query goes through gRPC and then in-process before the
      next one, so both paths run under the same conditions: on this virtual machine a thread
      that has just waited (the server's worker for a request, the client for a reply) runs
      the same search about twice as slowly as one that searches back to back, and here both
      searches follow such a wait;
    - back to back: the paths alternate in blocks of ``BLOCK`` queries, each block one query
      after another on one path. The in-process searches then run on a hot core while the
      server's still follow a wait for each request, so this overhead also counts the machine's
      wake-up cost, not only gRPC's.

    An empty gRPC call (a health check on the same channel) runs in both protocols too: the
    transport's own round trip under the same conditions, so that the overhead splits into
    transport and vecdb's request path (parse, plan, response building, client-side conversion).
    """
    local = database.collection(name)
    health = health_pb2_grpc.HealthStub(client._channel)
    check = health_pb2.HealthCheckRequest()
    times: dict[str, list[float]] = {
        key: [] for key in ("grpc", "local", "empty", "grpc_i", "local_i", "empty_i")
    }

    def timed(key: str, call: Callable[[], T]) -> T:
        began = time.perf_counter()
        out = call()
        times[key].append(time.perf_counter() - began)
        return out

    for start in range(0, len(queries), BLOCK):
        block = queries[start : start + BLOCK]
        for _ in block:
            timed("empty", lambda: health.Check(check))
        remote = [timed("grpc", partial(client.search, name, q, k)) for q in block]
        hits = [timed("local", partial(local.search, q, k)) for q in block]
        for r, h in zip(remote, hits, strict=True):
            assert r.ids == h[0].ids
    for query in queries:
        timed("empty_i", lambda: health.Check(check))
        remote_one = timed("grpc_i", partial(client.search, name, query, k))
        (hit,) = timed("local_i", partial(local.search, query, k))
        assert remote_one.ids == hit.ids
    out: dict[str, float] = {}
    for suffix, tag in (("_i", ""), ("", "_back_to_back")):
        grpc_p50, grpc_p99 = percentiles(times["grpc" + suffix])
        local_p50, local_p99 = percentiles(times["local" + suffix])
        empty_p50 = percentiles(times["empty" + suffix])[0]
        out.update(
            {
                f"grpc_p50_ms{tag}": grpc_p50,
                f"grpc_p99_ms{tag}": grpc_p99,
                f"inprocess_p50_ms{tag}": local_p50,
                f"inprocess_p99_ms{tag}": local_p99,
                f"overhead_p50_ms{tag}": grpc_p50 - local_p50,
                f"empty_call_p50_ms{tag}": empty_p50,
                f"request_path_p50_ms{tag}": grpc_p50 - local_p50 - empty_p50,
            }
        )
    return out


def synthetic(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50k synthetic points, fewer queries")
    parser.add_argument("--batch-size", type=int, default=4000)
    parser.add_argument("--out", default=str(HERE / "results" / "serve.json"))
    args = parser.parse_args()
    # the in-process searches run under the server's own thread policy (one BLAS thread per
    # call), so both sides of the latency comparison do the same work
    threads.one_thread_per_request()
    n_big = 50_000 if args.quick else 200_000
    n_queries = 100 if args.quick else 300
    results: dict[str, object] = {
        "quick": args.quick,
        "batch_size": args.batch_size,
        "load_average_at_start": os.getloadavg(),
    }
    rows: list[tuple[str, str]] = []

    with tempfile.TemporaryDirectory(dir=os.environ.get("VECDB_BENCH_TMP")) as tmp:
        data_dir = Path(tmp) / "data"
        server = Server(data_dir)
        server.start()
        with Client(server.address) as client:
            big = synthetic(n_big, 384)
            rate = ingest(client, "synthetic", big, args.batch_size)
            results["ingest_vectors_per_s"] = rate
            results["ingest_points"] = n_big
            rows.append((f"bulk ingest, {n_big:,} x 384 (vectors/s)", f"{rate:,.0f}"))
            docs_path = SHARED / "scifact" / "docs.npy"
            if docs_path.exists():
                docs = np.load(docs_path)
                scifact_rate = ingest(client, "scifact", docs, args.batch_size)
                results["scifact_ingest_vectors_per_s"] = scifact_rate
                rows.append(
                    ("bulk ingest, SciFact 5,183 x 384 (vectors/s)", f"{scifact_rate:,.0f}")
                )
        server.stop()

        # in-process copy opened on the same files, server restarted beside it
        restart_s = server.start()
        results["restart_s_200k" if not args.quick else "restart_s_50k"] = restart_s
        results["restart_points"] = n_big + (5183 if (SHARED / "scifact").exists() else 0)
        rows.append((f"restart with {n_big:,} + SciFact points (s)", f"{restart_s:.2f}"))
        with tempfile.TemporaryDirectory() as local_dir:
            database = Database(Path(local_dir))
            try:
                with Client(server.address) as client:
                    for name, data in (("scifact", None), ("synthetic", big)):
                        if name == "scifact":
                            if not (SHARED / "scifact" / "queries.npy").exists():
                                continue
                            data = np.load(SHARED / "scifact" / "docs.npy")
                            queries = np.load(SHARED / "scifact" / "queries.npy")[:n_queries]
                        else:
                            queries = synthetic(n_queries, 384, seed=1)
                        assert data is not None
                        collection = database.create_collection(name, 384, "cosine")
                        collection.upsert([f"{name}-{i}" for i in range(len(data))], data)
                        client.search(name, queries[0], 10)  # warm the connection
                        measured = latencies(client, database, name, queries, 10)
                        results[name] = measured
                        label = "SciFact 5,183" if name == "scifact" else f"synthetic {n_big:,}"
                        rows.append(
                            (
                                f"search p50 / p99, {label}, gRPC (ms)",
                                f"{measured['grpc_p50_ms']:.2f} / {measured['grpc_p99_ms']:.2f}",
                            )
                        )
                        rows.append(
                            (
                                f"search p50 / p99, {label}, in-process (ms)",
                                f"{measured['inprocess_p50_ms']:.2f} / "
                                f"{measured['inprocess_p99_ms']:.2f}",
                            )
                        )
                        rows.append(
                            (
                                f"empty gRPC call (health check) p50, beside {label} (ms)",
                                f"{measured['empty_call_p50_ms']:.2f}",
                            )
                        )
                        rows.append(
                            (
                                f"back to back in blocks of {BLOCK}, {label}: gRPC / in-process / "
                                "empty call p50 (ms)",
                                f"{measured['grpc_p50_ms_back_to_back']:.2f} / "
                                f"{measured['inprocess_p50_ms_back_to_back']:.2f} / "
                                f"{measured['empty_call_p50_ms_back_to_back']:.2f}",
                            )
                        )
            finally:
                database.close()
                server.stop()
    headline = results.get("scifact") or results["synthetic"]
    assert isinstance(headline, dict)
    results["grpc_p50_ms"] = headline["grpc_p50_ms"]
    results["inprocess_p50_ms"] = headline["inprocess_p50_ms"]
    results["grpc_overhead_p50_ms"] = headline["grpc_p50_ms"] - headline["inprocess_p50_ms"]
    results["empty_call_p50_ms"] = headline["empty_call_p50_ms"]
    results["request_path_p50_ms"] = headline["request_path_p50_ms"]
    results["grpc_overhead_p50_ms_back_to_back"] = headline["overhead_p50_ms_back_to_back"]
    results["latency_protocol"] = (
        "headline: gRPC then in-process for every query (both searches follow a wait); "
        "*_back_to_back: the paths alternate in blocks of 50 queries, each back to back"
    )
    if not args.quick:
        results.setdefault("restart_s_200k", restart_s)
    print("| measure | value |\n| --- | --- |")
    for label, value in rows:
        print(f"| {label} | {value} |")
    print(
        f"| gRPC p50 overhead over in-process, SciFact (ms) | {results['grpc_overhead_p50_ms']:.2f} |"
    )
    results["load_average_at_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
