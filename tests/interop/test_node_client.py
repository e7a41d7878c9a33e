"""A client that is not ours: Node's @grpc/grpc-js, loading only the proto, talks to the server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def test_node_client_creates_upserts_and_searches(vecdb_server: str) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the Node interop client cannot run")
    if not (HERE / "node_modules" / "@grpc" / "grpc-js").exists():
        pytest.skip("Node packages not installed: `make test` runs npm install in tests/interop")
    result = subprocess.run(
        ["node", str(HERE / "client.js"), vecdb_server, str(REPO / "proto"), "from_node"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert [r[0] for r in output["nearest"]] == ["red", "reddish", "green"]
    assert output["nearest"][0][1] == 0.0
    assert output["nearest"][1][1] == pytest.approx(0.02, abs=1e-6)
    assert output["filtered"] == [["green", "green"]]
    assert output["badStatus"]["code"] == "INVALID_ARGUMENT"
    assert (
        "dimension 2 does not match collection 'from_node' (dim 3)"
        in output["badStatus"]["details"]
    )
