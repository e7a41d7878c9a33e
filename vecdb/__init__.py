"""vecdb: a vector search and retrieval service.

The public names a user imports: the client and its result types, and the exceptions every call
may raise (see :mod:`vecdb.engine.errors` for their hierarchy).
"""

from vecdb.client import Client, CollectionInfo, Explain, Matches, Point, Query
from vecdb.engine.errors import (
    AlreadyExists,
    DimensionMismatch,
    FailedPrecondition,
    InvalidArgument,
    InvalidFilter,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    VecdbError,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "Client",
    "CollectionInfo",
    "DimensionMismatch",
    "Explain",
    "FailedPrecondition",
    "InvalidArgument",
    "InvalidFilter",
    "Matches",
    "NotFound",
    "PermissionDenied",
    "Point",
    "Query",
    "ResourceExhausted",
    "Unauthenticated",
    "VecdbError",
    "__version__",
]
