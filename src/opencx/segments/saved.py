"""Saved segments (YAML documents in the store) and how their size changes over time.

    name: unhappy-regulars
    rule: purchases_90d >= 2 and last_nps <= 6
    description: Buy often, would not recommend us

Each refresh appends (time, size) to the segment's `segment_sizes` document, keeping
the newest `MAX_HISTORY` points: a year of daily refreshes is a few kilobytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import ibis.expr.types as ir
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from opencx.documents import parse_document
from opencx.errors import InvalidInput, NotFound
from opencx.segments.compile import rule_expression
from opencx.segments.evaluate import membership_expression, segment_sizes_now
from opencx.segments.features import features_expression
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
    at = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    for name, size in sizes.items():
        history = [
            {"at": p.at.isoformat(), "size": p.size} for p in segment_size_history(con, name)
        ]
        history.append({"at": at.isoformat(), "size": size})
        put_document(con, SIZES, name, yaml.safe_dump(history[-MAX_HISTORY:], sort_keys=False))
    return sizes


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
