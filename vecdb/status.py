"""The one table between engine errors and gRPC status codes (server: raise -> code; client: code -> raise)."""

from __future__ import annotations

import grpc

from vecdb.engine import errors

_CODES: tuple[tuple[type[errors.VecdbError], grpc.StatusCode], ...] = (
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
)


def status_code(error: errors.VecdbError) -> grpc.StatusCode:
    """Return the status code a client sees for an engine error."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.INTERNAL


def error_class(code: grpc.StatusCode) -> type[errors.VecdbError]:
    """Return the exception class a client raises for a status code."""
    for kind, known in _CODES:
        if known == code:
            return kind
    return errors.VecdbError
