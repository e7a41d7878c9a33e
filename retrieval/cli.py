"""The ``retrieval`` command: run pipelines, evaluate runs, tune parameters on a training split.

::

    retrieval run --dataset ../shared/data/scifact --pipeline bm25 --pipeline dense \\
        --pipeline interpolation:alpha=0.4 --output-dir runs/
    retrieval eval ../shared/data/scifact/qrels.tsv runs/*.trec
    retrieval tune --dataset ../shared/data/scifact --output tuned.json
    retrieval run --dataset ../shared/data/scifact --tuned tuned.json

Dense pipelines search a running vecdb server (``--vecdb``, default ``$VECDB_ADDRESS`` or
127.0.0.1:50051); the collection (``--collection``, default the dataset directory's name) is
created from ``docs.npy`` when it does not exist yet.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrieval.beir import Dataset
    from retrieval.dense import Searcher, VecdbClient
    from retrieval.evaluation import PerQuery
    from retrieval.pipeline import Pipeline

DEFAULT_ADDRESS = "127.0.0.1:50051"
DENSE_KINDS = frozenset(
    {"dense", "interpolation", "rrf", "dense-prf", "prf-before", "prf-after", "prf-both"}
    | {"multi-vector-prf"}
)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _progress_bar(description: str) -> Callable[[int], object] | None:
    """Return an update function of a tqdm bar on a terminal, or None when output is piped."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(desc=description, unit="query", leave=False)
    update: Callable[[int], object] = bar.update
    return update


def _connect(address: str, api_key: str | None) -> VecdbClient:
    from vecdb import Client

    client = Client(address, api_key=api_key)
    client.wait_ready(timeout=10.0)
    return client


def _searcher(args: argparse.Namespace, dataset: Dataset) -> Searcher:
    from retrieval.dense import VecdbSearcher, index_documents

    if dataset.doc_vectors is None:
        raise SystemExit(f"{dataset.root} has no docs.npy/doc_ids.txt: dense pipelines need them")
    client = _connect(args.vecdb, args.api_key)
    collection = args.collection or dataset.root.name
    if index_documents(client, collection, dataset.doc_vectors):
        _say(f"loaded {len(dataset.doc_vectors)} document vectors into collection {collection!r}")
    held = {info.name: info.point_count for info in client.list_collections()}[collection]
    if held != len(dataset.doc_vectors):
        raise SystemExit(
            f"collection {collection!r} holds {held} points but {dataset.root} has "
            f"{len(dataset.doc_vectors)} documents: name another one with --collection"
        )
    return VecdbSearcher(
        client, collection, exact=args.exact, progress=_progress_bar("vecdb search")
    )


class _NoSearcher:
    """Stands in when only BM25 pipelines run, so no server is needed."""

    def search_batch(self, vectors: Any, k: int) -> Any:
        raise SystemExit("this pipeline searches vecdb: give --vecdb ADDRESS of a running server")


def _pipelines(args: argparse.Namespace) -> list[Pipeline]:
    from retrieval.pipeline import Pipeline

    specs: list[str] = list(args.pipeline or [])
    if args.tuned:
        tuned = json.loads(Path(args.tuned).read_text(encoding="utf-8"))
        specs.extend(tuned["pipelines"].values())
    if not specs:
        raise SystemExit("give at least one --pipeline SPEC (or --tuned FILE)")
    try:
        return list(dict.fromkeys(Pipeline.parse(spec) for spec in specs))
    except ValueError as error:
        raise SystemExit(str(error)) from None


def _file_name(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", spec) + ".trec"


def _table(
    results: dict[str, PerQuery],
    measures: Sequence[str],
    baseline: str | None,
    trials: int,
) -> str:
    from retrieval.evaluation import compare, markdown_table

    comparisons = compare(results, baseline, trials=trials)
    return markdown_table(comparisons, measures, baseline=baseline)


def _experiment(args: argparse.Namespace, split_name: str, pipelines: Sequence[Pipeline]) -> Any:
    from retrieval.beir import Dataset
    from retrieval.pipeline import Experiment

    dataset = Dataset.load(args.dataset)
    split = dataset.split(split_name)
    needs_vecdb = any(p.kind in DENSE_KINDS for p in pipelines)
    searcher: Searcher = _searcher(args, dataset) if needs_vecdb else _NoSearcher()
    return split, Experiment.from_split(dataset, split, searcher, k=args.k)


def cmd_run(args: argparse.Namespace) -> int:
    """Run pipelines on a split, write their TREC runs, print the evaluation table."""
    from retrieval.evaluation import per_query
    from retrieval.trec import write_run

    pipelines = _pipelines(args)
    split, experiment = _experiment(args, args.split, pipelines)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    results = {}
    for pipeline in pipelines:
        started = time.perf_counter()
        run = experiment.run(pipeline)
        spec = pipeline.spec()
        path = output / _file_name(spec)
        write_run(run, path, tag=re.sub(r"\W+", "_", pipeline.kind))
        results[spec] = per_query(split.qrels, run, args.measures)
        _say(f"{spec}: {path} ({time.perf_counter() - started:.1f} s)")
    baseline = args.baseline if args.baseline in results else None
    print(_table(results, args.measures, baseline, args.trials))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluate TREC run files against qrels (TREC or BEIR TSV) and print the table."""
    from retrieval.evaluation import per_query
    from retrieval.trec import read_run

    qrels = _read_any_qrels(Path(args.qrels))
    results = {
        Path(path).name: per_query(qrels, read_run(path), args.measures) for path in args.runs
    }
    baseline = Path(args.baseline).name if args.baseline else None
    if baseline is not None and baseline not in results:
        raise SystemExit(f"--baseline {args.baseline} is not one of the runs given")
    print(_table(results, args.measures, baseline, args.trials))
    return 0


def _read_any_qrels(path: Path) -> dict[str, dict[str, int]]:
    from retrieval import beir, trec

    with open(path, encoding="utf-8") as lines:
        first = lines.readline()
    if "\t" in first and len(first.rstrip("\n").split("\t")) == 3:
        return beir.read_qrels(path)
    return trec.read_qrels(path)


def cmd_tune(args: argparse.Namespace) -> int:
    """Tune every pipeline on the training split; print the trials and write the best specs."""
    import numpy as np

    from retrieval.pipeline import Pipeline
    from retrieval.tuning import Grid, tune

    if args.split == "test":
        raise SystemExit("tune on a training split, never on the test queries")
    split, experiment = _experiment(args, args.split, [Pipeline("dense")])
    if args.queries and args.queries < len(experiment.query_ids):
        generator = np.random.default_rng(args.seed)
        chosen = generator.choice(len(experiment.query_ids), args.queries, replace=False)
        experiment = experiment.subset([experiment.query_ids[i] for i in sorted(chosen)])
    started = time.perf_counter()
    tuned = tune(
        experiment,
        split.qrels,
        grid=Grid.quick() if args.quick else Grid(),
        measure=args.measure,
        progress=_say if args.verbose else None,
    )
    print(
        f"| pipeline | best setting | {args.measure} ({args.split}, {len(experiment.query_ids)} q) |"
    )
    print("| --- | --- | --- |")
    for name, result in tuned.items():
        print(f"| {name} | `{result.best.spec()}` | {result.value:.4f} |")
    document = {
        "dataset": str(args.dataset),
        "split": args.split,
        "queries": len(experiment.query_ids),
        "measure": args.measure,
        "seconds": round(time.perf_counter() - started, 1),
        "pipelines": {name: result.best.spec() for name, result in tuned.items()},
        "values": {name: result.value for name, result in tuned.items()},
    }
    if args.output:
        Path(args.output).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        _say(f"wrote {args.output}")
    return 0


def _add_connection(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("vecdb")
    group.add_argument(
        "--vecdb",
        default=os.environ.get("VECDB_ADDRESS", DEFAULT_ADDRESS),
        help=f"vecdb server host:port (default $VECDB_ADDRESS or {DEFAULT_ADDRESS})",
    )
    group.add_argument("--api-key", default=os.environ.get("VECDB_API_KEY"))
    group.add_argument("--collection", help="collection name (default: the dataset's directory)")
    group.add_argument(
        "--exact", action="store_true", help="exact search, bypassing the approximate index"
    )


def _add_dataset(parser: argparse.ArgumentParser, split: str) -> None:
    parser.add_argument("--dataset", required=True, help="BEIR collection directory")
    parser.add_argument("--split", default=split, help=f"query split (default {split})")
    parser.add_argument("-k", "--k", type=int, default=1000, help="results per query")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``retrieval`` command."""
    from retrieval.evaluation import DEFAULT_MEASURES

    parser = argparse.ArgumentParser(
        prog="retrieval",
        description="Retrieval experiments over vecdb: BM25, dense, fusion, vector PRF.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run pipelines, write TREC runs, print the table")
    _add_dataset(run, "test")
    run.add_argument(
        "--pipeline",
        action="append",
        help="pipeline spec kind[:key=value,...], repeatable (see retrieval.pipeline)",
    )
    run.add_argument("--tuned", help="also run every pipeline of a `retrieval tune` output file")
    run.add_argument("--output-dir", default="runs", help="where run files go (default runs/)")
    run.add_argument("--baseline", help="pipeline spec the significance tests compare against")
    _add_connection(run)
    run.set_defaults(func=cmd_run)

    evaluate = commands.add_parser("eval", help="evaluate TREC runs against qrels")
    evaluate.add_argument("qrels", help="qrels file (TREC, or BEIR TSV with header)")
    evaluate.add_argument("runs", nargs="+", help="TREC run files")
    evaluate.add_argument("--baseline", help="the run the significance tests compare against")
    evaluate.set_defaults(func=cmd_eval)

    tune = commands.add_parser("tune", help="tune pipeline parameters on a training split")
    _add_dataset(tune, "train")
    tune.add_argument("--queries", type=int, default=0, help="tune on a seeded sample (0: all)")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--quick", action="store_true", help="a smaller grid")
    tune.add_argument("--measure", default="nDCG@10")
    tune.add_argument("--output", help="write the best pipeline specs to this JSON file")
    tune.add_argument("--verbose", action="store_true", help="print every trial")
    _add_connection(tune)
    tune.set_defaults(func=cmd_tune)

    for command in (run, evaluate):
        command.add_argument(
            "--measures", nargs="+", default=list(DEFAULT_MEASURES), help="ir_measures names"
        )
        command.add_argument(
            "--trials", type=int, default=10_000, help="randomization test permutations"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``retrieval`` command."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
