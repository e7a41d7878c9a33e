"""The durable store: SQLite (WAL, synchronous=FULL) plus one row-addressed vector file per collection.

SQLite is the source of truth for collections and points: each collection has a table
``points_<cid>`` keyed by row number with the point's id, attributes and access list, and a point
exists exactly when its row is there. The float32 vectors live in ``vectors/<cid>.f32``, row ``r``
at byte offset ``r * dim * 4``, so bulk writes are one sequential append and a restart reads the
matrix in one call instead of parsing a blob per point.

A write request is one SQLite transaction. Its vectors are written and fsynced into the vector file
*before* that transaction commits, and a caller is told "done" only after the commit, so an
acknowledged point always has its vector on disk; bytes written for a request that never committed
sit in rows no table row refers to, and are overwritten by the next write.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from vecdb.engine.schema import CollectionSettings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS collections (
    cid INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    settings TEXT NOT NULL,
    next_row INTEGER NOT NULL DEFAULT 0,
    sequence INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class StoredCollection:
    """A collection row of the store."""

    cid: int
    settings: CollectionSettings
    next_row: int
    sequence: int


@dataclass
class LoadedPoints:
    """Every live point of a collection, in row order, as read back from the store.

    Vectors are not part of it: they live in the collection's :class:`VectorFile` at their rows.
    """

    rows: NDArray[np.int64]
    ids: list[str]
    attributes: list[dict[str, object]]
    tenants: list[list[str]]


PointRow = tuple[int, str, str | None, str | None]
"""(row, id, attributes JSON or None, tenants JSON or None)."""


class VectorFile:
    """A collection's vectors: float32 rows at fixed offsets in one file."""

    def __init__(self, path: Path, dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.row_bytes = dim * 4
        self.dim = dim
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def write(self, start_row: int, vectors: NDArray[np.float32]) -> None:
        """Write rows ``start_row..`` and fsync them (before the store commits their points)."""
        data = np.ascontiguousarray(vectors, dtype="<f4").reshape(-1).view(np.uint8).data
        offset = start_row * self.row_bytes
        written = 0
        while written < len(data):
            written += os.pwrite(self._fd, data[written:], offset + written)
        os.fdatasync(self._fd)

    def read(self, rows: int) -> NDArray[np.float32]:
        """Return rows ``0..rows-1`` as a (rows, dim) array (unwritten rows read as zeros)."""
        out = np.zeros((rows, self.dim), dtype=np.float32)
        self.read_into(out, rows)
        return out

    def read_into(self, out: NDArray[np.float32], rows: int) -> None:
        """Read rows ``0..rows-1`` into ``out[:rows]`` (rows past the end of the file are left as is)."""
        if out.dtype != np.float32 or not out.flags.c_contiguous or out.shape[1:] != (self.dim,):
            raise ValueError(f"read_into needs a C-contiguous float32 (n, {self.dim}) array")
        if len(out) < rows:
            raise ValueError(f"read_into: {rows} rows do not fit in {len(out)}")
        whole = min(os.fstat(self._fd).st_size, rows * self.row_bytes) // self.row_bytes
        if whole == 0:
            return
        target = out.data.cast("B")[: whole * self.row_bytes]
        done = 0
        while done < len(target):
            # one read call returns at most ~2 GiB on Linux: loop until every byte is in
            got = os.preadv(self._fd, [target[done : done + (1 << 30)]], done)
            if got <= 0:
                break
            done += got

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


class Store:
    """One SQLite database file holding every collection's points."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.vector_dir = path.parent / "vectors"
        self._vector_files: dict[int, VectorFile] = {}
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=OFF")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Checkpoint the WAL and close the database."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()
                for vector_file in self._vector_files.values():
                    vector_file.close()
                self._vector_files.clear()

    def vector_file(self, cid: int, dim: int) -> VectorFile:
        """Return the vector file of a collection (opened once)."""
        found = self._vector_files.get(cid)
        if found is None:
            found = VectorFile(self.vector_dir / f"{cid}.f32", dim)
            self._vector_files[cid] = found
        return found

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Yield the connection inside one write transaction; commit on success."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- collections -------------------------------------------------------------------------

    def collections(self) -> list[StoredCollection]:
        """Return every collection in the store."""
        with self._lock:
            rows = self._db.execute(
                "SELECT cid, settings, next_row, sequence FROM collections ORDER BY cid"
            ).fetchall()
        return [
            StoredCollection(cid, CollectionSettings.from_json(json.loads(s)), nr, seq)
            for cid, s, nr, seq in rows
        ]

    def create_collection(self, settings: CollectionSettings) -> int:
        """Create the collection's rows and table; return its cid."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO collections(name, settings) VALUES (?, ?)",
                (settings.name, json.dumps(settings.to_json())),
            )
            cid = cursor.lastrowid
            assert cid is not None
            db.execute(
                f"CREATE TABLE points_{cid} ("
                "row INTEGER PRIMARY KEY, id TEXT NOT NULL, attributes TEXT, tenants TEXT)"
            )
        return int(cid)

    def drop_collection(self, cid: int) -> None:
        """Delete a collection and all its points."""
        with self.transaction() as db:
            db.execute("DELETE FROM collections WHERE cid = ?", (cid,))
            db.execute(f"DROP TABLE IF EXISTS points_{cid}")
        vector_file = self._vector_files.pop(cid, None)
        if vector_file is not None:
            vector_file.close()
        (self.vector_dir / f"{cid}.f32").unlink(missing_ok=True)

    # --- points ------------------------------------------------------------------------------

    def load_points(self, cid: int) -> LoadedPoints:
        """Return every point of a collection in row order (vectors: see :meth:`vector_file`)."""
        with self._lock:
            records = self._db.execute(
                f"SELECT row, id, attributes, tenants FROM points_{cid} ORDER BY row"
            ).fetchall()
        n = len(records)
        if n == 0:
            return LoadedPoints(np.zeros(0, np.int64), [], [], [])
        rows_col, ids, attrs, tenants = zip(*records, strict=True)
        rows = np.fromiter(rows_col, dtype=np.int64, count=n)
        return LoadedPoints(
            rows=rows,
            ids=list(ids),
            attributes=[json.loads(a) if a else {} for a in attrs],
            tenants=[json.loads(t) if t else [] for t in tenants],
        )

    @staticmethod
    def write_points(
        db: sqlite3.Connection,
        cid: int,
        records: Sequence[PointRow],
        next_row: int,
        replaced_rows: Sequence[int] = (),
    ) -> int:
        """Insert points and delete the rows they replace (inside a transaction).

        Ids are unique per collection because the engine, its single writer, always deletes the
        row an id had in the same transaction that inserts its new row; so the table needs no
        index on id. Returns the collection's new sequence.
        """
        if replaced_rows:
            Store._delete_rows(db, cid, replaced_rows)
        db.executemany(
            f"INSERT INTO points_{cid}(row, id, attributes, tenants) VALUES (?, ?, ?, ?)",
            records,
        )
        return Store._bump(db, cid, next_row=next_row)

    @staticmethod
    def _delete_rows(db: sqlite3.Connection, cid: int, rows: Sequence[int]) -> None:
        db.executemany(f"DELETE FROM points_{cid} WHERE row = ?", [(r,) for r in rows])

    @staticmethod
    def delete_points(db: sqlite3.Connection, cid: int, rows: Sequence[int]) -> int:
        """Delete points by row (inside a transaction); return the collection's new sequence."""
        Store._delete_rows(db, cid, rows)
        return Store._bump(db, cid)

    @staticmethod
    def set_tenants(
        db: sqlite3.Connection, cid: int, changes: Sequence[tuple[str | None, int]]
    ) -> int:
        """Set the tenants JSON of points by row (inside a transaction); return the new sequence."""
        db.executemany(f"UPDATE points_{cid} SET tenants = ? WHERE row = ?", changes)
        return Store._bump(db, cid)

    @staticmethod
    def _bump(db: sqlite3.Connection, cid: int, next_row: int | None = None) -> int:
        if next_row is None:
            db.execute("UPDATE collections SET sequence = sequence + 1 WHERE cid = ?", (cid,))
        else:
            db.execute(
                "UPDATE collections SET sequence = sequence + 1, next_row = ? WHERE cid = ?",
                (next_row, cid),
            )
        (sequence,) = db.execute(
            "SELECT sequence FROM collections WHERE cid = ?", (cid,)
        ).fetchone()
        return int(sequence)
