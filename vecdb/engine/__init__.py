"""The database engine: numpy + faiss + sqlite3. It never knows it is behind gRPC."""

import os

# faiss's OpenMP threads spin at barriers by default; when they share cores with other threads
# (gRPC workers, other processes) a descheduled spinner holds up small builds and searches.
# Passive waiting avoids that; an explicit user setting wins. OpenMP
# reads it when faiss loads, so it is set here, before any engine module imports faiss.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vecdb.engine.collection import Collection, Explain, Hits, SearchOptions, StoredPoint
from vecdb.engine.database import Database
from vecdb.engine.schema import AttributeType, CollectionSettings, Metric

__all__ = [
    "AttributeType",
    "Collection",
    "CollectionSettings",
    "Database",
    "Explain",
    "Hits",
    "Metric",
    "SearchOptions",
    "StoredPoint",
]
