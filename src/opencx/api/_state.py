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
from opencx.profiles import refresh_profiles
from opencx.store import Store
from opencx.voc import list_surveys, open_cases_from_answers, run_schedule, run_trigger
from opencx.warehouse import Warehouse, embedded

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
    _refresher: threading.Thread | None = None
    _voc: threading.Thread | None = None
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
        if self.settings.profiles_refresh_s > 0:
            self._refresher = threading.Thread(
                target=self._refresh_loop, name="opencx-profiles", daemon=True
            )
            self._refresher.start()
        if self.settings.voc_every_s > 0:
            self._voc = threading.Thread(target=self._voc_loop, name="opencx-voc", daemon=True)
            self._voc.start()

    def stop(self) -> None:
        self._stop.set()
        for worker in (self._refresher, self._voc):
            if worker is not None:
                worker.join()
        self.ingestor.stop()

    def _voc_loop(self) -> None:
        """Send the survey invitations that are due and close the loop on new answers."""
        wait = timedelta(days=self.settings.survey_wait_days)
        since: datetime | None = None
        while not self._stop.wait(self.settings.voc_every_s):
            started = datetime.now(UTC)
            try:
                for survey in list_surveys(self.store.cursor()):
                    if survey.trigger is not None and survey.schedule is None:
                        run_trigger(self.ingestor, survey, global_wait=wait)
                    elif survey.schedule is not None:
                        run_schedule(self.ingestor, survey, global_wait=wait)
                open_cases_from_answers(
                    self.ingestor, since=since, queue=self.settings.case_queue,
                    sla_hours=self.settings.case_sla_hours,
                )  # fmt: skip
                since = started - timedelta(hours=1)  # late-committed answers, once more
            except Exception:  # the next round retries; never take the server down
                log.exception("survey invitations or case opening failed")

    def _refresh_loop(self) -> None:
        last_flushes = -1
        while not self._stop.wait(self.settings.profiles_refresh_s):
            flushes = self.ingestor.writer.flushes
            if flushes == last_flushes:
                continue
            try:
                refresh_profiles(self.store.cursor())
                last_flushes = flushes
            except Exception:  # the next round retries; never take the server down
                log.exception("profiles refresh failed")

    def warehouse(self) -> Warehouse:
        """The analytics engine for the calling thread (the store's DuckDB, through Ibis)."""
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
