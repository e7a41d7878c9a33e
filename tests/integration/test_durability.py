"""Every acknowledged write survives SIGKILL; nothing unacknowledged is half-written."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator

import numpy as np
import pytest

import vecdb
from vecdb import Client
from vecdb.v1 import vecdb_pb2 as pb

DIM = 24
BATCH = 150
ROUNDS = 4


def _batch(
    round_number: int, number: int, rng: np.random.Generator
) -> tuple[list[str], np.ndarray, list[dict[str, object]], list[list[str]]]:
    ids = [f"r{round_number}-b{number}-{i}" for i in range(BATCH)]
    vectors = rng.standard_normal((BATCH, DIM)).astype(np.float32)
    attributes: list[dict[str, object]] = [
        {"batch": number, "tag": f"t{i % 7}"} for i in range(BATCH)
    ]
    tenants = [[f"tenant{i % 3}"] for i in range(BATCH)]
    return ids, vectors, attributes, tenants


Batch = tuple[list[str], np.ndarray, list[dict[str, object]], list[list[str]]]


def _stream_until_killed(address: str, batches: Iterator[Batch], sent: list[Batch]) -> int:
    """Stream batches until the server dies; return how many were acknowledged."""

    def requests() -> Iterator[pb.UpsertRequest]:
        for batch in batches:
            sent.append(batch)
            yield Client._upsert_request("c", *batch)

    acknowledged = 0
    client = Client(address)
    try:
        for response in client._stub.UpsertStream(requests()):
            assert response.upserted == BATCH
            acknowledged += 1
    except vecdb.VecdbError:
        raise
    except Exception:
        pass  # the server was killed mid-stream
    finally:
        client.close()
    return acknowledged


@pytest.mark.slow
def test_sigkill_mid_ingest_loses_no_acknowledged_point(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("crash").start()
    with Client(server.address) as client:
        client.create_collection("c", DIM, "l2", {"batch": "int", "tag": "keyword"})
    rng = np.random.default_rng(7)
    chooser = random.Random(7)
    acknowledged: list[Batch] = []
    unacknowledged: list[Batch] = []
    for round_number in range(ROUNDS):
        sent: list[Batch] = []
        batches = (_batch(round_number, number, rng) for number in range(100_000))
        result: list[int] = []
        writer = threading.Thread(
            target=lambda out=result, source=batches, log=sent: out.append(
                _stream_until_killed(server.address, source, log)
            )
        )
        writer.start()
        # kill at a random moment while batches are in flight
        threading.Event().wait(chooser.uniform(0.5, 1.5))
        server.kill()
        writer.join(timeout=60)
        assert not writer.is_alive() and result
        count = result[0]
        assert count > 0, "no batch was acknowledged before the kill: the round proves nothing"
        acknowledged.extend(sent[:count])
        unacknowledged.extend(sent[count:])
        server.start()
        with Client(server.address) as client:
            client.wait_ready()
            for ids, vectors, attributes, tenants in acknowledged:
                points = client.get("c", ids, with_vectors=True)
                assert [p.id for p in points] == ids
                np.testing.assert_array_equal(np.stack([p.vector for p in points]), vectors)
                assert [p.attributes for p in points] == attributes
                assert [p.tenants for p in points] == tenants
            for ids, *_ in unacknowledged:
                present = len(client.get("c", ids))
                assert present in (0, BATCH), f"batch {ids[0]} is half-written ({present} points)"
    with Client(server.address) as client:
        assert client.describe_collection("c").point_count >= len(acknowledged) * BATCH
        assert client.search("c", acknowledged[0][1][0], k=1).ids == [acknowledged[0][0][0]]
