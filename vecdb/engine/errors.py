"""The engine's exceptions, one hierarchy mapped to gRPC status codes in one place (the server).

::

    VecdbError
    ├── InvalidArgument (ValueError)          bad input: dimension, NaN/inf, k, filter, attribute
    │   ├── DimensionMismatch
    │   └── InvalidFilter
    ├── NotFound (KeyError)                   unknown collection / point
    ├── AlreadyExists                         duplicate collection
    ├── FailedPrecondition                    state does not allow the call (e.g. no index)
    ├── ResourceExhausted                     a configured limit was hit
    ├── Unauthenticated                       missing or unknown API key
    └── PermissionDenied                      key without the right scope
"""

from __future__ import annotations


class VecdbError(Exception):
    """Base class of every error vecdb raises on purpose."""


class InvalidArgument(VecdbError, ValueError):
    """The request carries a value that is not allowed."""


class DimensionMismatch(InvalidArgument):
    """A vector's length differs from the collection's dimension."""


class InvalidFilter(InvalidArgument):
    """A filter is malformed or refers to attributes it cannot apply to."""


class NotFound(VecdbError, KeyError):
    """A named collection (or point) does not exist."""

    def __str__(self) -> str:
        # KeyError quotes its argument; keep the message readable.
        return str(self.args[0]) if self.args else ""


class AlreadyExists(VecdbError):
    """The thing to create exists already."""


class FailedPrecondition(VecdbError):
    """The call is valid but the current state does not allow it."""


class ResourceExhausted(VecdbError):
    """A configured limit was exceeded."""


class Unauthenticated(VecdbError):
    """No valid API key was presented."""


class PermissionDenied(VecdbError):
    """The API key is valid but does not allow this operation."""
