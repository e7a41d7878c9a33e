"""Retrieval benchmark (issue 6): BM25, dense through vecdb, fusion and vector PRF on SciFact.

Every dense search goes through a real vecdb server (started here in a temporary directory
unless ``--vecdb HOST:PORT`` names one) with ``exact=True``, as the reference figures were
measured with exact search. Parameters are tuned on a seeded sample of the *train* queries
(``../shared/data/scifact/train``); the table reports the 300 *test* queries. The best pipeline is
the one best on train, never chosen on test. Significance (paired t-test ``†``, randomization test
``‡``, p < 0.05) is against the best single retriever on train. Run::

    python benchmarks/retrieval.py            # tune on 400 train queries, full grid
    python benchmarks/retrieval.py --quick    # tune on 150 train queries, small grid

Prints a markdown table and writes ``benchmarks/results/retrieval.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
# This script is named like the package it measures: when run as a file its directory comes
# first on the import path and would shadow the package, so leave it out.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]

from retrieval.beir import Dataset, document_text  # noqa: E402
from retrieval.bm25 import BM25  # noqa: E402
from retrieval.dense import VecdbSearcher, index_documents  # noqa: E402
from retrieval.evaluation import DEFAULT_MEASURES, compare, markdown_table, per_query  # noqa: E402
from retrieval.pipeline import Experiment, Pipeline  # noqa: E402
from retrieval.trec import write_run  # noqa: E402
from retrieval.tuning import Grid, objective, tune  # noqa: E402
from vecdb import Client  # noqa: E402

SCIFACT = HERE.parent / ".." / "shared" / "data" / "scifact"
RESULTS = HERE / "results"
COLLECTION = "scifact"
# Measured on these exact files (see ../shared/data/scifact/README.md).
REFERENCE = {"dense_ndcg10": 0.645, "bm25_ndcg10": 0.679, "interpolation_ndcg10": 0.733}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Server:
    """A ``vecdb serve`` subprocess on a free loopback port, logging to a file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.log = directory / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self, timeout: float = 60.0) -> str:
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vecdb.cli", "serve", "--data-dir",
                 str(self.directory / "data"), "--host", "127.0.0.1", "--port", "0"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"serving on [^ ]+:(\d+)", self.log.read_text(errors="replace"))
            if found:
                self.address = f"127.0.0.1:{found.group(1)}"
                return self.address
            if self.process.poll() is not None:
                raise RuntimeError(f"vecdb serve exited:\n{self.log.read_text()}")
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("vecdb serve did not start in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def rows_to_run(tuned: dict[str, Any]) -> list[tuple[str, Pipeline]]:
    """Return the table's rows: (name, pipeline), references first, then the tuned pipelines."""
    best = {name: result.best for name, result in tuned.items()}
    return [
        ("BM25 (k1=1.2, b=0.75)", Pipeline("bm25")),
        ("BM25, tuned k1/b", best["bm25"]),
        ("dense (all-MiniLM-L6-v2)", Pipeline("dense")),
        ("interpolation 0.5/0.5 min-max", Pipeline("interpolation")),
        ("interpolation, tuned", best["interpolation"]),
        ("RRF (k=60)", best["rrf"]),
        ("dense + PRF Average", best["dense-prf-average"]),
        ("dense + PRF Rocchio", best["dense-prf-rocchio"]),
        ("interpolation before PRF", best["prf-before"]),
        ("interpolation after PRF", best["prf-after"]),
        ("interpolation before and after PRF", best["prf-both"]),
        ("multi-vector PRF + interpolation", best["multi-vector-prf"]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SCIFACT, help="BEIR SciFact directory")
    parser.add_argument("--vecdb", help="address of a running server (default: start one)")
    parser.add_argument("--quick", action="store_true", help="150 train queries, small grid")
    parser.add_argument("--tune-queries", type=int, help="train queries to tune on (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=10_000, help="randomization test trials")
    parser.add_argument("--runs-dir", type=Path, help="also write each row's TREC run here")
    parser.add_argument("--output", type=Path, default=RESULTS / "retrieval.json")
    args = parser.parse_args(argv)
    tune_queries = (
        args.tune_queries if args.tune_queries is not None else (150 if args.quick else 400)
    )
    started = time.perf_counter()

    if not (args.data / "docs.npy").is_file():
        say(f"SciFact not found at {args.data} (expected ../shared/data/scifact beside the repo)")
        return 2
    dataset = Dataset.load(args.data)
    test, train = dataset.split("test"), dataset.split("train")
    assert dataset.doc_vectors is not None

    with tempfile.TemporaryDirectory(prefix="retrieval-bench-") as scratch:
        server = None
        address = args.vecdb
        if address is None:
            server = Server(Path(scratch))
            address = server.start()
            say(f"started vecdb at {address}")
        try:
            client = Client(address)
            client.wait_ready()
            loaded = index_documents(
                client, COLLECTION, dataset.doc_vectors, replace=server is not None
            )
            info = {c.name: c for c in client.list_collections()}[COLLECTION]
            if info.point_count != len(dataset.doc_vectors):
                raise SystemExit(
                    f"collection {COLLECTION!r} holds {info.point_count} points, "
                    f"SciFact has {len(dataset.doc_vectors)}: drop it or use another server"
                )
            say(
                f"collection {COLLECTION!r}: {info.point_count} points ({'loaded' if loaded else 'existing'})"
            )
            report = run_benchmark(args, client, dataset, test, train, tune_queries)
        finally:
            if server is not None:
                server.stop()

    report["seconds_total"] = round(time.perf_counter() - started, 1)
    report["command"] = "python benchmarks/retrieval.py" + (" --quick" if args.quick else "")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    say(f"wrote {args.output} ({report['seconds_total']} s)")
    return 0


def run_benchmark(
    args: argparse.Namespace,
    client: Client,
    dataset: Dataset,
    test: Any,
    train: Any,
    tune_queries: int,
) -> dict[str, Any]:
    doc_ids = [document.doc_id for document in dataset.corpus]
    began = time.perf_counter()
    bm25 = BM25(doc_ids, [document_text(document) for document in dataset.corpus])
    say(
        f"BM25 index: {bm25.n_docs} docs, {len(bm25.vocabulary)} terms ({time.perf_counter() - began:.1f} s)"
    )
    searcher = VecdbSearcher(client, COLLECTION, exact=True)
    test_experiment = Experiment.from_split(dataset, test, searcher, bm25=bm25)
    train_experiment = Experiment.from_split(dataset, train, searcher, bm25=bm25)
    if tune_queries and tune_queries < len(train.query_ids):
        chosen = np.random.default_rng(args.seed).choice(
            len(train.query_ids), tune_queries, replace=False
        )
        train_experiment = train_experiment.subset([train.query_ids[i] for i in sorted(chosen)])

    began = time.perf_counter()
    grid = Grid.quick() if args.quick else Grid()
    tuned = tune(train_experiment, train.qrels, grid=grid, progress=None)
    tuning_seconds = time.perf_counter() - began
    say(
        f"tuned on {len(train_experiment.query_ids)} train queries in {tuning_seconds:.0f} s "
        f"({train_experiment.searched_queries} vecdb searches)"
    )

    rows = rows_to_run(tuned)
    train_values = {
        name: objective(train_experiment, train.qrels, pipeline) for name, pipeline in rows
    }
    began = time.perf_counter()
    results = {}
    for name, pipeline in rows:
        run = test_experiment.run(pipeline)
        results[name] = per_query(test.qrels, run, DEFAULT_MEASURES)
        if args.runs_dir:
            args.runs_dir.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
            write_run(run, args.runs_dir / f"{slug}.trec", tag=slug)
    test_seconds = time.perf_counter() - began

    singles = ["BM25 (k1=1.2, b=0.75)", "BM25, tuned k1/b", "dense (all-MiniLM-L6-v2)"]
    baseline = max(singles, key=lambda name: (train_values[name], -singles.index(name)))
    best = max((name for name, _ in rows), key=lambda name: train_values[name])
    comparisons = compare(results, baseline, trials=args.trials, seed=args.seed)
    specs = {name: f"`{pipeline.spec()}`" for name, pipeline in rows}
    train_cells = {name: f"{value:.4f}" for name, value in train_values.items()}
    table = markdown_table(
        comparisons,
        DEFAULT_MEASURES,
        baseline=baseline,
        columns={"setting": specs, "train nDCG@10": train_cells},
    )
    print(
        f"SciFact test ({len(test.query_ids)} queries); tuned on {len(train_experiment.query_ids)} train queries; "
        f"† paired t-test, ‡ randomization test, p < 0.05 vs {baseline}\n"
    )
    print(table)
    means = {c.name: c.means for c in comparisons}
    print(f"\nbest on train: {best} -> test nDCG@10 {means[best]['nDCG@10']:.4f}")

    pipelines = dict(rows)
    return {
        "dataset": "BEIR SciFact (../shared/data/scifact)",
        "quick": bool(args.quick),
        "queries": {"test": len(test.query_ids), "train_tuning": len(train_experiment.query_ids)},
        "dense_search": "vecdb server, exact=True (collection of 5183 cosine vectors)",
        "bm25": {
            "k1": 1.2,
            "b": 0.75,
            "analyzer": bm25.analyzer.describe(),
            "text": '(title + " " + text).strip()',
        },
        "reference": REFERENCE,
        "bm25_ndcg10": means["BM25 (k1=1.2, b=0.75)"]["nDCG@10"],
        "dense_ndcg10": means["dense (all-MiniLM-L6-v2)"]["nDCG@10"],
        "interpolation_ndcg10": means["interpolation 0.5/0.5 min-max"]["nDCG@10"],
        "best_pipeline": pipelines[best].spec(),
        "best_name": best,
        "best_ndcg10": means[best]["nDCG@10"],
        "baseline": baseline,
        "rows": [
            {
                "name": c.name,
                "pipeline": pipelines[c.name].spec(),
                "train_ndcg10": train_values[c.name],
                "test": c.means,
                "p_t_test": c.t_test,
                "p_randomization": c.randomization,
            }
            for c in comparisons
        ],
        "tuning": {
            "split": "train",
            "queries": len(train_experiment.query_ids),
            "seed": args.seed,
            "seconds": round(tuning_seconds, 1),
            "vecdb_searches": train_experiment.searched_queries,
            "grid": {key: list(value) for key, value in vars(grid).items()},
            "trials": {
                name: [[trial.pipeline.spec(), trial.value] for trial in result.trials]
                for name, result in tuned.items()
            },
        },
        "test_seconds": round(test_seconds, 1),
        "test_vecdb_searches": test_experiment.searched_queries,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "table": table,
    }


if __name__ == "__main__":
    sys.exit(main())
