"""The database: every collection of one data directory, loaded from and written to its store."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Mapping
from pathlib import Path

from vecdb.engine.collection import Collection
from vecdb.engine.errors import AlreadyExists, NotFound
from vecdb.engine.schema import AttributeType, CollectionSettings, Metric

STORE_FILE = "vecdb.sqlite3"


class Database:
    """Opens a data directory, loads its collections into memory and serves them."""

    def __init__(self, data_dir: Path | str) -> None:
        from vecdb.engine.store import Store

        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.data_dir / STORE_FILE)
        self._lock = threading.Lock()
        self._collections: dict[str, Collection] = {}
        for stored in self.store.collections():
            collection = Collection(
                stored.cid,
                stored.settings,
                self.store,
                stored.next_row,
                self.data_dir / "collections" / str(stored.cid),
            )
            collection.load(stored.sequence)
            collection.load_index()
            self._collections[stored.settings.name] = collection

    def close(self) -> None:
        """Close the store cleanly (checkpointing its write-ahead log)."""
        self.store.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_collection(
        self,
        name: str,
        dim: int,
        metric: str | Metric = Metric.COSINE,
        schema: Mapping[str, str | AttributeType] | None = None,
    ) -> Collection:
        """Create and return an empty collection; raise AlreadyExists if the name is taken."""
        settings = CollectionSettings.create(name, dim, metric, schema)
        with self._lock:
            if name in self._collections:
                raise AlreadyExists(f"collection {name!r} already exists")
            cid = self.store.create_collection(settings)
            collection = Collection(
                cid, settings, self.store, 0, self.data_dir / "collections" / str(cid)
            )
            self._collections[name] = collection
        return collection

    def drop_collection(self, name: str) -> None:
        """Delete a collection, its points and its derived files."""
        with self._lock:
            collection = self.collection(name)
            self.store.drop_collection(collection.cid)
            del self._collections[name]
        if collection.artefact_dir is not None:
            shutil.rmtree(collection.artefact_dir, ignore_errors=True)

    def collection(self, name: str) -> Collection:
        """Return the named collection, or raise NotFound listing the ones there are."""
        collection = self._collections.get(name)
        if collection is None:
            known = ", ".join(sorted(self._collections)) or "none"
            raise NotFound(f"collection {name!r} does not exist (collections: {known})")
        return collection

    def collections(self) -> list[Collection]:
        """Return every collection, by name."""
        return [self._collections[n] for n in sorted(self._collections)]
