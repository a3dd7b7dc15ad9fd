"""The message-id index finds every stored id, and a hit is always confirmed exactly."""

from __future__ import annotations

import numpy as np

from opencx.ingest import Ingestor, SourceContext
from opencx.store import MessageIndex, Store, message_hashes, stored_message_ids


def test_every_added_hash_is_found_across_the_merge_into_the_base() -> None:
    index = MessageIndex()
    ids = [f"m-{i}" for i in range(60_000)]  # more than one merge of recent into base
    hashes = message_hashes(ids)
    index.add(hashes[:30_000])
    index.add(hashes[30_000:])
    assert len(index) == 60_000
    assert index.maybe_stored(hashes[::997]) == list(range(len(hashes[::997])))
    fresh = message_hashes([f"n-{i}" for i in range(1000)])
    assert len(index.maybe_stored(fresh)) <= 1  # 64-bit hashes: a collision is astronomically rare


def test_index_is_rebuilt_from_the_log_and_hits_are_confirmed(ingestor: Ingestor) -> None:
    ingestor.ingest(
        [{"type": "page", "anonymousId": "a", "messageId": f"m-{i}"} for i in range(50)],
        SourceContext("web", "web"),
    )
    con = ingestor.store.con
    index = MessageIndex.load(con)
    assert len(index) == 50
    hashes = message_hashes(["m-3", "m-99"])
    assert index.maybe_stored(hashes) == [0]
    assert stored_message_ids(con, ["m-3", "m-99"]) == {"m-3"}
    assert np.array_equal(hashes, message_hashes(["m-3", "m-99"]))


def test_an_empty_log_has_an_empty_index() -> None:
    with Store() as store:
        assert len(MessageIndex.load(store.con)) == 0
