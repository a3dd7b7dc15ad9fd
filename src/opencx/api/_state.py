"""What a running server holds: the store, the ingestion pipeline, and credential caches."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from opencx.access import Source, Token, source_for_write_key, token_for_secret
from opencx.config import Settings
from opencx.ingest import Ingestor
from opencx.metrics import write_effort_traits
from opencx.orchestrate.engine import delivery_round, survey_admission, trigger_round
from opencx.orchestrate.outbox import release_leases
from opencx.profiles import refresh_profiles
from opencx.segments import refresh_segments
from opencx.store import Store
from opencx.voc import list_surveys, open_cases_from_answers, run_schedule, run_trigger
from opencx.warehouse import Warehouse, embedded, open_warehouse

log = logging.getLogger("opencx.api")
_CACHE_SECONDS = 5.0
T = TypeVar("T")


@dataclass
class ServerState:
    """The one store and writer of this process, plus short-lived credential caches."""

    settings: Settings
    store: Store
    ingestor: Ingestor
    _sources: dict[str, tuple[Source | None, float]] = field(default_factory=dict)
    _tokens: dict[str, tuple[Token | None, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _profile_flushes: int = -1
    _local: threading.local = field(default_factory=threading.local)

    @classmethod
    def open(cls, settings: Settings, store: Store | None = None) -> ServerState:
        store = store or Store(settings.db)
        return cls(settings=settings, store=store, ingestor=Ingestor(store, settings))

    def start(self) -> None:
        # The identity graph is millions of long-lived objects: keep the cyclic GC from
        # walking them on every full collection while requests churn small ones.
        gc.collect()
        gc.freeze()
        self.ingestor.start()
        release_leases(self.store.cursor(), datetime.now(UTC))  # a crash's half-sent chunk
        s = self.settings
        self._every("profiles", s.profiles_refresh_s, self._refresh_profiles)
        self._every("voc", s.voc_every_s, self._voc_round())
        self._every("segments", s.segments_every_s, self._refresh_segments)
        self._every("triggers", s.orchestrate_every_s, self._trigger_round)
        self._every("delivery", s.orchestrate_every_s, self._deliver)  # slow webhooks apart

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join()
        self.ingestor.stop()

    def _every(self, name: str, seconds: float, work: Callable[[], None]) -> None:
        """Run `work` every `seconds` (never when 0) on its own thread, until stopped; a
        failed round is logged and the next one retries: it never takes the server down."""
        if seconds <= 0:
            return

        def loop() -> None:
            while not self._stop.wait(seconds):
                try:
                    work()
                except Exception:
                    log.exception("%s round failed", name)

        worker = threading.Thread(target=loop, name=f"opencx-{name}", daemon=True)
        self._workers.append(worker)
        worker.start()

    def _voc_round(self) -> Callable[[], None]:
        """Send the survey invitations that are due and close the loop on new answers."""
        wait = timedelta(days=self.settings.survey_wait_days)
        since: datetime | None = None

        def round() -> None:
            nonlocal since
            started = datetime.now(UTC)
            admit = survey_admission(self.store)  # every invitation passes the policy
            for survey in list_surveys(self.store.cursor()):
                if survey.trigger is not None and survey.schedule is None:
                    run_trigger(self.ingestor, survey, global_wait=wait, admit=admit)
                elif survey.schedule is not None:
                    run_schedule(self.ingestor, survey, global_wait=wait, admit=admit)
            open_cases_from_answers(
                self.ingestor, since=since, queue=self.settings.case_queue,
                sla_hours=self.settings.case_sla_hours,
            )  # fmt: skip
            since = started - timedelta(hours=1)  # late-committed answers, once more

        return round

    def _refresh_segments(self) -> None:
        """Effort traits and saved segments' members (what audiences read)."""
        result = refresh_segments(
            self.store.cursor(), self.warehouse(), datetime.now(UTC), traits=[write_effort_traits]
        )
        for name, reason in result.failed.items():
            log.warning("segment %s kept its old members: %s", name, reason)

    def _trigger_round(self) -> None:
        """Triggers and due holds through the contact policy into the outbox."""
        for error in trigger_round(self.ingestor, self.settings).errors:
            log.warning("trigger failed: %s", error)

    def _deliver(self) -> None:
        delivery_round(self.ingestor, self.settings)

    def _refresh_profiles(self) -> None:
        flushes = self.ingestor.writer.flushes
        if flushes != self._profile_flushes:
            refresh_profiles(self.store.cursor())
            self._profile_flushes = flushes

    def warehouse(self) -> Warehouse:
        """The analytics engine: the store's DuckDB per thread, or the configured Spark.

        On Spark the Parquet export is refreshed (incrementally) when older than
        `_CACHE_SECONDS`, so answers lag ingestion by at most that.
        """
        if self.settings.warehouse:
            return open_warehouse(self.settings, self.store.con, max_age_s=_CACHE_SECONDS)
        found: Warehouse | None = getattr(self._local, "warehouse", None)
        if found is None:
            found = embedded(self.store.cursor())
            self._local.warehouse = found
        return found

    def source(self, write_key: str) -> Source | None:
        """The active source of a write key (cached for a few seconds)."""
        return _cached(
            self._sources, write_key, lambda: source_for_write_key(self.store.cursor(), write_key)
        )

    def token(self, secret: str) -> Token | None:
        """The active API token of a bearer secret (cached for a few seconds)."""
        return _cached(self._tokens, secret, lambda: token_for_secret(self.store.cursor(), secret))


def _cached(cache: dict[str, tuple[T, float]], key: str, look_up: Callable[[], T]) -> T:
    """A credential lookup remembered briefly, so revocations take effect within seconds."""
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    found = look_up()
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (found, now + _CACHE_SECONDS)
    return found
