"""Ingestion: Segment-compatible messages and bulk files into the event log."""

from __future__ import annotations

from opencx.ingest._fast import Envelope, FastValidator, decode_envelope
from opencx.ingest._import import (
    MAP_TARGETS,
    ImportReport,
    import_file,
    parse_mapping,
    row_to_message,
)
from opencx.ingest._pipeline import Ingestor, now_us
from opencx.ingest._privacy import (
    HASH_PREFIX,
    FieldRedactor,
    SuppressionList,
    privacy_salt,
    salted_hash,
)
from opencx.ingest._replay import ReplayReport, replay_failed
from opencx.ingest._validate import (
    SCORE_RANGES,
    Failure,
    MessageValidator,
    SourceContext,
    ValidatedBatch,
    derived_message_id,
    parse_timestamp,
)
from opencx.ingest._workers import ValidationPool, default_workers
from opencx.ingest._writer import EventWriter, PreparedBatch, WriteResult, prepare

__all__ = [
    "HASH_PREFIX",
    "MAP_TARGETS",
    "SCORE_RANGES",
    "Envelope",
    "EventWriter",
    "Failure",
    "FastValidator",
    "FieldRedactor",
    "ImportReport",
    "Ingestor",
    "MessageValidator",
    "PreparedBatch",
    "ReplayReport",
    "SourceContext",
    "SuppressionList",
    "ValidatedBatch",
    "ValidationPool",
    "WriteResult",
    "decode_envelope",
    "default_workers",
    "derived_message_id",
    "import_file",
    "now_us",
    "parse_mapping",
    "parse_timestamp",
    "prepare",
    "privacy_salt",
    "replay_failed",
    "row_to_message",
    "salted_hash",
]
