"""Survey answers as the KPIs read them: scored, in a period, grouped, summed in one pass."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias, overload

import ibis
import ibis.expr.types as ir

from opencx.errors import InvalidInput
from opencx.metrics.stats import AnswerStats
from opencx.warehouse import Warehouse, check_field_name

NO_GROUP = "(none)"
GROUPINGS = ("channel", "touchpoint", "survey_id", "segment", "trait:NAME")

Segments: TypeAlias = Mapping[str, Iterable[str]] | ir.Table
"""Who is in which segment: {segment: person ids} or an Ibis table (person_id, segment)."""


@overload
def utc(moment: datetime) -> datetime: ...
@overload
def utc(moment: None) -> None: ...
def utc(moment: datetime | None) -> datetime | None:
    """The same instant in UTC; naive datetimes are taken as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def check_period(start_at: datetime | None, end_at: datetime | None) -> None:
    if start_at is not None and end_at is not None and start_at >= end_at:
        raise InvalidInput(
            f"start_at ({start_at.isoformat()}) must be before end_at ({end_at.isoformat()})"
        )


def check_grouping(by: str | None) -> str | None:
    """None, channel, touchpoint, survey_id, segment or trait:NAME."""
    if by is None or by in GROUPINGS[:4]:
        return by
    kind, _, name = by.partition(":")
    if kind != "trait" or not name:
        raise InvalidInput(f"by must be one of {', '.join(GROUPINGS)} (or none), got {by!r}")
    check_field_name(name, "trait")
    return by


def scored_answers(warehouse: Warehouse, kinds: Collection[str]) -> ir.Table:
    """Answers with a score, of the given survey types, as (person_id, at, kind, score, …)."""
    t = warehouse.survey_answers()
    t = t.filter(t.survey_type.isin(list(kinds)) & t.score.notnull())
    return t.mutate(kind=t.survey_type)


def between(t: ir.Table, start_at: datetime | None, end_at: datetime | None) -> ir.Table:
    if start_at is not None:
        t = t.filter(t.at >= start_at)
    if end_at is not None:
        t = t.filter(t.at < end_at)
    return t


def membership_table(segments: Segments) -> ir.Table:
    """Segment membership as an Ibis table (pid, segment), one row per member and segment."""
    if isinstance(segments, ir.Table):
        missing = {"person_id", "segment"} - set(segments.columns)
        if missing:
            raise InvalidInput(
                f"the segments table needs person_id and segment columns, lacks {sorted(missing)}"
            )
        table = segments.select(pid=segments.person_id.cast("string"), segment=segments.segment)
    else:
        pids: list[str] = []
        names: list[str] = []
        for name, members in segments.items():
            for person in members:
                pids.append(str(person))
                names.append(str(name))
        table = ibis.memtable(
            {"pid": pids, "segment": names}, schema={"pid": "string", "segment": "string"}
        )
    # A person listed twice in a segment must not count twice.
    return table.distinct()


def with_group(
    t: ir.Table, by: str | None, warehouse: Warehouse, segments: Segments | None = None
) -> ir.Table:
    """`t` with a `group` column for the breakdown (`segment` keeps only members)."""
    columns = [t[c] for c in t.columns]
    if by is None:
        return t.mutate(group=ibis.literal(NO_GROUP))
    if by in ("channel", "touchpoint", "survey_id"):
        return t.mutate(group=t[by].fill_null(NO_GROUP))
    if by == "segment":
        if segments is None:
            raise InvalidInput("by='segment' needs the segment membership (segments=...)")
        members = membership_table(segments)
        return t.join(members, t.person_id == members.pid).select(*columns, group=members.segment)
    name = by.split(":", 1)[1]
    profiles = warehouse.profiles()
    traits = profiles.select(
        pid=profiles.person_id, trait=warehouse.json_text(profiles.traits, name)
    )
    joined = t.left_join(traits, t.person_id == traits.pid)
    return joined.select(*columns, group=traits.trait.fill_null(NO_GROUP))


def partitions(by: str | None) -> bool:
    """Whether every answer falls in exactly one group (so the groups add up to the whole)."""
    return by != "segment"


def stats_by(t: ir.Table, keys: Sequence[str]) -> ir.Table:
    """The sums behind every KPI, per `keys`: n, promoters, detractors, satisfied, total…"""
    score = t.score
    sums = {
        "n": t.count(),
        "promoters": (score >= 9).cast("int64").sum(),
        "detractors": (score <= 6).cast("int64").sum(),
        "satisfied": (score >= 4).cast("int64").sum(),
        "total": score.sum(),
        "total_sq": (score * score).sum(),
    }
    return t.group_by(list(keys)).aggregate(**sums) if keys else t.aggregate(**sums)


def collect_stats(t: ir.Table, keys: Sequence[str]) -> dict[tuple[Any, ...], AnswerStats]:
    """Execute `stats_by` and key the sums by the values of `keys`."""
    rows = stats_by(t, keys).to_pyarrow().to_pylist()
    return {tuple(r[k] for k in keys): stats_from_row(r) for r in rows}


def stats_from_row(row: Mapping[str, Any]) -> AnswerStats:
    return AnswerStats(
        n=int(row["n"]),
        promoters=int(row["promoters"] or 0),
        detractors=int(row["detractors"] or 0),
        satisfied=int(row["satisfied"] or 0),
        total=float(row["total"] or 0.0),
        total_sq=float(row["total_sq"] or 0.0),
    )


def total(stats: Iterable[AnswerStats]) -> AnswerStats:
    out = AnswerStats()
    for s in stats:
        out = out + s
    return out
