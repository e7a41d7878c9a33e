"""API keys, tenant scoping and TLS against a real server."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vecdb
from vecdb import Client

ADMIN = "admin-secret-key"
ACME = "acme-secret-key"
GLOBEX = "globex-secret-key"


@pytest.fixture
def keyed_server(server_factory):  # type: ignore[no-untyped-def]
    env = {"VECDB_ADMIN_KEYS": ADMIN, "VECDB_TENANT_KEYS": f"acme={ACME},globex={GLOBEX}"}
    server = server_factory("keyed", env=env).start()
    with Client(server.address, api_key=ADMIN) as admin:
        admin.create_collection("docs", 4, "ip", {"kind": "keyword"})
        vectors = np.eye(4, dtype=np.float32)
        admin.upsert(
            "docs",
            ["a1", "a2", "g1", "shared"],
            vectors,
            [{"kind": "x"}] * 4,
            [["acme"], ["acme"], ["globex"], ["acme", "globex"]],
        )
    return server


def test_tenant_key_scopes_searches_whatever_the_request_says(keyed_server) -> None:  # type: ignore[no-untyped-def]
    query = np.ones(4, np.float32)
    with Client(keyed_server.address, api_key=ACME) as acme:
        assert set(acme.search("docs", query, k=10).ids) == {"a1", "a2", "shared"}
        # asking for another tenant does not widen the scope
        assert set(acme.search("docs", query, k=10, tenant="globex").ids) == {"a1", "a2", "shared"}
        assert [p.id for p in acme.get("docs", ["a1", "g1", "shared"])] == ["a1", "shared"]
        batch = acme.search_batch("docs", np.ones((3, 4), np.float32), k=10, tenant="globex")
        assert all(set(m.ids) == {"a1", "a2", "shared"} for m in batch)
    with Client(keyed_server.address, api_key=GLOBEX) as globex:
        assert set(globex.search("docs", query, k=10).ids) == {"g1", "shared"}


def test_tenant_key_writes_only_its_own_points(keyed_server) -> None:  # type: ignore[no-untyped-def]
    vector = np.ones((1, 4), np.float32)
    with Client(keyed_server.address, api_key=ACME) as acme:
        assert acme.upsert("docs", ["a3"], vector) == 1  # no list: just acme
        (point,) = acme.get("docs", ["a3"])
        assert point.tenants == ["acme"]
        with pytest.raises(vecdb.PermissionDenied, match="exactly"):
            acme.upsert("docs", ["a4"], vector, tenants=[["globex"]])
        with pytest.raises(vecdb.PermissionDenied, match="shared"):
            acme.upsert("docs", ["shared"], vector, tenants=[["acme"]])
        with pytest.raises(vecdb.PermissionDenied, match="g1"):
            acme.delete("docs", ["g1"])
        assert acme.delete("docs", ["a3"]) == 1
        with pytest.raises(vecdb.PermissionDenied):
            acme.list_tenants("docs")
    with Client(keyed_server.address, api_key=ADMIN) as admin:
        assert admin.list_tenants("docs") == {"acme": 3, "globex": 2}


def test_missing_and_wrong_keys_are_unauthenticated(keyed_server) -> None:  # type: ignore[no-untyped-def]
    for key in (None, "wrong-key-123"):
        with (
            Client(keyed_server.address, api_key=key) as client,
            pytest.raises(vecdb.Unauthenticated),
        ):
            client.list_collections()


def test_no_keys_refuses_non_loopback(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("open", args=("--host", "0.0.0.0"))
    # the factory passes --host 127.0.0.1 first; the later flag wins
    with pytest.raises(RuntimeError, match=r"refusing to listen on '0\.0\.0\.0' without API keys"):
        server.start(timeout=20)


def test_tls(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
    certificate.private_key_pem.write_to_path(str(key_file))
    config = tmp_path / "tls.toml"
    config.write_text(f'[tls]\ncert_file = "{cert_file}"\nkey_file = "{key_file}"\n')
    server = server_factory("tls", args=("--config", str(config))).start()
    root = authority.cert_pem.bytes()
    with Client(server.address, root_certificates=root) as client:
        client.create_collection("secure", 3, "l2")
        assert [c.name for c in client.list_collections()] == ["secure"]
    with Client(server.address, timeout=3) as plain, pytest.raises(vecdb.VecdbError):
        plain.list_collections()
