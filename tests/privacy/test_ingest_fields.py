"""Personal fields hashed or dropped at ingest (`privacy.hash_fields` / `drop_fields`)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import ValidationError

from opencx.config import PrivacySettings, load_settings
from opencx.ingest import HASH_PREFIX, Ingestor, salted_hash
from opencx.privacy._verify import count_mentions
from opencx.store import Store
from tests.privacy.conftest import WEB


def _ingestor(store: Store, tmp_path: Path, **privacy: object) -> Ingestor:
    settings = load_settings(
        db=tmp_path / "x.duckdb", profiles_refresh_s=0,
        privacy=PrivacySettings(salt="pepper", **privacy),  # type: ignore[arg-type]
    )  # fmt: skip
    return Ingestor(store, settings)


def test_hashed_and_dropped_fields_are_never_stored_in_clear(store: Store, tmp_path: Path) -> None:
    ingestor = _ingestor(
        store, tmp_path, hash_fields=["context.ip", "properties.card_last4"],
        drop_fields=["context.userAgent", "traits.birthday"],
    )  # fmt: skip
    messages = [
        {"type": "track", "messageId": "h-1", "event": "Paid", "userId": "u1",
         "properties": {"card_last4": "4242", "total": 10},
         "context": {"ip": "198.51.100.23", "userAgent": "Agent/9", "locale": "en"}},
        {"type": "identify", "messageId": "h-2", "userId": "u1",
         "traits": {"birthday": "1990-02-03", "plan": "gold"}},
        # Refused (bad score), so stored as a raw payload in failed_events: redacted too.
        {"type": "track", "messageId": "h-3", "event": "Survey Responded", "userId": "u1",
         "properties": {"card_last4": "4242", "score": "x"}, "context": {"ip": "198.51.100.23"}},
    ]  # fmt: skip
    result = ingestor.ingest(messages, WEB)
    assert (result.accepted, result.rejected) == (2, 1)
    clear = ["198.51.100.23", "4242", "agent/9", "1990-02-03"]
    mentions = count_mentions(store.con, clear)
    assert {n: {t: c for t, c in per.items() if c} for n, per in mentions.items()} == {
        n: {} for n in clear
    }
    props, context = store.con.execute(
        "SELECT CAST(properties AS VARCHAR), CAST(context AS VARCHAR) FROM events "
        "WHERE message_id = 'h-1'"
    ).fetchall()[0]
    assert orjson.loads(props) == {
        "card_last4": HASH_PREFIX + salted_hash(b"pepper", "4242"), "total": 10,
    }  # fmt: skip
    assert orjson.loads(context) == {
        "ip": HASH_PREFIX + salted_hash(b"pepper", "198.51.100.23"), "locale": "en",
    }  # fmt: skip
    traits = store.con.execute(
        "SELECT CAST(traits AS VARCHAR) FROM events WHERE message_id = 'h-2'"
    ).fetchall()[0][0]
    assert orjson.loads(traits) == {"plan": "gold"}


def test_the_fast_lane_is_redacted_too(store: Store, tmp_path: Path) -> None:
    ingestor = _ingestor(store, tmp_path, hash_fields=["context.ip"])
    raw = [b'{"type":"track","messageId":"f-1","event":"Seen","userId":"u2",'
           b'"context":{"ip":"192.0.2.1"}}']  # fmt: skip
    result = ingestor.writer.write(ingestor.validate_raw(raw, WEB))
    assert result.accepted == 1
    assert count_mentions(store.con, ["192.0.2.1"])["192.0.2.1"]["events"] == 0


def test_paths_must_be_under_properties_traits_or_context() -> None:
    with pytest.raises(ValidationError, match="dotted path under properties"):
        PrivacySettings(hash_fields=["ip"])
    with pytest.raises(ValidationError, match="dotted path"):
        PrivacySettings(drop_fields=["context."])


def test_without_a_configured_salt_each_database_makes_its_own(
    store: Store, tmp_path: Path
) -> None:
    first = Ingestor(store, load_settings(db=tmp_path / "a.duckdb"))
    again = Ingestor(store, load_settings(db=tmp_path / "a.duckdb"))
    with Store() as other_store:
        other = Ingestor(other_store, load_settings(db=tmp_path / "b.duckdb"))
        assert other.writer.suppressions.salt != first.writer.suppressions.salt
    assert first.writer.suppressions.salt == again.writer.suppressions.salt
    assert len(first.writer.suppressions.salt) == 64
