"""Saved segments (YAML documents in the store) and how their size changes over time.

    name: unhappy-regulars
    rule: purchases_90d >= 2 and last_nps <= 6
    description: Buy often, would not recommend us

Each refresh appends (time, size) to the segment's `segment_sizes` document, keeping
the newest `MAX_HISTORY` points: a year of daily refreshes is a few kilobytes.

`refresh_segments` materialises every saved segment's members into `segment_members`
(segment, person_id, refreshed_at): what audiences and the contact policy read. It first
runs the computed-trait writers it is given (the server and `opencx segments refresh`
pass `opencx.metrics.write_effort_traits`: segments sit below metrics in the layers, so
they take the writer rather than import it), so rules on `effort_..._90d` see fresh values.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import ibis
import ibis.expr.types as ir
import pyarrow as pa
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from opencx.documents import parse_document
from opencx.errors import InvalidInput, NotFound
from opencx.segments.compile import ALIASES, rule_expression
from opencx.segments.evaluate import membership_expression, segment_sizes_now
from opencx.segments.features import (
    COMPUTED_TRAITS,
    FEATURES,
    computed_traits_table,
    features_expression,
)
from opencx.segments.rules import parse_rule
from opencx.store import (
    delete_document,
    get_document,
    list_documents,
    put_document,
    require_document,
)
from opencx.warehouse import Warehouse

SEGMENT = "segment"
SIZES = "segment_sizes"
MAX_HISTORY = 400

TraitWriter = Callable[[duckdb.DuckDBPyConnection, Warehouse, datetime], int]
"""Writes computed traits as of a moment into `computed_traits`; returns the rows written."""
Progress = Callable[[int, int], None]


class SegmentDefinition(BaseModel):
    """A named rule people can reuse: in KPIs by segment, in profitability, in campaigns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    rule: str
    description: str = ""

    @field_validator("rule")
    @classmethod
    def _parses(cls, value: str) -> str:
        parse_rule(value)  # raises InvalidInput with the column and a caret
        return value.strip()

    def to_yaml(self) -> str:
        return str(yaml.safe_dump(self.model_dump(), sort_keys=False, allow_unicode=True))


@dataclass(frozen=True)
class SegmentSize:
    at: datetime
    size: int


def parse_segment(data: str | Mapping[str, Any]) -> SegmentDefinition:
    """A segment from YAML (or a mapping), with errors naming the field.

    >>> parse_segment("name: quiet\\nrule: events_30d = 0").rule
    'events_30d = 0'
    """
    return parse_document(SegmentDefinition, data, "segment", "a mapping with a name and a rule")


def save_segment(
    con: duckdb.DuckDBPyConnection,
    data: str | Mapping[str, Any],
    *,
    warehouse: Warehouse | None = None,
    by: str | None = None,
) -> SegmentDefinition:
    """Validate and keep a segment; with a warehouse, its fields are checked too."""
    segment = parse_segment(data)
    if warehouse is not None:
        features = features_expression(warehouse, datetime.now(UTC))
        rule_expression(segment.rule, features, warehouse)  # builds, does not run
    put_document(con, SEGMENT, segment.name, segment.to_yaml(), by)
    return segment


def saved_segment(con: duckdb.DuckDBPyConnection, name: str) -> SegmentDefinition:
    doc = require_document(con, SEGMENT, name, f"no saved segment named {name!r}")
    return parse_segment(doc.body)


def saved_segments(con: duckdb.DuckDBPyConnection) -> list[SegmentDefinition]:
    return [parse_segment(d.body) for d in list_documents(con, SEGMENT)]


def delete_segment(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Forget a segment and its size history."""
    if not delete_document(con, SEGMENT, name):
        raise NotFound(f"no saved segment named {name!r}")
    delete_document(con, SIZES, name)


def segment_size_history(con: duckdb.DuckDBPyConnection, name: str) -> list[SegmentSize]:
    """The recorded sizes of a segment, oldest first (empty before its first refresh)."""
    doc = get_document(con, SIZES, name)
    points = (yaml.safe_load(doc.body) or []) if doc is not None else []
    return [SegmentSize(_moment(p["at"]), int(p["size"])) for p in points]


def record_segment_sizes(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    now: datetime,
    *,
    features: ir.Table | None = None,
) -> dict[str, int]:
    """Count every saved segment as of `now` (one pass) and append each size to its history."""
    segments = saved_segments(con)
    if not segments:
        return {}
    sizes = segment_sizes_now(warehouse, {s.name: s.rule for s in segments}, now, features=features)
    _append_sizes(con, sizes, now)
    return sizes


def _append_sizes(con: duckdb.DuckDBPyConnection, sizes: Mapping[str, int], now: datetime) -> None:
    at = _utc(now)
    for name, size in sizes.items():
        history = [
            {"at": p.at.isoformat(), "size": p.size} for p in segment_size_history(con, name)
        ]
        history.append({"at": at.isoformat(), "size": size})
        put_document(con, SIZES, name, yaml.safe_dump(history[-MAX_HISTORY:], sort_keys=False))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _moment(value: Any) -> datetime:
    # YAML reads an ISO timestamp as a datetime itself; older bodies may hold strings.
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def saved_memberships(con: duckdb.DuckDBPyConnection, warehouse: Warehouse) -> ir.Table:
    """(person_id, segment) for every saved segment now: the breakdown KPIs take."""
    segments = saved_segments(con)
    if not segments:
        raise InvalidInput("no saved segment yet: save one first (Segments page or API)")
    return membership_expression(warehouse, {s.name: s.rule for s in segments}, datetime.now(UTC))


@dataclass(frozen=True)
class SegmentRefresh:
    """What one refresh did: each segment's size, the segments whose rule could not run
    (their previous members are kept), computed-trait rows written, and how long it took."""

    at: datetime
    sizes: dict[str, int]
    failed: dict[str, str] = field(default_factory=dict)
    trait_rows: int = 0
    seconds: float = 0.0


def refresh_segments(
    con: duckdb.DuckDBPyConnection,
    warehouse: Warehouse,
    now: datetime,
    *,
    traits: Sequence[TraitWriter] = (),
    progress: Progress | None = None,
) -> SegmentRefresh:
    """Write the computed traits, then every saved segment's members as of `now` into
    `segment_members` (one transaction: each segment's rows replaced, deleted segments'
    rows removed) and append each size to its history.

    Every rule is applied in one pass over the feature table. A rule that cannot run (it
    names a field this engine lacks) is reported in `failed` and keeps its old members.
    """
    started = time.perf_counter()
    at = _utc(now)
    segments = saved_segments(con)
    steps, done = len(traits) + 2, 0

    def step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, steps)

    if progress is not None:
        progress(0, steps)
    rows = 0
    for write in traits:
        rows += write(con, warehouse, at)
        step()
    fresh, failed = _members(warehouse, segments, at)
    step()
    ran = [s.name for s in segments if s.name not in failed]
    _replace_members(con, fresh, [s.name for s in segments], ran, at)
    sizes = {s.name: 0 for s in segments if s.name not in failed}
    for name in fresh.column("segment").to_pylist():
        sizes[name] += 1
    _append_sizes(con, sizes, at)
    step()
    return SegmentRefresh(at, sizes, failed, rows, time.perf_counter() - started)


def _members(
    warehouse: Warehouse, segments: Sequence[SegmentDefinition], now: datetime
) -> tuple[pa.Table, dict[str, str]]:
    """(segment, person_id) of every rule that runs, from one pass; and the failures."""
    available = set(FEATURES)
    if computed_traits_table(warehouse) is None:
        available -= set(COMPUTED_TRAITS)
    parsed = {s.name: parse_rule(s.rule) for s in segments}
    needed = {
        "traits" if f.trait else ALIASES.get(f.name, f.name)
        for rule in parsed.values()
        for f in rule.fields()
    }
    empty = pa.table({"segment": pa.array([], pa.string()), "person_id": pa.array([], pa.string())})
    if not parsed:
        return empty, {}
    table = features_expression(warehouse, now, columns=needed & available)
    flags: dict[str, ir.BooleanValue] = {}
    failed: dict[str, str] = {}
    for name, rule in parsed.items():
        try:
            flags[name] = rule_expression(rule, table, warehouse)
        except InvalidInput as exc:
            failed[name] = exc.message
    if not flags:
        return empty, failed
    # Generated column names, so any segment name is safe; one row per person in any.
    columns = {f"s{i}": flag for i, flag in enumerate(flags.values())}
    wide = table.select("person_id", **columns)
    wide = wide.filter(ibis.or_(*(wide[c] for c in columns))).to_pyarrow()
    people = wide.column("person_id").cast(pa.string())
    parts = [empty]
    for i, name in enumerate(flags):
        picked = people.filter(wide.column(f"s{i}"))
        parts.append(pa.table({"segment": pa.array([name] * len(picked), pa.string()),
                               "person_id": picked}))  # fmt: skip
    return pa.concat_tables(parts), failed


def _replace_members(
    con: duckdb.DuckDBPyConnection,
    fresh: pa.Table,
    saved: Sequence[str],
    refreshed: Sequence[str],
    now: datetime,
) -> None:
    """One transaction: drop members who left and segments no longer saved, add the new
    ones, stamp every refreshed row. Only changes are written: most members stay."""
    con.register("_segment_members", fresh)
    try:
        con.execute("BEGIN")
        try:
            con.execute(
                "DELETE FROM segment_members WHERE segment NOT IN (SELECT unnest(?::VARCHAR[]))",
                [list(saved)],
            )
            con.execute(
                "DELETE FROM segment_members WHERE segment IN (SELECT unnest(?::VARCHAR[])) "
                "AND (segment, person_id) NOT IN "
                "(SELECT (segment, person_id) FROM _segment_members)",
                [list(refreshed)],
            )
            con.execute(
                "INSERT INTO segment_members SELECT DISTINCT f.segment, f.person_id, ? "
                "FROM _segment_members f WHERE NOT EXISTS (SELECT 1 FROM segment_members m "
                "WHERE m.segment = f.segment AND m.person_id = f.person_id)",
                [now],
            )
            con.execute(
                "UPDATE segment_members SET refreshed_at = ? "
                "WHERE segment IN (SELECT unnest(?::VARCHAR[]))",
                [now, list(refreshed)],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister("_segment_members")
