"""The action catalogue: what the brand can do for a customer, where, why, and when not to.

The catalogue is a YAML document (kind `actions`, name `default`) the CX team edits; when
none is saved, the generic one shipped next to this module (`default_actions.yaml`) is used.

    failure_touchpoints: [checkout_abandoned@web]   # flagged as failures besides *Failed*
    defaults: {first_name: "the customer"}           # placeholder fallbacks
    actions:
      - id: upgrade-offer
        title: Offer the Unlimited upgrade
        kind: offer
        channels: [phone, store, web, app]
        purpose: marketing
        script: "{first_name} is on {plan}: offer Unlimited for $60 a month."
        when: [{trait: plan, in: [Basic 5GB, Plus 20GB]}]
        audience: loyal-customers                    # a saved segment (optional)
        unless:
          - {open_case: "*", note: do not offer the upgrade}
          - {answer: nps, max: 6, within: 14d, note: do not offer the upgrade}
        value: 50

Scripts are filled from the person's traits with plain `{name}` placeholders only: no
attribute access, indexing, conversions or format specs, so a script can never run code
or reach into objects, and a trait's own braces are never expanded.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from typing import Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opencx.documents import parse_document
from opencx.durations import parse_duration
from opencx.errors import InvalidInput
from opencx.store import get_document, put_document
from opencx.types import CHANNELS

ACTIONS = "actions"
DEFAULT = "default"
OUTBOUND_CHANNELS: tuple[str, ...] = ("sms", "email")
"""Channels where an action contacts the person (the contact policy is asked first)."""
ActionKind = Literal["offer", "service", "apology", "survey", "info", "retention", "task"]
Purpose = Literal["transactional", "service", "survey", "marketing"]
SIGNALS: tuple[str, ...] = (
    "failed",
    "event",
    "open_case",
    "answer",
    "trait",
    "computed",
    "segment",
)
EVENT_WINDOW = timedelta(days=30)
"""How far back NBA reads a person's events (conditions on events cannot look further)."""
ANSWER_WINDOW = timedelta(days=90)
"""How far back NBA reads survey answers (and the default `within` of an answer)."""
Scalar = str | int | float | bool

_PLACEHOLDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PATTERN = re.compile(r"^[a-z0-9_*?]+(@[a-z*?]+)?$")
_FORMATTER = string.Formatter()
_QUALIFIERS: dict[str, tuple[str, ...]] = {
    "within": ("failed", "event", "open_case", "answer"),
    "not_followed_by": ("failed", "event"),
    "rule": ("open_case",),
    "min": ("answer", "trait", "computed"),
    "max": ("answer", "trait", "computed"),
    "equals": ("trait", "computed"),
    "in_": ("trait", "computed"),
}


def placeholders(text: str) -> tuple[str, ...]:
    """The placeholder names in a script, or `ValueError` saying what is not allowed.

    >>> placeholders("Hi {first_name}, your plan is {plan} {{not this}}")
    ('first_name', 'plan')
    """
    try:
        parts = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ or }}}} for a literal brace)") from None
    names: list[str] = []
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not _PLACEHOLDER.match(name) or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            raise ValueError(
                f"placeholder {shown} is not allowed: use plain names such as {{first_name}} "
                "(letters, digits and _; no dots, brackets, ! or :)"
            )
        names.append(name)
    return tuple(names)


def render_script(text: str, values: Mapping[str, object], defaults: Mapping[str, str]) -> str:
    """The script with each `{name}` replaced by the value's text (never evaluated).

    A missing value falls back to `defaults`, then to `[name]` so the agent sees the gap.

    >>> render_script("Hi {first_name} ({x})", {"first_name": "{plan}"}, {})
    'Hi {plan} ([x])'
    """
    out: list[str] = []
    for literal, name, _spec, _conversion in _FORMATTER.parse(text):
        out.append(literal)
        if name is None:
            continue
        value = values.get(name)
        if value is None or value == "":
            out.append(defaults.get(name, f"[{name}]"))
        else:
            out.append(str(value))
    return "".join(out)


def _pattern(value: str | None) -> str | None:
    if value is not None and not _PATTERN.match(value):
        raise ValueError(
            f"{value!r} must be a touchpoint id or pattern such as password_reset_failed@app, "
            "password_reset_*@* or * (lower case, * and ? as wildcards)"
        )
    return value


class Condition(BaseModel):
    """One signal about the person: a condition (`when`) or a suppression (`unless`).

    Exactly one of `failed`, `event`, `open_case`, `answer`, `trait`, `computed`,
    `segment`, with the qualifiers that fit it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    failed: str | None = Field(default=None, description="A failure on matching touchpoints.")
    event: str | None = Field(default=None, description="Any event on matching touchpoints.")
    open_case: str | None = Field(default=None, description="An open case on a touchpoint.")
    answer: Literal["nps", "csat", "ces"] | None = Field(default=None)
    trait: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    computed: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    segment: str | None = Field(default=None, min_length=1, max_length=100)
    within: timedelta | None = None
    not_followed_by: str | None = None
    rule: str | None = Field(default=None, description="open_case: only cases of this rule.")
    min: float | None = None
    max: float | None = None
    equals: Scalar | None = None
    in_: tuple[Scalar, ...] | None = Field(default=None, alias="in", min_length=1)
    note: str | None = Field(
        default=None, max_length=200, description="What the agent is told, e.g. 'do not offer'."
    )

    @field_validator("within", mode="before")
    @classmethod
    def _within(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse_duration(value, field="within")
            except InvalidInput as exc:
                raise ValueError(exc.message) from None
        return value

    @field_validator("failed", "event", "open_case", "not_followed_by")
    @classmethod
    def _touchpoint(cls, value: str | None) -> str | None:
        return _pattern(value)

    @model_validator(mode="after")
    def _check(self) -> Condition:
        given = [k for k in SIGNALS if getattr(self, k) is not None]
        if len(given) != 1:
            got = " and ".join(given) if given else "none"
            raise ValueError(f"needs exactly one of {', '.join(SIGNALS)} (got {got})")
        signal = given[0]
        for qualifier, fits in _QUALIFIERS.items():
            if getattr(self, qualifier) is not None and signal not in fits:
                shown = "in" if qualifier == "in_" else qualifier
                raise ValueError(f"{shown} does not apply to {signal} (only to {', '.join(fits)})")
        limit = EVENT_WINDOW if signal in ("failed", "event") else ANSWER_WINDOW
        if self.within is not None and signal != "open_case" and self.within > limit:
            raise ValueError(f"within must be at most {limit.days}d for {signal}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is more than max {self.max}")
        return self

    @property
    def signal(self) -> str:
        return next(k for k in SIGNALS if getattr(self, k) is not None)

    @property
    def window(self) -> timedelta | None:
        """How recent the signal must be (None: any age NBA reads)."""
        if self.within is not None:
            return self.within
        if self.signal in ("failed", "event"):
            return EVENT_WINDOW
        if self.signal == "answer":
            return ANSWER_WINDOW
        return None


class Action(BaseModel):
    """Something the brand can do or say, on some channels, when the signals call for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    kind: ActionKind
    channels: tuple[str, ...] = Field(min_length=1)
    purpose: Purpose
    script: str = Field(min_length=1, max_length=2000)
    sends: str | None = Field(
        default=None, description="The outbound channel the action contacts the person on."
    )
    when: tuple[Condition, ...] = ()
    audience: str | None = Field(default=None, min_length=1, max_length=100)
    unless: tuple[Condition, ...] = ()
    value: float = Field(default=50, ge=0, le=100)

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for channel in value:
            if channel not in CHANNELS:
                raise ValueError(f"{channel!r} is not a channel (one of {', '.join(CHANNELS)})")
        if len(set(value)) != len(value):
            raise ValueError("lists a channel twice")
        return value

    @field_validator("sends")
    @classmethod
    def _sends(cls, value: str | None) -> str | None:
        if value is not None and value not in OUTBOUND_CHANNELS:
            raise ValueError(f"must be one of {', '.join(OUTBOUND_CHANNELS)}")
        return value

    @field_validator("script", "title")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        placeholders(value)
        return value

    def outbound_channel(self, shown_on: str) -> str | None:
        """The channel the person is contacted on when this is done on `shown_on`."""
        if self.sends is not None:
            return self.sends
        return shown_on if shown_on in OUTBOUND_CHANNELS else None


class ActionCatalogue(BaseModel):
    """Every action the brand can take, plus what counts as a failure and script fallbacks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actions: tuple[Action, ...]
    failure_touchpoints: tuple[str, ...] = ()
    defaults: dict[str, str] = Field(default_factory=dict)

    @field_validator("failure_touchpoints")
    @classmethod
    def _failures(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            _pattern(pattern)
        return value

    @model_validator(mode="after")
    def _unique(self) -> ActionCatalogue:
        if not self.actions:  # checked here: a length check would also flag invalid items
            raise ValueError("actions must list at least one action")
        seen: dict[str, int] = {}
        for index, action in enumerate(self.actions):
            if action.id in seen:
                raise ValueError(
                    f"actions.{index}.id {action.id!r} is used twice "
                    f"(actions.{seen[action.id]} has it too)"
                )
            seen[action.id] = index
        return self

    def action(self, action_id: str) -> Action:
        for candidate in self.actions:
            if candidate.id == action_id:
                return candidate
        known = ", ".join(a.id for a in self.actions)
        raise InvalidInput(f"action {action_id!r} is not in the catalogue (known: {known})")

    def for_channel(self, channel: str | None) -> tuple[Action, ...]:
        """The actions that can be shown or done on `channel` (all of them for None)."""
        if channel is None:
            return self.actions
        return tuple(a for a in self.actions if channel in a.channels)


@lru_cache(maxsize=16)
def parse_actions(text: str) -> ActionCatalogue:
    """An action catalogue from YAML, with errors naming the field (`actions.2.purpose: ...`).

    Parsed catalogues are immutable and cached by their text, so NBA pays for YAML once.
    """
    return parse_document(
        ActionCatalogue, text, "action catalogue", "a mapping with a list of actions"
    )


def default_actions_text() -> str:
    """The generic catalogue shipped with OpenCX."""
    return resources.files("opencx.orchestrate").joinpath("default_actions.yaml").read_text()


def load_actions(con: duckdb.DuckDBPyConnection) -> ActionCatalogue:
    """The saved catalogue, or the generic default when none was saved."""
    doc = get_document(con, ACTIONS, DEFAULT)
    return parse_actions(doc.body if doc is not None else default_actions_text())


def save_actions(
    con: duckdb.DuckDBPyConnection, text: str, by: str | None = None
) -> ActionCatalogue:
    """Validate and keep the catalogue (the YAML as written, comments included)."""
    catalogue = parse_actions(text)
    put_document(con, ACTIONS, DEFAULT, text, by)
    return catalogue
