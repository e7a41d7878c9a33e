"""DropPartitioning over a real server: the RPC, the client method and `vecdb drop-partitioning`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import vecdb
from vecdb import Client
from vecdb.client import Query

DIM = 8
COUNT = 3_000


def _load(client: Client) -> list[Query]:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((COUNT, DIM)).astype(np.float32)
    colors = ("red", "green", "blue")
    client.create_collection("docs", DIM, "cosine", {"color": "keyword"})
    client.upsert_many(
        "docs",
        [f"p{i}" for i in range(COUNT)],
        vectors,
        [{"color": colors[i % 3]} for i in range(COUNT)],
    )
    return [
        Query(f"q{i}", vectors[i], 5, None, {"field": "color", "eq": colors[i % 3]})
        for i in range(60)
    ]


def _saved(client: Client) -> list[object]:
    return [p["name"] for p in client.describe_collection("docs").partitionings]


def test_a_dropped_partitioning_is_gone_and_batches_still_answer(server_factory: Any) -> None:
    env = {"VECDB_ADMIN_KEYS": "admin-key", "VECDB_TENANT_KEYS": "acme=acme-key"}
    server = server_factory("drop", env=env).start()
    with Client(server.address, api_key="admin-key") as admin:
        admin.wait_ready()
        queries = _load(admin)
        for name in ("weekly", "daily"):
            list(admin.batch_search("docs", queries, save_partitioning=name, recall_target=0.9))
        assert _saved(admin) == ["daily", "weekly"]

        with (
            Client(server.address, api_key="acme-key") as acme,
            pytest.raises(vecdb.PermissionDenied, match="drop partitionings"),
        ):
            acme.drop_partitioning("docs", "weekly")
        assert _saved(admin) == ["daily", "weekly"]

        admin.drop_partitioning("docs", "weekly")
        assert _saved(admin) == ["daily"]
        with pytest.raises(vecdb.NotFound, match="no partitioning 'weekly' \\(saved: daily\\)"):
            list(admin.batch_search("docs", queries[:3], partitioning="weekly"))
        with pytest.raises(vecdb.NotFound, match="no partitioning 'weekly' \\(saved: daily\\)"):
            admin.drop_partitioning("docs", "weekly")
        with pytest.raises(vecdb.InvalidArgument, match="invalid partitioning name"):
            admin.drop_partitioning("docs", "../daily")
        with pytest.raises(vecdb.NotFound, match="nope"):
            admin.drop_partitioning("nope", "daily")
        # the other one still answers, and so do plain batches
        assert len(dict(admin.batch_search("docs", queries, partitioning="daily"))) == len(queries)
        assert len(dict(admin.batch_search("docs", queries))) == len(queries)

        result = subprocess.run(
            [sys.executable, "-m", "vecdb.cli", "drop-partitioning", "docs", "daily"],
            capture_output=True,
            text=True,
            env={**os.environ, "VECDB_ADDRESS": server.address, "VECDB_API_KEY": "admin-key"},
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"collection": "docs", "dropped_partitioning": "daily"}
        assert _saved(admin) == []

    # the drop is on disk: a restart does not bring anything back
    server.terminate()
    server.start()
    with Client(server.address, api_key="admin-key") as admin:
        admin.wait_ready()
        assert _saved(admin) == []
