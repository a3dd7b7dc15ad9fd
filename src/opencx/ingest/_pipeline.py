"""The ingestion pipeline: messages in, validated, resolved and committed by one writer."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from opencx.config import Settings
from opencx.identity import IdentifierExtractor
from opencx.ingest._fast import FastValidator
from opencx.ingest._validate import MessageValidator, SourceContext, ValidatedBatch
from opencx.ingest._workers import BodyValidator, ValidationPool, WorkerConfig, default_workers
from opencx.ingest._writer import EventWriter, PreparedBatch, WriteResult
from opencx.store import Store


def now_us() -> int:
    return time.time_ns() // 1000


class Ingestor:
    """Validation plus the single writer: every path into the event log goes through here."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.extractor = IdentifierExtractor(settings.identity, settings.default_region)
        self.validator = MessageValidator(self.extractor, settings.max_event_bytes)
        self.fast = FastValidator(self.validator)
        self.writer = EventWriter(store, settings)
        privacy = settings.privacy
        config = WorkerConfig(
            settings.identity, settings.default_region, settings.max_event_bytes,
            settings.max_batch_events, self.writer.redactor.salt,
            tuple(privacy.hash_fields), tuple(privacy.drop_fields),
        )  # fmt: skip
        workers = settings.ingest_workers
        self.bodies = ValidationPool(
            config, default_workers() if workers is None else workers,
            BodyValidator(config, self.fast),
        )  # fmt: skip

    def validate(
        self,
        messages: Iterable[Any],
        source: SourceContext,
        *,
        received_us: int | None = None,
        batch_sent_at: Any = None,
        default_type: str | None = None,
        row_numbers: Sequence[int] | None = None,
    ) -> ValidatedBatch:
        """Validate messages (parsed JSON) into one batch: valid columns plus failures."""
        batch = ValidatedBatch()
        received = now_us() if received_us is None else received_us
        for index, message in enumerate(messages):
            self.validator.validate_into(
                batch, message, index=index, source=source, received_us=received,
                batch_sent_at=batch_sent_at, default_type=default_type,
                row_number=row_numbers[index] if row_numbers is not None else None,
            )  # fmt: skip
        return batch

    def validate_raw(
        self,
        raws: Sequence[bytes],
        source: SourceContext,
        *,
        received_us: int | None = None,
        batch_sent_at: Any = None,
        default_type: str | None = None,
    ) -> ValidatedBatch:
        """Validate raw JSON messages, as cut from a request body, into one batch."""
        received = now_us() if received_us is None else received_us
        return self.fast.validate_all(raws, source, received, batch_sent_at, default_type)

    async def prepare_body(
        self, body: bytes, source: SourceContext, received_us: int | None = None
    ) -> PreparedBatch | None:
        """A `/v1/batch` body validated and prepared for the writer, in a worker process.

        None: the body is not a plainly decodable batch; the tolerant path explains why.
        """
        received = now_us() if received_us is None else received_us
        return await self.bodies.validate(body, source, received)

    def ingest(self, messages: Iterable[Any], source: SourceContext, **kwargs: Any) -> WriteResult:
        """Validate and store messages; returns once they are committed."""
        return self.writer.write(self.validate(messages, source, **kwargs))

    def start(self) -> Ingestor:
        """Start the writer thread and the validation workers (a server's ingestion)."""
        self.writer.start()
        self.bodies.start()
        return self

    def stop(self) -> None:
        self.bodies.stop()
        self.writer.stop()
