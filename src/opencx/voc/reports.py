"""What customers say, summarised: scores over time and by group, response rates, verbatims.

Every answer is a `Survey Responded` event, so these are Ibis expressions over the log
like the journey analytics: NPS = % promoters (9–10) − % detractors (0–6); CSAT = % of
4–5 answers; CES = mean agreement (1–7) that "the company made it easy".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from opencx.errors import InvalidInput
from opencx.warehouse import Warehouse

ScoreType = Literal["nps", "csat", "ces"]
Grain = Literal["week", "month"]


@dataclass(frozen=True)
class ScorePoint:
    group: str
    responses: int
    value: float


@dataclass(frozen=True)
class Verbatim:
    person_id: str
    at: datetime
    survey_id: str | None
    survey_type: str | None
    score: int | None
    touchpoint: str | None
    channel: str
    text: str
    message_id: str


def answers(warehouse: Warehouse) -> ir.Table:
    """Every survey answer: person, time, channel, survey, type, score, touchpoint, comment."""
    return warehouse.survey_answers()


def _value(kind: str, t: ir.Table) -> ir.FloatingValue:
    if kind == "nps":
        promoters = (t.score >= 9).cast("float64").mean()
        detractors = (t.score <= 6).cast("float64").mean()
        return (promoters - detractors) * 100
    if kind == "csat":
        return (t.score >= 4).cast("float64").mean() * 100
    return t.score.mean()


def _check(kind: str) -> str:
    if kind not in ("nps", "csat", "ces"):
        raise InvalidInput(f"score type must be nps, csat or ces, got {kind!r}")
    return kind


def score_by(
    warehouse: Warehouse,
    kind: ScoreType,
    by: Literal["channel", "touchpoint", "survey_id"] = "touchpoint",
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> list[ScorePoint]:
    """The score per channel (answered on), touchpoint (measured) or survey."""
    t = answers(warehouse)
    t = t.filter((t.survey_type == _check(kind)) & t.score.notnull())
    if start_at is not None:
        t = t.filter(t.at >= start_at)
    if end_at is not None:
        t = t.filter(t.at < end_at)
    grouped = t.mutate(group=t[by].fill_null("(none)"))
    rows = (
        grouped.group_by("group")
        .aggregate(responses=grouped.count(), value=_value(kind, grouped))
        .order_by([ibis.desc("responses"), "group"])
        .to_pyarrow()
        .to_pylist()
    )
    return [ScorePoint(r["group"], int(r["responses"]), float(r["value"])) for r in rows]


def score_trend(warehouse: Warehouse, kind: ScoreType, grain: Grain = "week") -> list[ScorePoint]:
    """The score per week (Monday) or month, oldest first; `group` is the ISO date."""
    t = answers(warehouse)
    t = t.filter((t.survey_type == _check(kind)) & t.score.notnull())
    t = t.mutate(period=t.at.truncate("W" if grain == "week" else "M"))
    rows = (
        t.group_by("period")
        .aggregate(responses=t.count(), value=_value(kind, t))
        .order_by("period")
        .to_pyarrow()
        .to_pylist()
    )
    out = []
    for r in rows:
        day = r["period"].date() if isinstance(r["period"], datetime) else r["period"]
        out.append(ScorePoint(date.isoformat(day), int(r["responses"]), float(r["value"])))
    return out


@dataclass(frozen=True)
class ResponseRate:
    survey_id: str
    invited: int
    answered: int

    @property
    def rate(self) -> float | None:
        return self.answered / self.invited if self.invited else None


def response_rates(warehouse: Warehouse) -> list[ResponseRate]:
    """Invitations and answers per survey, from the log (imports included)."""
    events = warehouse.events()
    rows = events.filter(events.event.isin(["Survey Invited", "Survey Responded"]))
    rows = rows.mutate(survey_id=warehouse.json_text(rows.properties, "survey_id"))
    table = (
        rows.group_by("survey_id")
        .aggregate(
            invited=(rows.event == "Survey Invited").cast("int64").sum(),
            answered=(rows.event == "Survey Responded").cast("int64").sum(),
        )
        .order_by([ibis.desc("invited"), "survey_id"])  # ties in the same order everywhere
        .to_pyarrow()
        .to_pylist()
    )
    return [
        ResponseRate(r["survey_id"] or "(none)", int(r["invited"]), int(r["answered"]))
        for r in table
    ]


def verbatims(
    warehouse: Warehouse,
    *,
    search: str | None = None,
    survey_id: str | None = None,
    touchpoint: str | None = None,
    max_score: float | None = None,
    limit: int = 50,
) -> list[Verbatim]:
    """Answers with a comment, newest first, filtered."""
    t = answers(warehouse)
    t = t.filter(t.comment.notnull() & (t.comment.length() > 0))
    if search:
        t = t.filter(t.comment.lower().contains(search.lower()))
    if survey_id:
        t = t.filter(t.survey_id == survey_id)
    if touchpoint:
        t = t.filter(t.touchpoint == touchpoint)
    if max_score is not None:
        t = t.filter(t.score <= max_score)
    rows = t.order_by([ibis.desc("at"), "message_id"]).limit(limit).to_pyarrow().to_pylist()
    return [_verbatim(r) for r in rows]


def answers_of(warehouse: Warehouse, person_id: str, *, limit: int = 10) -> list[Verbatim]:
    """A person's latest survey answers (with or without a comment), newest first."""
    t = answers(warehouse)
    t = t.filter(t.person_id == person_id)
    rows = t.order_by([ibis.desc("at"), "message_id"]).limit(limit).to_pyarrow().to_pylist()
    return [_verbatim(r) for r in rows]


def _verbatim(r: dict[str, Any]) -> Verbatim:
    score = None if r["score"] is None else int(r["score"])
    return Verbatim(
        person_id=r["person_id"],
        at=r["at"],
        survey_id=r["survey_id"],
        survey_type=r["survey_type"],
        score=score,
        touchpoint=r["touchpoint"],
        channel=r["channel"],
        text=r["comment"] or "",
        message_id=r["message_id"],
    )


VERBATIM_FIELDS: tuple[str, ...] = ("comment", "transcript", "note")


def all_verbatims(warehouse: Warehouse, *, limit: int = 5000) -> list[Verbatim]:
    """Every text customers or staff wrote: survey comments, chat transcripts, agent notes
    (any event with a `comment`, `transcript` or `note` property), newest first."""
    events = warehouse.events()
    text = ibis.coalesce(*(warehouse.json_text(events.properties, f) for f in VERBATIM_FIELDS))
    rows = events.mutate(
        text=text,
        survey_id=warehouse.json_text(events.properties, "survey_id"),
        survey_type=warehouse.json_text(events.properties, "survey_type").lower(),
        score=warehouse.json_text(events.properties, "score").cast("float64"),
        touchpoint=warehouse.json_text(events.properties, "touchpoint"),
    )
    rows = rows.filter(rows.text.notnull() & (rows.text.length() > 0))
    picked = rows.order_by([ibis.desc("timestamp"), "message_id"]).limit(limit)
    return [
        _verbatim({**r, "at": r["timestamp"], "comment": r["text"]})
        for r in picked.to_pyarrow().to_pylist()
    ]
