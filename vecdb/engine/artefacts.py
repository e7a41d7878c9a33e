"""Derived files (indexes, partitionings) published atomically, stamped with what they reflect.

Each publication writes a fresh version directory, fsyncs it, then atomically replaces a small
pointer file naming the current version; readers only ever follow the pointer, so a crash at any
moment leaves either the old or the new version in force, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(
    base: Path, name: str, write: Callable[[Path], None], stamp: Mapping[str, object]
) -> Path:
    """Write a new version of artefact ``name`` under ``base`` with ``write``; return its folder."""
    base.mkdir(parents=True, exist_ok=True)
    version = base / f"{name}-{uuid.uuid4().hex[:12]}"
    version.mkdir()
    write(version)
    (version / "stamp.json").write_text(json.dumps(dict(stamp)))
    for path in version.rglob("*"):
        if path.is_file():
            _fsync_path(path)
    _fsync_path(version)
    pointer = base / f"{name}.current"
    temporary = base / f"{name}.current.tmp"
    with temporary.open("w") as out:
        out.write(version.name)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, pointer)
    _fsync_path(base)
    for old in base.glob(f"{name}-*"):
        if old != version and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return version


def current(base: Path, name: str) -> tuple[Path, dict[str, object]] | None:
    """Return (folder, stamp) of the current version of ``name``, or None if there is none."""
    pointer = base / f"{name}.current"
    if not pointer.exists():
        return None
    version = base / pointer.read_text().strip()
    stamp_file = version / "stamp.json"
    if not stamp_file.exists():
        return None
    stamp: dict[str, object] = json.loads(stamp_file.read_text())
    return version, stamp


def remove(base: Path, name: str) -> None:
    """Forget artefact ``name`` (pointer first, then its folders)."""
    pointer = base / f"{name}.current"
    if pointer.exists():
        pointer.unlink()
        _fsync_path(base)
    for old in base.glob(f"{name}-*"):
        shutil.rmtree(old, ignore_errors=True)
