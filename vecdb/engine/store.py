"""The durable store: SQLite (WAL, synchronous=FULL), the source of truth for all points.

Each collection has its own table ``points_<cid>`` keyed by the point's row number; a write request
is one transaction, and a caller is told "done" only after it has committed.
"""

from __future__ import annotations

import json
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
    """Every live point of a collection, in row order, as read back from the store."""

    rows: NDArray[np.int64]
    ids: list[str]
    vectors: NDArray[np.float32]
    attributes: list[dict[str, object]]
    tenants: list[list[str]]


PointRow = tuple[int, str, bytes, str | None, str | None]
"""(row, id, vector bytes, attributes JSON or None, tenants JSON or None)."""


class Store:
    """One SQLite database file holding every collection's points."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
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
                "row INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, vector BLOB NOT NULL, "
                "attributes TEXT, tenants TEXT)"
            )
        return int(cid)

    def drop_collection(self, cid: int) -> None:
        """Delete a collection and all its points."""
        with self.transaction() as db:
            db.execute("DELETE FROM collections WHERE cid = ?", (cid,))
            db.execute(f"DROP TABLE IF EXISTS points_{cid}")

    # --- points ------------------------------------------------------------------------------

    def load_points(self, cid: int, dim: int) -> LoadedPoints:
        """Return every point of a collection in row order."""
        with self._lock:
            records = self._db.execute(
                f"SELECT row, id, vector, attributes, tenants FROM points_{cid} ORDER BY row"
            ).fetchall()
        n = len(records)
        if n == 0:
            return LoadedPoints(np.zeros(0, np.int64), [], np.zeros((0, dim), np.float32), [], [])
        rows_col, ids, blobs, attrs, tenants = zip(*records, strict=True)
        vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(n, dim).astype(np.float32)
        return LoadedPoints(
            rows=np.fromiter(rows_col, dtype=np.int64, count=n),
            ids=list(ids),
            vectors=vectors,
            attributes=[json.loads(a) if a else {} for a in attrs],
            tenants=[json.loads(t) if t else [] for t in tenants],
        )

    @staticmethod
    def write_points(
        db: sqlite3.Connection,
        cid: int,
        records: Sequence[PointRow],
        next_row: int,
    ) -> int:
        """Insert or replace points (inside a transaction); return the collection's new sequence."""
        db.executemany(
            f"INSERT OR REPLACE INTO points_{cid}(row, id, vector, attributes, tenants) "
            "VALUES (?, ?, ?, ?, ?)",
            records,
        )
        return Store._bump(db, cid, next_row=next_row)

    @staticmethod
    def delete_points(db: sqlite3.Connection, cid: int, ids: Sequence[str]) -> int:
        """Delete points by id (inside a transaction); return the collection's new sequence."""
        db.executemany(f"DELETE FROM points_{cid} WHERE id = ?", [(i,) for i in ids])
        return Store._bump(db, cid)

    @staticmethod
    def set_tenants(
        db: sqlite3.Connection, cid: int, changes: Sequence[tuple[str | None, str]]
    ) -> int:
        """Set the tenants JSON of points by id (inside a transaction); return the new sequence."""
        db.executemany(f"UPDATE points_{cid} SET tenants = ? WHERE id = ?", changes)
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
