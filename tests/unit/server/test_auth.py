"""API keys: who a request's metadata says is calling, and what an admin or tenant key may do."""

from __future__ import annotations

import re

import pytest

from vecdb.engine.errors import PermissionDenied, Unauthenticated
from vecdb.server.auth import ADMIN, Principal, authenticate
from vecdb.server.config import ServerConfig

ADMIN_KEY = "admin-key-0123456789"
ACME_KEY = "acme-key-0123456789"
GLOBEX_KEY = "globex-key-0123456789"

CONFIG = ServerConfig(
    admin_keys=frozenset({ADMIN_KEY}),
    tenant_keys={ACME_KEY: "acme", GLOBEX_KEY: "globex"},
)


def bearer(key: str) -> list[tuple[str, str]]:
    return [("user-agent", "grpc-python"), ("authorization", f"Bearer {key}")]


def test_without_keys_every_caller_is_admin() -> None:
    open_config = ServerConfig()
    assert authenticate(open_config, []) is ADMIN
    assert authenticate(open_config, bearer("anything")) is ADMIN


def test_admin_key_gives_an_admin() -> None:
    principal = authenticate(CONFIG, bearer(ADMIN_KEY))
    assert principal.is_admin
    assert principal.tenant is None
    principal.require_admin("create a collection")


@pytest.mark.parametrize(("key", "tenant"), [(ACME_KEY, "acme"), (GLOBEX_KEY, "globex")])
def test_tenant_key_gives_that_tenant(key: str, tenant: str) -> None:
    principal = authenticate(CONFIG, bearer(key))
    assert principal == Principal(tenant=tenant)
    assert not principal.is_admin
    with pytest.raises(
        PermissionDenied,
        match=re.escape(
            f"a key for tenant {tenant!r} may not drop a collection: it needs an admin key"
        ),
    ):
        principal.require_admin("drop a collection")


@pytest.mark.parametrize(
    "header",
    [
        f"bearer {ACME_KEY}",
        f"BEARER {ACME_KEY}",
        f"  Bearer   {ACME_KEY}  ",
        f"Bearer {ACME_KEY}".encode(),
    ],
)
def test_scheme_case_and_whitespace_are_tolerated(header: str | bytes) -> None:
    assert authenticate(CONFIG, [("authorization", header)]) == Principal(tenant="acme")


def test_missing_key_is_unauthenticated() -> None:
    for metadata in ([], [("user-agent", "x")], [("x-authorization", f"Bearer {ADMIN_KEY}")]):
        with pytest.raises(
            Unauthenticated,
            match=re.escape("missing API key: send metadata 'authorization: Bearer <key>'"),
        ):
            authenticate(CONFIG, metadata)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer",
        "Bearer    ",
        ADMIN_KEY,
        f"Basic {ADMIN_KEY}",
        f"Token {ADMIN_KEY}",
        f"Bearer{ADMIN_KEY}",
    ],
)
def test_malformed_authorization_is_unauthenticated(header: str) -> None:
    with pytest.raises(
        Unauthenticated,
        match=re.escape("malformed authorization metadata: expected 'Bearer <key>'"),
    ):
        authenticate(CONFIG, [("authorization", header)])


@pytest.mark.parametrize(
    "key",
    [
        "wrong-key-0123456789",
        ADMIN_KEY[:-1],
        ADMIN_KEY + "x",
        ADMIN_KEY.upper(),
        f"{ADMIN_KEY} {ACME_KEY}",
        "acme",
    ],
)
def test_an_unknown_key_is_unauthenticated_and_not_echoed(key: str) -> None:
    with pytest.raises(Unauthenticated, match=r"^invalid API key$") as raised:
        authenticate(CONFIG, bearer(key))
    assert key not in str(raised.value)


def test_the_first_authorization_entry_is_the_one_used() -> None:
    metadata = [("authorization", f"Bearer {ACME_KEY}"), ("authorization", f"Bearer {ADMIN_KEY}")]
    assert authenticate(CONFIG, metadata) == Principal(tenant="acme")


def test_tenant_only_config_still_requires_a_key() -> None:
    config = ServerConfig(tenant_keys={ACME_KEY: "acme"})
    assert authenticate(config, bearer(ACME_KEY)) == Principal(tenant="acme")
    with pytest.raises(Unauthenticated):
        authenticate(config, [])
    with pytest.raises(Unauthenticated, match="invalid API key"):
        authenticate(config, bearer(ADMIN_KEY))
