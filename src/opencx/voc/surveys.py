"""Survey definitions: questions, what they measure, when to ask, and how often at most.

A survey is a YAML (or JSON) document:

    id: ces-contact
    name: After a service contact
    kind: transactional                 # or relationship (on a schedule), feedback (always open)
    touchpoint: call_ended@phone        # what it measures
    questions:
      - {id: ease, type: ces, text: "The company made it easy to handle my issue."}
      - {id: why, type: text, text: "What could we have done better?", required: false}
    trigger: {after: call_ended@phone, delay: 1h, channel: sms}
    recontact:
      show: once                        # once | until_answered | up_to (with max_times)
      wait: 14d                         # overrides the global waiting time between surveys
      rules: [{trait: plan, equals: business, wait: 30d}]
    audience: {survey_type: nps, min_score: 9}   # e.g. only promoters
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opencx.documents import document_yaml, parse_document
from opencx.durations import duration_field
from opencx.ingest import SCORE_RANGES
from opencx.store import list_documents, put_document, require_document
from opencx.types import CHANNELS

SURVEY = "survey"
QuestionType = Literal["nps", "csat", "ces", "single", "multiple", "text"]
SCORED = tuple(SCORE_RANGES)
DEFAULT_TEXT = {
    "nps": "How likely are you to recommend us to a friend or colleague?",
    "csat": "How satisfied are you with your experience?",
    "ces": "The company made it easy to handle my issue.",
}


class Question(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    type: QuestionType
    text: str = ""
    options: tuple[str, ...] = ()
    required: bool = True

    @model_validator(mode="after")
    def _check(self) -> Question:
        if self.type in ("single", "multiple") and len(self.options) < 2:
            raise ValueError(f"question {self.id!r} ({self.type}) needs at least two options")
        if not self.text and self.type in DEFAULT_TEXT:
            object.__setattr__(self, "text", DEFAULT_TEXT[self.type])
        if not self.text:
            raise ValueError(f"question {self.id!r} needs a text")
        return self

    @property
    def scale(self) -> tuple[int, int] | None:
        return SCORE_RANGES.get(self.type)


class Trigger(BaseModel):
    """Ask after a touchpoint (or event), `delay` later, on `channel`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    after: str
    delay: timedelta = timedelta(0)
    channel: str = "email"
    lookback: timedelta = timedelta(days=2)

    @field_validator("delay", "lookback", mode="before")
    @classmethod
    def _span(cls, value: object) -> object:
        return duration_field(value, "delay")

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if value not in CHANNELS:
            raise ValueError(f"must be one of {', '.join(CHANNELS)}")
        return value


class WaitRule(BaseModel):
    """People whose trait equals a value wait this long between surveys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trait: str
    equals: str
    wait: timedelta

    @field_validator("wait", mode="before")
    @classmethod
    def _span(cls, value: object) -> object:
        return duration_field(value, "wait")


class Recontact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    show: Literal["once", "until_answered", "up_to"] = "once"
    max_times: int = Field(default=1, ge=1, le=100)
    wait: timedelta | None = Field(
        default=None, description="Overrides the global waiting time (0 for none)."
    )
    rules: tuple[WaitRule, ...] = ()

    @field_validator("wait", mode="before")
    @classmethod
    def _span(cls, value: object) -> object:
        return None if value is None else duration_field(value, "wait")


class Audience(BaseModel):
    """Only people whose last answer of `survey_type` scored within [min_score, max_score]."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    survey_type: Literal["nps", "csat", "ces"]
    min_score: int | None = None
    max_score: int | None = None


class Brand(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "OpenCX"
    colour: str = Field(default="#2563eb", pattern=r"^#[0-9a-fA-F]{6}$")


class Survey(BaseModel):
    """One survey definition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["transactional", "relationship", "feedback"] = "transactional"
    touchpoint: str | None = None
    questions: tuple[Question, ...] = Field(min_length=1, max_length=20)
    trigger: Trigger | None = None
    schedule: Literal["monthly", "quarterly"] | None = None
    recontact: Recontact = Recontact()
    audience: Audience | None = None
    expires: timedelta = timedelta(days=14)
    brand: Brand = Brand()

    @field_validator("expires", mode="before")
    @classmethod
    def _span(cls, value: object) -> object:
        return duration_field(value, "expires")

    @model_validator(mode="after")
    def _check(self) -> Survey:
        ids = [q.id for q in self.questions]
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        if self.kind == "relationship" and self.schedule is None:
            raise ValueError("a relationship survey needs a schedule (monthly or quarterly)")
        return self

    @property
    def primary(self) -> Question | None:
        """The scored question (NPS, CSAT or CES) whose answer is the survey's score."""
        return next((q for q in self.questions if q.type in SCORED), None)

    @property
    def survey_type(self) -> str | None:
        primary = self.primary
        return primary.type if primary else None

    def to_yaml(self) -> str:
        return document_yaml(self)


def parse_survey(data: str | dict[str, Any]) -> Survey:
    """A survey from YAML text or a parsed mapping, with errors naming the field."""
    return parse_document(Survey, data, "survey", "a mapping with id, name and questions")


def save_survey(
    con: duckdb.DuckDBPyConnection, data: str | dict[str, Any], *, by: str | None = None
) -> Survey:
    survey = parse_survey(data)
    put_document(con, SURVEY, survey.id, survey.to_yaml(), by)
    return survey


def get_survey(con: duckdb.DuckDBPyConnection, survey_id: str) -> Survey:
    doc = require_document(con, SURVEY, survey_id, f"no survey {survey_id!r}", "defined")
    return parse_survey(doc.body)


def list_surveys(con: duckdb.DuckDBPyConnection) -> list[Survey]:
    return [parse_survey(d.body) for d in list_documents(con, SURVEY)]
