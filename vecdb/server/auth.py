"""API keys: who is calling, and what that key may do."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from vecdb.engine.errors import PermissionDenied, Unauthenticated
from vecdb.server.config import ServerConfig


@dataclass(frozen=True)
class Principal:
    """The caller: an admin, or a key bound to one tenant."""

    tenant: str | None = None

    @property
    def is_admin(self) -> bool:
        """True for admin keys (and for every caller when no keys are configured)."""
        return self.tenant is None

    def require_admin(self, action: str) -> None:
        """Raise PermissionDenied unless this is an admin."""
        if not self.is_admin:
            raise PermissionDenied(
                f"a key for tenant {self.tenant!r} may not {action}: it needs an admin key"
            )


ADMIN = Principal()


def authenticate(config: ServerConfig, metadata: Iterable[tuple[str, str | bytes]]) -> Principal:
    """Return who sent ``metadata`` (an ``authorization: Bearer <key>`` entry), or raise."""
    if not config.auth_enabled:
        return ADMIN
    header = next((v for k, v in metadata if k == "authorization"), None)
    if header is None:
        raise Unauthenticated("missing API key: send metadata 'authorization: Bearer <key>'")
    text = header.decode() if isinstance(header, bytes) else header
    scheme, _, key = text.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthenticated("malformed authorization metadata: expected 'Bearer <key>'")
    encoded = key.encode()
    matched: Principal | None = None
    # compare against every key so the time taken does not depend on which one matched
    for admin_key in config.admin_keys:
        if hmac.compare_digest(admin_key.encode(), encoded):
            matched = ADMIN
    for tenant_key, tenant in config.tenant_keys.items():
        if hmac.compare_digest(tenant_key.encode(), encoded):
            matched = Principal(tenant=tenant)
    if matched is None:
        raise Unauthenticated("invalid API key")
    return matched
