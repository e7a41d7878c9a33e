"""The ``vecdb`` command: serve, ingest, build, search, batch, stats."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from vecdb.engine.errors import InvalidArgument, VecdbError

DEFAULT_ADDRESS = "127.0.0.1:50051"


def _progress(total: int, unit: str, description: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=description, disable=not sys.stderr.isatty())


def _client(args: argparse.Namespace) -> Any:
    from vecdb.client import Client

    root = Path(args.ca_file).read_bytes() if args.ca_file else None
    return Client(args.address, api_key=args.api_key, tls=args.tls, root_certificates=root)


# --- serve -----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from vecdb.server import load_config, serve

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = load_config(
        Path(args.config) if args.config else None,
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir) if args.data_dir else None,
    )
    serve(config)
    return 0


# --- ingest ----------------------------------------------------------------------------------


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield (line number, parsed object) for each non-blank line of a JSONL file."""
    with path.open() as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                raise InvalidArgument(f"{path}:{number}: not JSON: {error}") from None


def _read_points(
    path: Path, count: int
) -> tuple[list[str], list[dict[str, object]], list[list[str]]]:
    ids: list[str] = []
    attributes: list[dict[str, object]] = []
    tenants: list[list[str]] = []
    for number, record in _jsonl(path):
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise InvalidArgument(f'{path}:{number}: each line needs "id" (a string)')
        ids.append(record["id"])
        attributes.append(record.get("attributes") or {})
        tenants.append(list(record.get("tenants") or []))
    if len(ids) != count:
        raise InvalidArgument(f"{path} has {len(ids)} points but the vectors file has {count} rows")
    return ids, attributes, tenants


def _parse_schema(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    schema = {}
    for item in text.split(","):
        name, sep, kind = item.strip().partition(":")
        if not sep:
            raise InvalidArgument(f"--schema item {item!r} must be name:type")
        schema[name] = kind
    return schema


def cmd_ingest(args: argparse.Namespace) -> int:
    vectors = np.load(args.vectors, mmap_mode="r")
    if vectors.ndim != 2:
        raise InvalidArgument(f"{args.vectors} holds shape {vectors.shape}: expected (n, dim)")
    count = vectors.shape[0]
    if args.points:
        ids, attributes, tenants = _read_points(Path(args.points), count)
    else:
        ids, attributes, tenants = [str(i) for i in range(count)], [], []
    with _client(args) as client:
        if args.create:
            client.create_collection(
                args.collection, int(vectors.shape[1]), args.metric, _parse_schema(args.schema)
            )
        with _progress(count, "vec", f"ingest {args.collection}") as bar:
            written = client.upsert_many(
                args.collection,
                ids,
                vectors,
                attributes if any(attributes) else None,
                tenants if any(tenants) else None,
                batch_size=args.batch_size,
                on_batch=bar.update,
            )
    print(json.dumps({"collection": args.collection, "upserted": written}))
    return 0


# --- search / batch --------------------------------------------------------------------------


def _matches_json(query_id: str | None, matches: Any) -> dict[str, object]:
    record: dict[str, object] = {}
    if query_id is not None:
        record["query_id"] = query_id
    record["results"] = [
        {"id": i, "score": float(s)} for i, s in zip(matches.ids, matches.scores, strict=True)
    ]
    if matches.attributes is not None:
        for result, values in zip(record["results"], matches.attributes, strict=True):  # type: ignore[call-overload]
            result["attributes"] = values
    if matches.explain is not None:
        record["explain"] = vars(matches.explain)
    return record


def _load_vector(args: argparse.Namespace) -> np.ndarray[Any, Any]:
    if args.vector:
        vector: np.ndarray[Any, Any] = np.asarray(json.loads(args.vector), dtype=np.float32)
        return vector
    if args.npy:
        row: np.ndarray[Any, Any] = np.load(args.npy, mmap_mode="r")[args.row].astype(np.float32)
        return row
    raise InvalidArgument("give the query as --vector '[...]' or --npy FILE --row N")


def cmd_search(args: argparse.Namespace) -> int:
    vector = _load_vector(args)
    search_filter = json.loads(args.filter) if args.filter else None
    with _client(args) as client:
        matches = client.search(
            args.collection,
            vector,
            args.k,
            tenant=args.tenant,
            filter=search_filter,
            with_attributes=args.with_attributes,
            explain=args.explain,
            exact=args.exact,
        )
    print(json.dumps(_matches_json(None, matches), indent=2))
    return 0


def _read_queries(path: Path, vectors_path: Path | None, default_k: int) -> list[Any]:
    from vecdb.client import Query

    companion = np.load(vectors_path, mmap_mode="r") if vectors_path else None
    queries = []
    for number, record in _jsonl(path):
        if not isinstance(record, dict):
            raise InvalidArgument(f"{path}:{number}: each line must be a JSON object")
        query_id = str(record.get("id", number))
        if "vector" in record:
            vector = np.asarray(record["vector"], dtype=np.float32)
        elif "row" in record and companion is not None:
            vector = np.asarray(companion[int(record["row"])], dtype=np.float32)
        else:
            raise InvalidArgument(
                f'{path}:{number}: each query needs "vector", or "row" with --vectors FILE.npy'
            )
        queries.append(
            Query(
                query_id=query_id,
                vector=vector,
                k=int(record.get("k", default_k)),
                tenant=record.get("tenant"),
                filter=record.get("filter"),
            )
        )
    return queries


def _write_result(out: TextIO, fmt: str, run_name: str, query_id: str, matches: Any) -> None:
    if fmt == "trec":
        for rank, (doc_id, score) in enumerate(zip(matches.ids, matches.scores, strict=True), 1):
            out.write(f"{query_id} Q0 {doc_id} {rank} {float(score):.6f} {run_name}\n")
    else:
        out.write(json.dumps(_matches_json(query_id, matches)) + "\n")


def cmd_batch(args: argparse.Namespace) -> int:
    queries = _read_queries(
        Path(args.queries), Path(args.vectors) if args.vectors else None, args.k
    )
    if args.partitioning and args.save_partitioning:
        raise InvalidArgument("give --partitioning NAME or --save-partitioning NAME, not both")
    written = 0
    with (
        _client(args) as client,
        open(args.out, "w") as out,
        _progress(len(queries), "q", "batch") as bar,
    ):

        def on_progress(stage: str, fraction: float) -> None:
            bar.set_postfix_str(f"partitioning: {stage} {100 * fraction:.0f}%")

        for query_id, matches in client.batch_search(
            args.collection,
            queries,
            with_attributes=args.with_attributes,
            explain=args.explain,
            partitioning=args.partitioning,
            save_partitioning=args.save_partitioning,
            recall_target=args.recall_target,
            on_progress=on_progress,
        ):
            _write_result(out, args.format, args.run_name, query_id, matches)
            written += 1
            bar.update(1)
    summary: dict[str, object] = {"queries": written, "out": args.out}
    if args.partitioning or args.save_partitioning:
        summary["partitioning"] = args.partitioning or args.save_partitioning
    print(json.dumps(summary), file=sys.stderr)
    return 0


def cmd_drop_partitioning(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.drop_partitioning(args.collection, args.name)
    print(json.dumps({"collection": args.collection, "dropped_partitioning": args.name}))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    train = np.load(args.train_queries) if args.train_queries else None
    with _client(args) as client, _progress(100, "%", f"build {args.collection}") as bar:
        stages: list[str] = [""]
        shown = [0]

        def on_progress(stage: str, fraction: float) -> None:
            if stage != stages[-1]:
                stages.append(stage)
                bar.set_postfix_str(stage)
            target = int(fraction * 100)
            if target > shown[0]:
                bar.update(target - shown[0])
                shown[0] = target

        info = client.build_index(
            args.collection,
            recall_target=args.recall_target,
            train_queries=train,
            reduced_dim=args.reduced_dim,
            code_bits=args.code_bits,
            structure=args.structure,
            on_progress=on_progress,
        )
    print(json.dumps(info))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _client(args) as client:
        infos = (
            [client.describe_collection(args.collection)]
            if args.collection
            else client.list_collections()
        )
    for info in infos:
        print(
            json.dumps(
                {
                    "name": info.name,
                    "dim": info.dim,
                    "metric": info.metric.value,
                    "schema": {k: v.value for k, v in info.schema.items()},
                    "points": info.point_count,
                    "tenants": info.tenant_count,
                    "index": info.index,
                    "partitionings": info.partitionings,
                }
            )
        )
    return 0


# --- parser ----------------------------------------------------------------------------------


def _connection_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--address",
        default=os.environ.get("VECDB_ADDRESS", DEFAULT_ADDRESS),
        help=f"server host:port (default $VECDB_ADDRESS or {DEFAULT_ADDRESS})",
    )
    group.add_argument(
        "--api-key",
        default=os.environ.get("VECDB_API_KEY"),
        help="API key sent as 'authorization: Bearer <key>' (default $VECDB_API_KEY)",
    )
    group.add_argument("--tls", action="store_true", help="connect with TLS")
    group.add_argument("--ca-file", help="PEM root certificate(s) to trust for TLS")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``vecdb`` command."""
    parser = argparse.ArgumentParser(
        prog="vecdb",
        description="vecdb: a vector search service. Run a server, load vectors, search them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the gRPC server",
        description="Run the gRPC server (default: 127.0.0.1:50051, data in ./vecdb-data). "
        "SIGTERM drains in-flight calls and closes the store cleanly.",
    )
    serve.add_argument("--config", help="TOML config file (keys, TLS, limits); or $VECDB_CONFIG")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 50051; 0 picks one)")
    serve.add_argument("--data-dir", help="data directory (default ./vecdb-data)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=cmd_serve)

    ingest = commands.add_parser(
        "ingest",
        help="load vectors from .npy (+ ids/attributes/tenants from JSONL)",
        description="Stream vectors from a .npy file into a collection, in durable batches. "
        'Row i of the .npy goes with line i of --points: {"id": ..., "attributes": {...}, '
        '"tenants": [...]}. Without --points, ids are row numbers.',
    )
    ingest.add_argument("collection")
    ingest.add_argument("--vectors", required=True, help="float32 .npy file of shape (n, dim)")
    ingest.add_argument("--points", help="JSONL file, one point per line, same order as vectors")
    ingest.add_argument("--create", action="store_true", help="create the collection first")
    ingest.add_argument("--metric", default="cosine", choices=["cosine", "ip", "l2"])
    ingest.add_argument(
        "--schema", help="attribute schema for --create, e.g. year:int,tags:keyword_list"
    )
    ingest.add_argument("--batch-size", type=int, default=2000)
    _connection_options(ingest)
    ingest.set_defaults(func=cmd_ingest)

    search = commands.add_parser(
        "search",
        help="search one query vector",
        description="Search one query vector and print the results as JSON.",
    )
    search.add_argument("collection")
    search.add_argument("--vector", help="the query as a JSON list of floats")
    search.add_argument("--npy", help="take the query from this .npy file ...")
    search.add_argument("--row", type=int, default=0, help="... at this row")
    search.add_argument("-k", "--k", type=int, default=10)
    search.add_argument("--tenant")
    search.add_argument("--filter", help='filter as JSON, e.g. {"field": "year", "gte": 2020}')
    search.add_argument("--with-attributes", action="store_true")
    search.add_argument("--explain", action="store_true", help="show the plan the server chose")
    search.add_argument("--exact", action="store_true", help="exact search, bypassing the index")
    _connection_options(search)
    search.set_defaults(func=cmd_search)

    batch = commands.add_parser(
        "batch",
        help="run a file of queries, write results",
        description='Run a JSONL file of queries ({"id", "vector" or "row", "k", "tenant", '
        '"filter"}) through one BatchSearch stream and write JSONL results or a TREC run. '
        "Results are written as the server finishes each chunk; Ctrl-C cancels the batch. A "
        "recurring workload can save the partitioning learned from one batch and reuse it.",
    )
    batch.add_argument("collection")
    batch.add_argument("queries", help="JSONL file of queries")
    batch.add_argument("--out", required=True, help="results file")
    batch.add_argument("--vectors", help='companion .npy for queries given by "row"')
    batch.add_argument("-k", "--k", type=int, default=10, help="k for queries that give none")
    batch.add_argument("--format", choices=["jsonl", "trec"], default="jsonl")
    batch.add_argument("--run-name", default="vecdb")
    batch.add_argument("--with-attributes", action="store_true")
    batch.add_argument("--explain", action="store_true")
    batch.add_argument(
        "--partitioning",
        metavar="NAME",
        help="answer through the workload partitioning saved under NAME (see vecdb stats)",
    )
    batch.add_argument(
        "--save-partitioning",
        metavar="NAME",
        help="learn a workload partitioning from this batch's predicates, save it under NAME "
        "for later batches (--partitioning NAME), and answer through it (admin key)",
    )
    batch.add_argument(
        "--recall-target",
        type=float,
        help="recall@k a new partitioning is calibrated for (default 0.98)",
    )
    _connection_options(batch)
    batch.set_defaults(func=cmd_batch)

    drop_partitioning = commands.add_parser(
        "drop-partitioning",
        help="delete a saved workload partitioning",
        description="Delete the workload partitioning a batch saved under NAME "
        "(vecdb batch --save-partitioning NAME; vecdb stats lists them). Needs an admin key.",
    )
    drop_partitioning.add_argument("collection")
    drop_partitioning.add_argument("name")
    _connection_options(drop_partitioning)
    drop_partitioning.set_defaults(func=cmd_drop_partitioning)

    build = commands.add_parser(
        "build",
        help="train the reduced, quantized index for a recall target",
        description="Train the collection's approximate index (LeanVec projection, scalar codes, "
        "graph or lists, exact rerank), choosing its knobs by measurement to reach the recall "
        "target. With --train-queries (a .npy of real queries) the projection is query-aware.",
    )
    build.add_argument("collection")
    build.add_argument("--recall-target", type=float, default=0.95, help="recall@10 to reach")
    build.add_argument("--train-queries", help="float32 .npy of real queries (OOD projection)")
    build.add_argument("--reduced-dim", type=int, help="fix the reduced dimension d'")
    build.add_argument("--code-bits", type=int, help="fix the code bits (4 or 8)")
    build.add_argument("--structure", choices=["hnsw", "ivf"], help="fix the search structure")
    _connection_options(build)
    build.set_defaults(func=cmd_build)

    stats = commands.add_parser(
        "stats",
        help="show collections, counts and index settings",
        description="Print one JSON line per collection: dim, metric, schema, counts, index.",
    )
    stats.add_argument("collection", nargs="?")
    _connection_options(stats)
    stats.set_defaults(func=cmd_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``vecdb`` command; return its exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except VecdbError as error:
        print(f"vecdb {args.command}: {error}", file=sys.stderr)
        return 2
    except (OSError, json.JSONDecodeError) as error:
        print(f"vecdb {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
