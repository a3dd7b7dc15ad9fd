"""What a running server holds: the store, the ingestion pipeline, and credential caches."""

from __future__ import annotations

import gc
import logging
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import duckdb

from opencx.access import Source, Token, source_for_write_key, token_for_secret
from opencx.config import Settings
from opencx.ingest import Ingestor
from opencx.metrics import write_effort_traits
from opencx.orchestrate.engine import delivery_round, survey_admission, trigger_round
from opencx.orchestrate.outbox import release_leases
from opencx.profiles import refresh_profiles
from opencx.segments import refresh_segments
from opencx.store import Store, fetch_one
from opencx.voc import list_surveys, open_cases_from_answers, run_schedule, run_trigger
from opencx.warehouse import Warehouse, embedded, open_warehouse

log = logging.getLogger("opencx.api")
_CACHE_SECONDS = 5.0
T = TypeVar("T")
OK = "ok"


@dataclass(frozen=True)
class Readiness:
    """Whether this server can take traffic: each check is "ok" or what is wrong."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(outcome == OK for outcome in self.checks.values())

    @property
    def problems(self) -> list[str]:
        return [f"{name}: {outcome}" for name, outcome in self.checks.items() if outcome != OK]


@dataclass(frozen=True)
class ProcessMemory:
    """This process's resident memory now and at its peak (None where the OS does not say)."""

    rss_bytes: int | None
    peak_rss_bytes: int | None


def process_memory(status: Path = Path("/proc/self/status")) -> ProcessMemory:
    """RSS and peak RSS from /proc (Linux); elsewhere the peak from getrusage, no RSS."""
    found: dict[str, int] = {}
    try:
        for line in status.read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(value.split()[0]) * 1024  # "123456 kB"
    except OSError:
        pass
    if "VmHWM" not in found:  # ru_maxrss: kilobytes on Linux, bytes on macOS
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        found["VmHWM"] = peak if sys.platform == "darwin" else peak * 1024
    return ProcessMemory(found.get("VmRSS"), found["VmHWM"])


@dataclass(frozen=True)
class IngestionStats:
    """The writer's state: its queue, its commits, and the in-memory state it keeps."""

    backlog: int
    max_queued_events: int
    flushes: int
    dedup_index_entries: int
    dedup_index_bytes: int  # 8 per stored event, by design (docs/architecture.md)
    identifiers: int  # in the identity graph


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
        if store is None:
            store = Store.for_settings(settings)
        else:  # opened by the caller (`opencx serve`, tests): the server's limits still hold
            store.limit_resources(settings.memory_limit, settings.temp_directory)
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

    def readiness(self) -> Readiness:
        """Can this server take traffic: the database answers, the writer runs and keeps up.

        The outcomes name no data and no path: they are served to anyone who asks.
        """
        return Readiness(
            {
                "database": self._database_answers(),
                "writer": self._writer_runs(),
                "backlog": self._backlog_fits(),
            }
        )

    def _database_answers(self) -> str:
        try:
            fetch_one(self.store.cursor().execute("SELECT 1"))
        except duckdb.FatalException as exc:
            log.error("not ready: %s", exc)
            return (
                "DuckDB invalidated the database after a fatal error (e.g. a checkpoint on a "
                "full disk): free space if needed, then restart the server"
            )
        except duckdb.Error as exc:
            log.error("not ready: %s", exc)
            return "the database does not answer queries (the server log has the error)"
        return OK

    def _writer_runs(self) -> str:
        if not self.ingestor.writer.alive:
            return "the ingestion writer is not running: restart the server"
        return OK

    def _backlog_fits(self) -> str:
        backlog, limit = self.ingestor.writer.backlog, self.settings.max_queued_events
        if backlog > limit:
            return (
                f"{backlog} events queued, over max_queued_events ({limit}): ingestion "
                "answers 429 until the writer catches up"
            )
        return OK

    def ingestion_stats(self) -> IngestionStats:
        writer = self.ingestor.writer
        entries = len(writer.index)
        return IngestionStats(
            backlog=writer.backlog, max_queued_events=self.settings.max_queued_events,
            flushes=writer.flushes, dedup_index_entries=entries,
            dedup_index_bytes=8 * entries, identifiers=len(writer.graph),
        )  # fmt: skip

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
