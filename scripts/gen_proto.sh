#!/usr/bin/env bash
# Regenerates the checked-in protobuf / gRPC code in vecdb/v1 (or in $1).
# grpcio-tools is pinned in pyproject.toml so the output is reproducible.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$here}"
python="${PYTHON:-python3}"
mkdir -p "$out/vecdb/v1"
"$python" -m grpc_tools.protoc \
  --proto_path="$here/proto" \
  --python_out="$out" \
  --pyi_out="$out" \
  --grpc_python_out="$out" \
  "$here/proto/vecdb/v1/vecdb.proto"
