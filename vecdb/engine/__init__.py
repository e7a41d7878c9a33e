"""The database engine: numpy + faiss + sqlite3. It never knows it is behind gRPC."""

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
