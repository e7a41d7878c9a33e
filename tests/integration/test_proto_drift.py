"""The checked-in generated code is exactly what scripts/gen_proto.sh produces from the proto."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    subprocess.run(
        ["bash", str(REPO / "scripts" / "gen_proto.sh"), str(tmp_path)],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    generated = sorted(p.name for p in (tmp_path / "vecdb" / "v1").iterdir())
    assert generated == ["vecdb_pb2.py", "vecdb_pb2.pyi", "vecdb_pb2_grpc.py"]
    for name in generated:
        fresh = (tmp_path / "vecdb" / "v1" / name).read_text()
        checked_in = (REPO / "vecdb" / "v1" / name).read_text()
        assert fresh == checked_in, f"vecdb/v1/{name} is stale: run `make proto` and commit"
