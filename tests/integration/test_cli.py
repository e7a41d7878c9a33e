"""The vecdb command line against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def vecdb(*args: str, address: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"VECDB_ADDRESS": address} if address else {})}
    return subprocess.run(
        [sys.executable, "-m", "vecdb.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_help_describes_every_command() -> None:
    top = vecdb("--help")
    assert top.returncode == 0
    for command in ("serve", "ingest", "search", "batch", "stats"):
        assert command in top.stdout
        sub = vecdb(command, "--help")
        assert sub.returncode == 0 and "usage: vecdb " + command in sub.stdout


def test_ingest_search_batch_stats(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("cli").start()
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((40, 6)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    with (tmp_path / "points.jsonl").open("w") as out:
        for i in range(40):
            record = {"id": f"d{i}", "attributes": {"year": 2000 + i}, "tenants": ["t"]}
            out.write(json.dumps(record) + "\n")
    ingest = vecdb(
        "ingest",
        "docs",
        "--vectors",
        str(tmp_path / "v.npy"),
        "--points",
        str(tmp_path / "points.jsonl"),
        "--create",
        "--metric",
        "l2",
        "--schema",
        "year:int",
        "--batch-size",
        "16",
        address=server.address,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout) == {"collection": "docs", "upserted": 40}

    search = vecdb(
        "search",
        "docs",
        "--npy",
        str(tmp_path / "v.npy"),
        "--row",
        "5",
        "-k",
        "3",
        "--filter",
        '{"field": "year", "gte": 2005}',
        "--explain",
        "--with-attributes",
        address=server.address,
    )
    assert search.returncode == 0, search.stderr
    result = json.loads(search.stdout)
    assert result["results"][0] == {"id": "d5", "score": 0.0, "attributes": {"year": 2005}}
    assert result["explain"]["plan"] and result["explain"]["matching_points"] == 35

    with (tmp_path / "queries.jsonl").open("w") as out:
        out.write(json.dumps({"id": "q1", "row": 1, "k": 2}) + "\n")
        out.write(
            json.dumps(
                {
                    "id": "q2",
                    "vector": vectors[2].tolist(),
                    "tenant": "t",
                    "filter": {"field": "year", "lt": 2002},
                }
            )
            + "\n"
        )
    for fmt in ("jsonl", "trec"):
        out_file = tmp_path / f"results.{fmt}"
        batch = vecdb(
            "batch",
            "docs",
            str(tmp_path / "queries.jsonl"),
            "--vectors",
            str(tmp_path / "v.npy"),
            "--out",
            str(out_file),
            "--format",
            fmt,
            address=server.address,
        )
        assert batch.returncode == 0, batch.stderr
        lines = out_file.read_text().splitlines()
        if fmt == "jsonl":
            records = {r["query_id"]: r for r in map(json.loads, lines)}
            assert next(x["id"] for x in records["q1"]["results"]) == "d1"
            assert len(records["q1"]["results"]) == 2
            assert {x["id"] for x in records["q2"]["results"]} == {"d0", "d1"}
        else:
            rows = [line.split() for line in lines]
            assert all(len(row) == 6 and row[1] == "Q0" for row in rows)
            assert ["q1", "Q0", "d1", "1"] in [row[:4] for row in rows]
            assert sorted(row[2] for row in rows if row[0] == "q2") == ["d0", "d1"]

    stats = vecdb("stats", address=server.address)
    assert stats.returncode == 0, stats.stderr
    info = json.loads(stats.stdout)
    assert (info["name"], info["points"], info["tenants"], info["dim"]) == ("docs", 40, 1, 6)


def test_cli_errors_are_clear(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("clierr").start()
    missing = vecdb("search", "nope", "--vector", "[1, 2]", address=server.address)
    assert missing.returncode == 2
    assert "collection 'nope' does not exist" in missing.stderr


@pytest.mark.parametrize("bad", ['{"field": "x"}', '{"and": []}'])
def test_bad_filter_json_is_rejected_before_sending(server_factory, bad: str) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("clifilter").start()
    result = vecdb("search", "any", "--vector", "[1]", "--filter", bad, address=server.address)
    assert result.returncode == 2
    assert "filter" in result.stderr or "condition on 'x' must have" in result.stderr
