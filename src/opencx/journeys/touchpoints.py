"""The touchpoint model: which events are which touchpoint, on which channel, in which stage.

A touchpoint is one thing a customer does or meets on one channel ("Password Reset
Started" in the app). The model is a YAML document; a default is inferred from the
log: every track event becomes a touchpoint per channel it occurs on (page and screen
views only for channels that send no track events, since SDKs usually send both for one
action), with a lifecycle stage guessed from its name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Literal

import ibis
import ibis.expr.types as ir
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from opencx.documents import parse_document
from opencx.errors import InvalidInput
from opencx.types import CHANNELS
from opencx.warehouse import Warehouse

Stage = Literal[
    "awareness",
    "consideration",
    "purchase",
    "onboarding",
    "usage",
    "service",
    "loyalty",
    "advocacy",
]
STAGES: tuple[str, ...] = Stage.__args__  # type: ignore[attr-defined]
ASSISTED_CHANNELS: tuple[str, ...] = ("phone", "chat", "store")
DIGITAL_CHANNELS: tuple[str, ...] = ("web", "app")

# First match wins; the names are those of Segment's semantic events and their kin.
_STAGE_RULES: tuple[tuple[str, str], ...] = (
    (r"survey|review|referr|shared|recommend", "advocacy"),
    (r"password|support|help|call|chat|ticket|case|complain|store visit|contact", "service"),
    (r"cancel|churn|renew|upgrade|downgrade|plan changed|loyalty|reward", "loyalty"),
    (r"sign(ed)? ?up|register|account created|activat|install|onboard|welcome", "onboarding"),
    (r"order completed|checkout|cart|product added|purchase|payment info", "purchase"),
    (r"product|plan|compare|search|pric|coverage|deal|catalog|list viewed", "consideration"),
    (r"email|sms|push|ad |campaign|landing|promotion|notification", "awareness"),
)
_BRAND_INITIATED = re.compile(r"\b(sent|delivered|invited)\b", re.IGNORECASE)
_ID = re.compile(r"[a-z0-9][a-z0-9_.@-]{0,99}")


def guess_stage(event: str) -> str:
    """The lifecycle stage an event name suggests (`usage` when nothing fits)."""
    name = event.lower()
    for pattern, stage in _STAGE_RULES:
        if re.search(pattern, name):
            return stage
    return "usage"


_SLUG_MAX = 80  # room for "@channel" inside an id's 100 characters


def touchpoint_id(event: str, channel: str | None) -> str:
    """`password_reset_started@app`: readable, stable, safe in URLs and YAML. A very long
    event name is cut and keeps a short hash of the whole, so two long names that start
    alike stay apart."""
    slug = re.sub(r"[^a-z0-9]+", "_", event.lower()).strip("_") or "event"
    if len(slug) > _SLUG_MAX:
        digest = hashlib.blake2b(event.encode(), digest_size=4).hexdigest()
        slug = f"{slug[: _SLUG_MAX - 9].rstrip('_')}_{digest}"
    return f"{slug}@{channel}" if channel else slug


class Touchpoint(BaseModel):
    """One touchpoint: the events it stands for and where it sits in the lifecycle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(description="Stable id, e.g. password_reset_started@app.")
    name: str = Field(description="What analysts call it.")
    event: str = Field(description="Track event name, or page/screen name.")
    channel: str | None = Field(default=None, description="Only on this channel (None: any).")
    type: Literal["track", "page", "screen"] = "track"
    stage: Stage = "usage"
    initiated_by: Literal["customer", "brand"] = "customer"

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError("must be lower-case letters, digits, '_', '.', '@' or '-'")
        return value

    @field_validator("channel")
    @classmethod
    def _check_channel(cls, value: str | None) -> str | None:
        if value is not None and value not in CHANNELS:
            raise ValueError(f"must be one of {', '.join(CHANNELS)}")
        return value

    @property
    def assisted(self) -> bool:
        """A contact with a person of the brand (call, chat, store visit)."""
        return self.channel in ASSISTED_CHANNELS

    def matches(self, events: ir.Table) -> ir.BooleanValue:
        cond = (events.type == self.type) & (events.event == self.event)
        if self.channel is not None:
            cond &= events.channel == self.channel
        return cond


class TouchpointModel(BaseModel):
    """The whole model; the order of `touchpoints` decides when two would match one event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    touchpoints: tuple[Touchpoint, ...] = ()

    @field_validator("touchpoints")
    @classmethod
    def _unique(cls, value: tuple[Touchpoint, ...]) -> tuple[Touchpoint, ...]:
        seen: set[str] = set()
        for tp in value:
            if tp.id in seen:
                raise ValueError(f"touchpoint id {tp.id!r} is used twice")
            seen.add(tp.id)
        return value

    def get(self, touchpoint: str) -> Touchpoint:
        for tp in self.touchpoints:
            if tp.id == touchpoint:
                return tp
        known = ", ".join(tp.id for tp in self.touchpoints[:12])
        raise InvalidInput(f"unknown touchpoint {touchpoint!r}; known ones include: {known}")

    def by_id(self) -> dict[str, Touchpoint]:
        return {tp.id: tp for tp in self.touchpoints}

    def label(self, events: ir.Table) -> ir.Table:
        """`events` with `touchpoint` and `stage` columns; rows no touchpoint matches dropped."""
        if not self.touchpoints:
            raise InvalidInput("the touchpoint model is empty: infer one or load a YAML file")
        tp_cases = [(tp.matches(events), tp.id) for tp in self.touchpoints]
        stage_cases = [(tp.matches(events), tp.stage) for tp in self.touchpoints]
        labelled = events.mutate(
            touchpoint=ibis.cases(*tp_cases, else_=ibis.null("string")),
            stage=ibis.cases(*stage_cases, else_=ibis.null("string")),
        )
        return labelled.filter(labelled.touchpoint.notnull())

    def to_yaml(self) -> str:
        body = {"touchpoints": [tp.model_dump(exclude_defaults=False) for tp in self.touchpoints]}
        return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def parse_touchpoints(text: str) -> TouchpointModel:
    """A touchpoint model from YAML, with errors naming the entry and field."""
    return parse_document(
        TouchpointModel, text, "touchpoint model", "a mapping with a 'touchpoints' list"
    )


def infer_touchpoints(warehouse: Warehouse, *, min_events: int = 1) -> TouchpointModel:
    """A default model from what the log holds (see the module docstring for the rules)."""
    events = warehouse.events()
    named = events.filter(events.type.isin(["track", "page", "screen"]) & events.event.notnull())
    seen = (
        named.group_by(["type", "event", "channel"])
        .aggregate(n=named.count())
        .filter(lambda t: t.n >= min_events)
        .order_by([ibis.desc("n"), "type", "event", "channel"])
        .to_pyarrow()
        .to_pylist()
    )
    return model_from_counts((r["type"], r["event"], r["channel"]) for r in seen)


def model_from_counts(seen: Iterable[tuple[str, str, str]]) -> TouchpointModel:
    """The default model for (type, event, channel) triples, most frequent first."""
    rows = list(seen)
    tracked = {channel for kind, _, channel in rows if kind == "track"}
    touchpoints: list[Touchpoint] = []
    for kind, event, channel in rows:
        if kind != "track" and channel in tracked:
            continue
        base = touchpoint_id(event, channel)
        tp_id = base if kind == "track" else f"{kind}.{base}"
        touchpoints.append(
            Touchpoint(
                id=tp_id,
                name=f"{event} ({channel})" if kind == "track" else f"{event} {kind} ({channel})",
                event=event,
                channel=channel,
                type=kind,  # type: ignore[arg-type]
                stage=guess_stage(event),  # type: ignore[arg-type]
                initiated_by="brand" if _BRAND_INITIATED.search(event) else "customer",
            )
        )
    return TouchpointModel(touchpoints=tuple(touchpoints))
