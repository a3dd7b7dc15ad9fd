"""Identity on the engine: connected components in SQL plus the rules give the rebuild's owners."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings

from opencx.identity._rebuild import rebuild_identity
from opencx.identity.components import engine_key, resolve_components, resolve_identity_on_engine
from opencx.store import Store
from opencx.warehouse import Warehouse, embedded, spark, sync_parquet
from tests.identity.test_persist import RULES, ingest_in_batches, splits, streams


def chains(seed: int, people: int = 40) -> list[dict[str, Any]]:
    """Anonymous visits, then an email, then a login, on one or two devices per person;
    plus two people who share an email (a rule must keep their user ids apart)."""
    rng = random.Random(seed)
    stream: list[dict[str, Any]] = []
    for i in range(people):
        devices = [f"a{i}-{d}" for d in range(rng.randint(1, 2))]
        for anon in devices:
            stream.append({"type": "page", "anonymousId": anon})
        stream.append(
            {"type": "identify", "anonymousId": devices[0], "traits": {"email": f"e{i}@x.io"}}
        )
        for anon in devices:
            stream.append({"type": "identify", "anonymousId": anon, "userId": f"u{i}"})
    stream += [
        {"type": "identify", "userId": "shared-1", "traits": {"email": "family@x.io"}},
        {"type": "identify", "userId": "shared-2", "traits": {"email": "family@x.io"}},
    ]
    rng.shuffle(stream)  # devices interleave in the log
    return stream


def expected_owners(store: Store, blocks: list[Any] = ()) -> dict[str, str]:  # type: ignore[assignment]
    rebuilt = rebuild_identity(store.con, RULES, blocks).owners
    return {
        engine_key(k): p
        for k, p in zip(
            rebuilt.column("identifier").to_pylist(), rebuilt.column("profile_id").to_pylist(),
            strict=True,
        )
    }  # fmt: skip


def test_generated_chains_resolve_as_the_rebuild_does_on_duckdb() -> None:
    store = ingest_in_batches(chains(3), [50])
    found = resolve_identity_on_engine(embedded(store.con), RULES)
    assert found.owners == expected_owners(store)
    assert found.rule_bound_components == 1 and found.components >= 41
    assert 2 <= found.rounds <= 10


def test_components_alone_differ_where_a_rule_bites() -> None:
    """The engine-only answer joins the two user ids sharing an email; it says so."""
    store = ingest_in_batches(chains(4), [50])
    table, _ = resolve_components(embedded(store.con), RULES)
    rows = {r["key"]: r for r in table.to_pyarrow().to_pylist()}
    one, two = rows[engine_key("user_id:shared-1")], rows[engine_key("user_id:shared-2")]
    assert one["component"] == two["component"]  # connected through the email...
    assert not one["clean"] and one["profile_id"] is None  # ...but not one profile
    owners = expected_owners(store)
    assert owners[engine_key("user_id:shared-1")] != owners[engine_key("user_id:shared-2")]
    clean = [r for r in rows.values() if r["clean"]]
    assert clean and all(owners[r["key"]] == r["profile_id"] for r in clean)


def test_a_split_keeps_its_pair_apart() -> None:
    store = ingest_in_batches(chains(5, people=10), [20])
    blocks = [("email:e3@x.io", "user_id:u3", None)]
    found = resolve_identity_on_engine(embedded(store.con), RULES, blocks)
    assert found.owners == expected_owners(store, blocks)
    assert found.owners[engine_key("email:e3@x.io")] != found.owners[engine_key("user_id:u3")]
    assert found.rule_bound_components == 2


@hypothesis_settings(max_examples=15, deadline=None)
@given(streams, splits)
def test_any_stream_resolves_as_the_rebuild_does(
    stream: list[dict[str, Any]], cuts: list[int]
) -> None:
    store = ingest_in_batches(stream, cuts)
    if store.con.execute("SELECT count(*) FROM events WHERE len(identifiers) > 0").fetchone()[0]:  # type: ignore[index]
        assert resolve_identity_on_engine(embedded(store.con), RULES).owners == expected_owners(
            store
        )
    store.close()


@pytest.mark.xdist_group("spark")
@pytest.mark.filterwarnings("ignore:Exception ignored in. <socket.socket")
def test_generated_chains_resolve_as_the_rebuild_does_on_spark(
    spark_session: Any, tmp_path: Path
) -> None:
    store = ingest_in_batches(chains(3), [50])
    sync_parquet(store.con, tmp_path)
    on_spark: Warehouse = spark(spark_session, tmp_path)
    blocks = [("email:e3@x.io", "user_id:u3", None)]
    found = resolve_identity_on_engine(on_spark, RULES, blocks)
    assert found.owners == expected_owners(store, blocks)
    assert found.owners == resolve_identity_on_engine(embedded(store.con), RULES, blocks).owners
    assert found.rule_bound_components == 2
