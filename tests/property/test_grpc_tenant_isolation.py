"""Tenant isolation through gRPC with tenant keys, under any sequence of writes.

One real server (tenant keys for three tenants, an admin key) serves every example; each example
gets a fresh collection of 1,000 points with random access lists plus a pool of points that a
random sequence of admin upserts with any access lists, tenant-key upserts, grants, revokes,
deletes, tenant drops and index builds changes, keeping a plain model of which tenants may see each
point. Then every tenant key searches (claiming another tenant in the request, with and without a
filter) and gets points: it must see exactly the points its tenant may see, never one more.

Tenants here hold a few hundred points, so the planner answers them exactly; isolation inside the
tenant tree under the same kinds of writes is tested on the index itself in
``test_tenancy_isolation.py``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecdb import Client

DIM = 8
IDS = [f"p{i}" for i in range(14)]
TENANTS = ("acme", "globex", "initech")
ADMIN = "admin-key-0123456789"
KEYS = {tenant: f"{tenant}-key-0123456789" for tenant in TENANTS}
VECTORS = {
    point_id: row
    for point_id, row in zip(
        IDS,
        np.random.default_rng(7).standard_normal((len(IDS), DIM)).astype(np.float32),
        strict=True,
    )
}
QUERY = np.random.default_rng(8).standard_normal(DIM).astype(np.float32)
# enough other points for an index build (which needs 1,000), with fixed random access lists
FILLER = 1000
FILLER_IDS = [f"f{i}" for i in range(FILLER)]
FILLER_VECTORS = np.random.default_rng(9).standard_normal((FILLER, DIM)).astype(np.float32)
FILLER_ACCESS = [
    [t for t, keep in zip(TENANTS, row, strict=True) if keep]
    for row in np.random.default_rng(10).random((FILLER, len(TENANTS))) < 0.4
]
_names = itertools.count()


@dataclass(frozen=True)
class Op:
    kind: str
    ids: tuple[str, ...] = ()
    tenant: str = ""
    access: tuple[tuple[str, ...], ...] = ()


ids_st = st.lists(st.sampled_from(IDS), min_size=1, max_size=6, unique=True).map(tuple)
access_st = st.lists(st.sampled_from(TENANTS), max_size=3, unique=True).map(tuple)
ops_st = st.lists(
    st.one_of(
        ids_st.flatmap(
            lambda ids: st.lists(access_st, min_size=len(ids), max_size=len(ids)).map(
                lambda access: Op("upsert", ids, access=tuple(access))
            )
        ),
        st.builds(lambda ids, t: Op("tenant_upsert", ids, t), ids_st, st.sampled_from(TENANTS)),
        st.builds(lambda ids, t: Op("grant", ids, t), ids_st, st.sampled_from(TENANTS)),
        st.builds(lambda ids, t: Op("revoke", ids, t), ids_st, st.sampled_from(TENANTS)),
        st.builds(lambda ids: Op("delete", ids), ids_st),
        st.builds(lambda t: Op("drop_tenant", tenant=t), st.sampled_from(TENANTS)),
        st.just(Op("build")),
    ),
    min_size=1,
    max_size=12,
)


def _apply(admin: Client, address: str, name: str, op: Op, model: dict[str, set[str]]) -> None:
    if op.kind == "upsert":
        admin.upsert(
            name,
            list(op.ids),
            np.stack([VECTORS[i] for i in op.ids]),
            [{"even": int(i[1:]) % 2 == 0} for i in op.ids],
            [list(a) for a in op.access],
        )
        model.update({i: set(a) for i, a in zip(op.ids, op.access, strict=True)})
    elif op.kind == "tenant_upsert":
        # a tenant key may only replace points that only it can see
        mine = [i for i in op.ids if i not in model or model[i] == {op.tenant}]
        if mine:
            with Client(address, api_key=KEYS[op.tenant]) as client:
                client.upsert(
                    name,
                    mine,
                    np.stack([VECTORS[i] for i in mine]),
                    [{"even": int(i[1:]) % 2 == 0} for i in mine],
                )
            model.update({i: {op.tenant} for i in mine})
    elif op.kind == "grant":
        admin.grant_access(name, op.tenant, list(op.ids))
        for i in op.ids:
            if i in model:
                model[i].add(op.tenant)
    elif op.kind == "revoke":
        admin.revoke_access(name, op.tenant, list(op.ids))
        for i in op.ids:
            if i in model:
                model[i].discard(op.tenant)
    elif op.kind == "delete":
        admin.delete(name, list(op.ids))
        for i in op.ids:
            model.pop(i, None)
    elif op.kind == "drop_tenant":
        admin.drop_tenant(name, op.tenant)
        for tenants in model.values():
            tenants.discard(op.tenant)
    elif op.kind == "build":
        admin.build_index(name)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=ops_st)
def test_a_tenant_key_sees_exactly_its_tenants_points(server_factory, ops: list[Op]) -> None:  # type: ignore[no-untyped-def]
    server = _server(server_factory)
    name = f"c{next(_names)}"
    model: dict[str, set[str]] = {}
    with Client(server, api_key=ADMIN) as admin:
        admin.create_collection(name, DIM, "l2", {"even": "bool"})
        admin.upsert(
            name,
            FILLER_IDS,
            FILLER_VECTORS,
            [{"even": i % 2 == 0} for i in range(FILLER)],
            FILLER_ACCESS,
        )
        model.update({i: set(a) for i, a in zip(FILLER_IDS, FILLER_ACCESS, strict=True)})
        for op in ops:
            _apply(admin, server, name, op, model)
        for tenant in TENANTS:
            visible = {i for i, tenants in model.items() if tenant in tenants}
            other = next(t for t in TENANTS if t != tenant)
            with Client(server, api_key=KEYS[tenant]) as client:
                # the request claims another tenant: the key's scope must win
                found = client.search(name, QUERY, k=len(model), tenant=other)
                assert set(found.ids) == visible, (tenant, ops)
                even = client.search(
                    name, QUERY, k=len(model), filter={"field": "even", "eq": True}
                )
                assert set(even.ids) == {i for i in visible if int(i[1:]) % 2 == 0}, (tenant, ops)
                got = {p.id for p in client.get(name, IDS + FILLER_IDS)}
                assert got == visible, (tenant, ops)
        assert admin.list_tenants(name) == {
            t: n for t in TENANTS if (n := sum(1 for tenants in model.values() if t in tenants))
        }
        admin.drop_collection(name)


_servers: dict[int, str] = {}


def _server(server_factory) -> str:  # type: ignore[no-untyped-def]
    """One keyed server per test run (the factory is the test's; examples share it)."""
    key = id(server_factory)
    if key not in _servers:
        env = {
            "VECDB_ADMIN_KEYS": ADMIN,
            "VECDB_TENANT_KEYS": ",".join(f"{t}={k}" for t, k in KEYS.items()),
        }
        _servers[key] = server_factory("isolation", env=env).start().address
    return _servers[key]
