"""The approximate index through the service: build, describe, search, fresh writes, restart."""

from __future__ import annotations

import numpy as np
import pytest

from vecdb import Client
from vecdb.engine import Database

DIM = 32
N = 4000


CENTRES = np.random.default_rng(0).standard_normal((40, DIM)).astype(np.float32) * 3


def _clustered(n: int, seed: int) -> np.ndarray:
    """Points around shared cluster centres (data and queries from one distribution)."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, DIM)).astype(np.float32)
    return (CENTRES[rng.integers(0, len(CENTRES), n)] + noise).astype(np.float32)


def _recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


@pytest.mark.slow
def test_build_search_fresh_writes_and_restart(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("index").start()
    data = _clustered(N, 0)
    queries = _clustered(60, 1)
    ids = [f"p{i}" for i in range(N)]
    with Client(server.address) as client:
        client.create_collection("c", DIM, "l2", {"group": "int"})
        client.upsert_many("c", ids, data, [{"group": i % 10} for i in range(N)])
        with pytest.raises(Exception, match="recall_target"):
            client.build_index("c", recall_target=1.5)
        stages: list[str] = []
        info = client.build_index("c", recall_target=0.9, on_progress=lambda s, f: stages.append(s))
        assert stages, "no progress was streamed"
        assert info["kind"] == "leanvec" and info["indexed_points"] == N
        assert 0 < info["reduced_dim"] <= DIM and info["measured_recall"] >= 0.9
        described = client.describe_collection("c").index
        assert described["reduced_dim"] == info["reduced_dim"]
        # no training queries: PCA of the data, centred for squared distances
        assert described["projection"] == "pca"
        assert described["projection_method"] == "centered"

        truth = [client.search("c", q, 10, exact=True).ids for q in queries]
        approximate = [client.search("c", q, 10, explain=True) for q in queries]
        assert approximate[0].explain is not None and approximate[0].explain.plan == "index"
        # a broken projection, quantizer, structure or rerank drops far below this
        assert _recall([m.ids for m in approximate], truth) >= 0.85

        # fresh writes are searchable at once; deletes never return
        client.upsert("c", ["fresh"], queries[:1])
        assert client.search("c", queries[0], 1).ids == ["fresh"]
        gone = approximate[1].ids[:3]
        client.delete("c", gone)
        assert not set(gone) & set(client.search("c", queries[1], 10).ids)

        # a filter keeps k results at any selectivity
        narrow = client.search("c", queries[2], 10, filter={"field": "group", "eq": 3})
        assert len(narrow) == 10
        before = [client.search("c", q, 10).ids for q in queries]
    assert server.terminate() == 0

    server.start()
    with Client(server.address) as client:
        after_info = client.describe_collection("c").index
        assert after_info["build_seconds"] == pytest.approx(info["build_seconds"])  # not retrained
        after = [client.search("c", q, 10).ids for q in queries]
    assert after == before
    assert server.terminate() == 0

    # the engine in-process, on the same files, answers exactly as the server did
    with Database(server.data_dir) as database:
        collection = database.collection("c")
        local = [hits.ids for hits in collection.search(queries, 10)]
    assert local == before
