"""The analytics engine: Ibis over the embedded DuckDB (default) or over Spark on Parquet.

Every analytic in OpenCX is an Ibis expression over two tables with one schema on
every engine:

- `analytics_events`: one row per stored interaction, with the person it belongs to
  now (`person_id`, following merges), `seq` (log order, the tie-break for equal
  timestamps), `type`, `event` (track name, or page/screen name), `channel`, `source`,
  `timestamp` (UTC) and `properties` as a JSON string;
- `analytics_profiles`: one row per person (`person_id`, `traits` as a JSON string).

The few things SQL engines spell differently (reading a JSON field) live here, so the
analytics code never names an engine.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from opencx.config import Settings
from opencx.errors import InvalidInput
from opencx.store import fetch_one

EVENTS = "analytics_events"
PROFILES = "analytics_profiles"
COMPUTED = "computed_traits"  # effort traits and the like, written by segment refreshes
EDGES = "identity_edges"  # what identity resolution on the engine reads
# The first event of each distinct identifier set (only those can change the identity
# graph, see identity/_rebuild.py), one row per identifier in trust order (`pos`). Keys
# leave the store pseudonymised: the kind stays readable (merge limits are per kind),
# the value is the MD5 of the whole key, so the export holds no email or phone number.
EDGES_SQL = """
    SELECT seq, message_id, pos, split_part(key, ':', 1) || ':' || md5(key) AS key
    FROM (
        SELECT seq, message_id, unnest(generate_series(1, len(identifiers))) AS pos,
               unnest(identifiers) AS key
        FROM (
            SELECT identifiers, min(seq) AS seq, arg_min(message_id, seq) AS message_id
            FROM events WHERE len(identifiers) > 0 GROUP BY identifiers
        )
    )
"""
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@ibis.udf.scalar.builtin(name="json_extract_string")
def _duckdb_json_text(doc: str, path: str) -> str:  # type: ignore[empty-body]
    """DuckDB: the text of one JSON field."""


@ibis.udf.scalar.builtin(name="get_json_object")
def _spark_json_text(doc: str, path: str) -> str:  # type: ignore[empty-body]
    """Spark: the text of one JSON field."""


_JSON_TEXT = {"duckdb": _duckdb_json_text, "pyspark": _spark_json_text}


@ibis.udf.scalar.builtin(name="epoch_us")
def _duckdb_micros(ts: dt.timestamp) -> dt.int64:  # type: ignore[empty-body]
    """DuckDB: microseconds since the epoch."""


@ibis.udf.scalar.builtin(name="unix_micros")
def _spark_micros(ts: dt.timestamp) -> dt.int64:  # type: ignore[empty-body]
    """Spark: microseconds since the epoch (its `unix_timestamp` drops the fraction)."""


_MICROS = {"duckdb": _duckdb_micros, "pyspark": _spark_micros}


def check_field_name(name: str, what: str = "property") -> str:
    """A property or trait name safe to put in a JSON path on every engine."""
    if not _FIELD.fullmatch(name):
        raise InvalidInput(
            f"{what} name {name!r} must be letters, digits and '_' (at most 64), "
            "starting with a letter or '_'"
        )
    return name


@dataclass(frozen=True)
class Warehouse:
    """An Ibis backend holding `analytics_events` and `analytics_profiles`."""

    backend: Any
    engine: str

    def events(self) -> ir.Table:
        """Every interaction with a known person, on this engine."""
        table = self.backend.table(EVENTS)
        return table.filter(table.person_id.notnull())

    def profiles(self) -> ir.Table:
        return self.backend.table(PROFILES)

    def survey_answers(self) -> ir.Table:
        """Every `Survey Responded` event as person_id, at, channel, message_id, survey_id,
        survey_type (lower case), score, touchpoint and comment."""
        events = self.events()
        rows = events.filter(events.event == "Survey Responded")
        text = self.json_text
        return rows.select(
            "person_id",
            "channel",
            "message_id",
            at=rows.timestamp,
            survey_id=text(rows.properties, "survey_id"),
            survey_type=text(rows.properties, "survey_type").lower(),
            score=text(rows.properties, "score").cast("float64"),
            touchpoint=text(rows.properties, "touchpoint"),
            comment=text(rows.properties, "comment"),
        )

    def epoch_seconds(self, ts: ir.TimestampValue) -> ir.FloatingValue:
        """Seconds since the epoch with the microseconds kept, whatever the engine.

        Ibis's own `epoch_seconds()` is whole seconds on Spark and fractional on DuckDB.
        """
        return _MICROS[self.engine](ts).cast("float64") / 1_000_000

    def identity_edges(self) -> ir.Table:
        """seq, message_id, pos, key: each distinct identifier set's first event, by key."""
        if self.engine == "duckdb":  # a view of this connection only: no migration needed
            self.backend.con.execute(f"CREATE OR REPLACE TEMP VIEW {EDGES} AS {EDGES_SQL}")
            return self.backend.table(EDGES)
        if EDGES not in self.backend.list_tables():
            raise InvalidInput(
                f"this export has no {EDGES}/: refresh it with `opencx export parquet`"
            )
        return self.backend.table(EDGES)

    def json_text(self, doc: ir.StringValue, field: str) -> ir.StringValue:
        """The text of `doc.field` (NULL when absent), whatever the engine."""
        return _JSON_TEXT[self.engine](doc, f"$.{check_field_name(field)}")


def embedded(con: duckdb.DuckDBPyConnection) -> Warehouse:
    """The default warehouse: the store's own DuckDB connection (views from migration 3)."""
    return Warehouse(ibis.duckdb.from_connection(con), "duckdb")


def spark(session: Any, parquet_dir: Path | str) -> Warehouse:
    """Spark (a `SparkSession`, local or a cluster) over a Parquet export of the store."""
    root = Path(parquet_dir)
    for name in (EVENTS, PROFILES):
        if not (root / name).exists():
            raise InvalidInput(f"{root} has no {name}/: export it with `opencx export parquet`")
        session.read.parquet(str(root / name)).createOrReplaceTempView(name)
    for name in (COMPUTED, EDGES):  # older exports have none: effort fields are then missing
        if (root / name).exists():
            session.read.parquet(str(root / name)).createOrReplaceTempView(name)
    return Warehouse(ibis.pyspark.connect(session), "pyspark")


def export_parquet(con: duckdb.DuckDBPyConnection, directory: Path | str) -> dict[str, int]:
    """Write the analytics tables as Parquet (events partitioned by day) for another engine.

    Writes into a fresh folder beside the target and swaps it in, so a reader never sees
    a half-written export and running it twice leaves the same files.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    counts = {}
    selects = {
        EVENTS: f"SELECT *, CAST(timestamp AS DATE) AS day FROM {EVENTS}",
        PROFILES: f"SELECT * FROM {PROFILES}",
        COMPUTED: "SELECT person_id, name, CAST(value AS VARCHAR) AS value, computed_at "
        f"FROM {COMPUTED}",
        EDGES: EDGES_SQL,
    }
    for name, partition in ((EVENTS, "day"), (PROFILES, None), (COMPUTED, None), (EDGES, None)):
        target = root / name
        staging = root / f".{name}.tmp"
        _remove(staging)
        select = selects[name]
        options = f"FORMAT parquet, PARTITION_BY ({partition})" if partition else "FORMAT parquet"
        if partition:
            con.execute(f"COPY ({select}) TO '{staging}' ({options})")
        else:
            staging.mkdir()
            con.execute(f"COPY ({select}) TO '{staging / 'part-0.parquet'}' ({options})")
        row = fetch_one(con.execute(f"SELECT count(*) FROM ({select})"))
        counts[name] = int(row[0]) if row else 0
        _remove(target)
        staging.rename(target)
    return counts


MANIFEST = "manifest.json"
_MANIFEST_VERSION = 1
# What a day partition holds, summed up so that any change shows: new or late events
# (rows, max_seq), and rewritten ones too: a merge changes old events' person_id, an
# erasure their properties; the XOR of row hashes changes with any of them.
_DAY_SUMMARY = f"""
    SELECT strftime(CAST(timestamp AS DATE), '%Y-%m-%d') AS day, count(*) AS rows,
           max(seq) AS max_seq,
           bit_xor(hash(person_id, seq, message_id, type, event, channel, source,
                        timestamp, properties)) AS fingerprint
    FROM {EVENTS} GROUP BY ALL
"""
_WHOLE_TABLES = {
    PROFILES: (f"SELECT * FROM {PROFILES}", "hash(person_id, traits)"),
    COMPUTED: (
        f"SELECT person_id, name, CAST(value AS VARCHAR) AS value, computed_at FROM {COMPUTED}",
        "hash(person_id, name, CAST(value AS VARCHAR), computed_at)",
    ),
    EDGES: (EDGES_SQL, "hash(seq, message_id, pos, key)"),
}


@dataclass(frozen=True)
class ExportReport:
    """What one incremental export did: day partitions rewritten or removed, tables redone."""

    written_days: list[str] = field(default_factory=list)
    removed_days: list[str] = field(default_factory=list)
    unchanged_days: int = 0
    written_tables: list[str] = field(default_factory=list)
    events: int = 0

    @property
    def wrote_anything(self) -> bool:
        return bool(self.written_days or self.removed_days or self.written_tables)


def sync_parquet(con: duckdb.DuckDBPyConnection, directory: Path | str) -> ExportReport:
    """Bring a Parquet export up to date, rewriting only what changed since the last run.

    The layout is `export_parquet`'s (`analytics_events/day=YYYY-MM-DD/`; profiles,
    computed traits and the pseudonymised identity edges whole). `manifest.json`
    records, per day partition, its row count, highest `seq` and a fingerprint of its
    rows; a run rewrites the days whose summary differs (new events, late events for
    old days, merges, erasures), each written beside its folder and swapped in, removes
    days that no longer have events, and rewrites the small tables only when their
    fingerprint changed. A second run with nothing new writes nothing; the result
    always equals a full `export_parquet`.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(root / MANIFEST)
    with con.cursor() as cur:  # its own connection: the caller's open results stay intact
        days = {
            day: {"rows": int(rows), "max_seq": int(top), "fingerprint": int(fp)}
            for day, rows, top, fp in cur.execute(_DAY_SUMMARY).fetchall()
        }
        events_dir = root / EVENTS
        events_dir.mkdir(exist_ok=True)
        on_disk = {p.name.removeprefix("day=") for p in events_dir.glob("day=*")}
        known = manifest["days"]
        changed = sorted(d for d, summary in days.items() if known.get(d) != summary)
        changed = sorted(set(changed) | {d for d in days if d not in on_disk})
        gone = sorted((set(known) | on_disk) - set(days))
        if changed:
            _write_days(cur, root, changed)
        for day in gone:
            _remove(events_dir / f"day={day}")
        tables = {}
        written_tables = []
        for name, (select, row_hash) in _WHOLE_TABLES.items():
            row = fetch_one(cur.execute(f"SELECT count(*), bit_xor({row_hash}) FROM ({select})"))
            summary = {"rows": int(row[0]), "fingerprint": int(row[1] or 0)} if row else {}
            tables[name] = summary
            if manifest["tables"].get(name) != summary or not (root / name).exists():
                _swap_in(root, name, lambda staging, s=select: cur.execute(
                    f"COPY ({s}) TO '{staging / 'part-0.parquet'}' (FORMAT parquet)"
                ))  # fmt: skip
                written_tables.append(name)
    _write_manifest(root / MANIFEST, {"version": _MANIFEST_VERSION, "days": days, "tables": tables})
    return ExportReport(
        written_days=changed,
        removed_days=gone,
        unchanged_days=len(days) - len(changed),
        written_tables=written_tables,
        events=sum(d["rows"] for d in days.values()),
    )


def _write_days(cur: duckdb.DuckDBPyConnection, root: Path, days: list[str]) -> None:
    """One pass over the log for every changed day, then one swap per day partition."""
    staging = root / f".{EVENTS}.staging"
    trash = root / f".{EVENTS}.old"
    _remove(staging)
    _remove(trash)
    # Days come from our own summary query: ISO dates, safe as SQL literals.
    listed = ", ".join(f"DATE '{date.fromisoformat(d).isoformat()}'" for d in days)
    cur.execute(
        f"COPY (SELECT *, CAST(timestamp AS DATE) AS day FROM {EVENTS} "
        f"WHERE CAST(timestamp AS DATE) IN ({listed}) ORDER BY seq) "
        f"TO '{staging}' (FORMAT parquet, PARTITION_BY (day))"
    )
    trash.mkdir()
    events_dir = root / EVENTS
    for day in days:
        part = f"day={day}"
        if (events_dir / part).exists():
            (events_dir / part).rename(trash / part)
        (staging / part).rename(events_dir / part)
    _remove(trash)
    _remove(staging)


def _swap_in(root: Path, name: str, write: Any) -> None:
    staging = root / f".{name}.tmp"
    _remove(staging)
    staging.mkdir()
    write(staging)
    old = root / f".{name}.old"
    _remove(old)
    if (root / name).exists():
        (root / name).rename(old)
    staging.rename(root / name)
    _remove(old)


def _read_manifest(path: Path) -> dict[str, Any]:
    empty: dict[str, Any] = {"version": _MANIFEST_VERSION, "days": {}, "tables": {}}
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty
    except (OSError, ValueError):
        return empty  # unreadable: treat every partition as changed, which is always correct
    if not isinstance(found, dict) or found.get("version") != _MANIFEST_VERSION:
        return empty
    return {"version": _MANIFEST_VERSION, "days": found.get("days") or {},
            "tables": found.get("tables") or {}}  # fmt: skip


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(staging, path)


def warehouse_folder(settings: Settings) -> Path:
    """Where the Spark warehouse's Parquet export lives (`warehouse_dir`, or beside the db)."""
    if settings.warehouse_dir is not None and str(settings.warehouse_dir):
        return Path(settings.warehouse_dir)
    return settings.db.parent / f"{settings.db.stem}-parquet"


_opened: dict[tuple[str, str], tuple[Warehouse, float]] = {}
_opening = threading.Lock()


def open_warehouse(
    settings: Settings, con: duckdb.DuckDBPyConnection, *, max_age_s: float = 0.0
) -> Warehouse:
    """The analytics engine `settings.warehouse` names, ready to query.

    Empty (the default): the embedded DuckDB over `con`, instantly. A Spark URL: the
    export in `warehouse_folder(settings)` is brought up to date with `sync_parquet`
    (only changed days are rewritten) and a Spark warehouse opened over it; within
    `max_age_s` of the last refresh the same one is handed back (the server passes a
    few seconds so every request does not rescan the log).
    """
    if not settings.warehouse:
        return embedded(con)
    folder = warehouse_folder(settings)
    key = (settings.warehouse, str(folder.resolve()))
    with _opening:  # one export at a time per process; Spark sessions are shared anyway
        cached = _opened.get(key)
        if cached is not None and time.monotonic() - cached[1] < max_age_s:
            return cached[0]
        session = spark_session(settings.warehouse)
        sync_parquet(con, folder)
        found = spark(session, folder)
        _opened[key] = (found, time.monotonic())
        return found


def spark_session(url: str) -> Any:
    """The Spark session of a warehouse URL: `pyspark://MASTER` or `sc://HOST:PORT`."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InvalidInput(
            f"warehouse {url!r} needs PySpark: pip install 'ibis-framework[pyspark]'"
        ) from None
    if url.startswith("sc://"):
        try:
            return SparkSession.builder.remote(url).getOrCreate()
        except ImportError as exc:  # PySparkImportError: grpcio and friends are missing
            raise InvalidInput(
                f"warehouse {url!r} is Spark Connect, which needs pip install "
                f"'pyspark[connect]': {exc}"
            ) from None
    if not url.startswith("pyspark://"):
        raise InvalidInput(f"warehouse {url!r} must start with pyspark:// or sc://")
    master = url.removeprefix("pyspark://")
    active = SparkSession.getActiveSession()
    if active is not None and active.sparkContext.master == master:
        return active
    return (
        SparkSession.builder.master(master)
        .appName("opencx")
        .config("spark.sql.session.timeZone", "UTC")  # the embedded engine's time zone
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )


def _remove(path: Path) -> None:
    if not path.exists():
        return
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    path.rmdir()
