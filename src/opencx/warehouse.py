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

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir

from opencx.errors import InvalidInput
from opencx.store import fetch_one

EVENTS = "analytics_events"
PROFILES = "analytics_profiles"
COMPUTED = "computed_traits"  # effort traits and the like, written by segment refreshes
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@ibis.udf.scalar.builtin(name="json_extract_string")
def _duckdb_json_text(doc: str, path: str) -> str:  # type: ignore[empty-body]
    """DuckDB: the text of one JSON field."""


@ibis.udf.scalar.builtin(name="get_json_object")
def _spark_json_text(doc: str, path: str) -> str:  # type: ignore[empty-body]
    """Spark: the text of one JSON field."""


_JSON_TEXT = {"duckdb": _duckdb_json_text, "pyspark": _spark_json_text}


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
    if (root / COMPUTED).exists():  # older exports have none: effort fields are then missing
        session.read.parquet(str(root / COMPUTED)).createOrReplaceTempView(COMPUTED)
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
    }
    for name, partition in ((EVENTS, "day"), (PROFILES, None), (COMPUTED, None)):
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
        row = fetch_one(con.execute(f"SELECT count(*) FROM {name}"))
        counts[name] = int(row[0]) if row else 0
        _remove(target)
        staging.rename(target)
    return counts


def _remove(path: Path) -> None:
    if not path.exists():
        return
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        child.rmdir() if child.is_dir() else child.unlink()
    path.rmdir()
