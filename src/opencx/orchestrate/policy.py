"""The contact policy: may this message go to this person now, and if not, why not.

`decide` is pure (no I/O): a proposal, the person's state, the policy and the time in,
a decision with its reasons out. The rules, in the order they are checked:

1. consent for the channel and purpose (a withdrawal stops even a transactional message);
2. transactional messages then go: caps, quiet hours and suppressions do not apply;
3. suppression while a case is open (marketing by default) and after a detractor answer
   (only service and transactional for `after_detractor.days`);
4. survey fatigue: a minimum gap between two survey invitations;
5. the one contact budget per person, across channels and kinds;
6. the per-channel caps;
7. quiet hours in the person's time zone: hold until they end (or until the person's
   next good moment after that, when known), or drop.

`arbitrate` decides a round of competing proposals for one person, highest priority
first; one that only fails because an earlier winner took the room is held or dropped
with rule "arbitration", naming the winner.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import duckdb
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from opencx.documents import document_yaml, parse_document
from opencx.durations import duration_field, format_duration
from opencx.orchestrate.consent import DEFAULT_CATEGORIES, consent_for
from opencx.orchestrate.moments import next_good_moment, zone
from opencx.orchestrate.state import Contact, PersonState, last_detractor
from opencx.store import get_document, put_document
from opencx.types import CHANNELS

Purpose = Literal["transactional", "service", "survey", "marketing"]
Outcome = Literal["send", "hold", "drop"]
Rule = Literal[
    "consent",
    "budget",
    "channel_cap",
    "quiet_hours",
    "survey_fatigue",
    "open_case",
    "after_detractor",
    "arbitration",
]
PURPOSES: tuple[str, ...] = ("transactional", "service", "survey", "marketing")
KIND = "policy"
NAME = "default"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ConsentRules(_Model):
    """What to assume without a record, and how Segment consent categories map to purposes."""

    defaults: dict[Purpose, Literal["opt_in", "opt_out"]] = Field(
        default_factory=lambda: {
            "transactional": "opt_out",
            "service": "opt_out",
            "survey": "opt_out",
            "marketing": "opt_in",
        }
    )
    categories: dict[str, Purpose] = Field(default_factory=lambda: dict(DEFAULT_CATEGORIES))

    def default_for(self, purpose: str) -> str:
        return self.defaults.get(purpose, "opt_in")  # type: ignore[call-overload]


class Cap(_Model):
    """At most `max` contacts per `per` (a rolling window)."""

    max: int = Field(ge=0, le=1000)
    per: timedelta = timedelta(days=7)

    @field_validator("per", mode="before")
    @classmethod
    def _per(cls, value: object) -> object:
        return duration_field(value, "per", zero=False)


class Budget(Cap):
    """The one budget per person: contacts of `purposes` on every channel together."""

    max: int = Field(default=3, ge=0, le=1000)
    purposes: tuple[Purpose, ...] = ("marketing", "service", "survey")
    when_full: Literal["drop", "hold"] = "drop"


class QuietHours(_Model):
    """No contact between `start` and `end`, local time (the window may cross midnight)."""

    start: time = time(21, 0)
    end: time = time(8, 0)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: object) -> object:
        # YAML 1.1 reads an unquoted 21:00 as the base-60 number 1260.
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            return time(value // 60, value % 60)
        return value

    @model_validator(mode="after")
    def _check(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ (use quiet_hours: null to turn it off)")
        return self

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class SurveyFatigue(_Model):
    """At least `min_gap` between two survey invitations (the VoC global waiting time)."""

    min_gap: timedelta = timedelta(days=7)

    @field_validator("min_gap", mode="before")
    @classmethod
    def _gap(cls, value: object) -> object:
        return duration_field(value, "min_gap", zero=False)


class OpenCase(_Model):
    """While a case is open, these purposes are not sent."""

    blocks: tuple[Purpose, ...] = ("marketing",)


class AfterDetractor(_Model):
    """For `days` after a detractor answer, only the `allow`ed purposes are sent."""

    days: timedelta = timedelta(days=14)
    allow: tuple[Purpose, ...] = ("service", "transactional")
    thresholds: dict[str, float] = Field(default_factory=lambda: {"nps": 6, "csat": 2})

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return timedelta(days=value)
        return duration_field(value, "days", zero=False)


class BestMoment(_Model):
    """When holding, wait for the person's next good hour after the hold ends, if they
    have responded at least `min_responses` times, looking at most `horizon` ahead."""

    enabled: bool = True
    min_responses: int = Field(default=3, ge=1)
    horizon: timedelta = timedelta(hours=12)

    @field_validator("horizon", mode="before")
    @classmethod
    def _horizon(cls, value: object) -> object:
        return duration_field(value, "horizon", zero=False)


class ContactPolicy(_Model):
    """The contact policy (YAML document kind "policy", name "default")."""

    default_timezone: str = "America/New_York"
    consent: ConsentRules = Field(default_factory=ConsentRules)
    budget: Budget = Field(default_factory=Budget)
    channel_caps: dict[str, Cap] = Field(
        default_factory=lambda: {"sms": Cap(max=2), "phone": Cap(max=1)}
    )
    quiet_hours: QuietHours | None = Field(default_factory=QuietHours)
    survey_fatigue: SurveyFatigue = Field(default_factory=SurveyFatigue)
    open_case: OpenCase = Field(default_factory=OpenCase)
    after_detractor: AfterDetractor = Field(default_factory=AfterDetractor)
    best_moment: BestMoment = Field(default_factory=BestMoment)

    @field_validator("channel_caps")
    @classmethod
    def _channels(cls, value: dict[str, Cap]) -> dict[str, Cap]:
        unknown = sorted(set(value) - set(CHANNELS))
        if unknown:
            raise ValueError(f"unknown channel {unknown[0]!r} (one of {', '.join(CHANNELS)})")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    def to_yaml(self) -> str:
        """The policy as YAML, durations written as `7d`, times as `21:00`."""
        return document_yaml(self, keep_empty=True)


def default_policy() -> ContactPolicy:
    return ContactPolicy()


def parse_policy(data: str | Mapping[str, Any]) -> ContactPolicy:
    """A policy from YAML (or a mapping); errors name the field.

    >>> parse_policy("budget: {max: 2, per: 3d}").budget.max
    2
    """
    return parse_document(ContactPolicy, data, "policy", "a mapping of policy settings")


def load_policy(con: duckdb.DuckDBPyConnection) -> ContactPolicy:
    """The saved policy, or the default one."""
    doc = get_document(con, KIND, NAME)
    return default_policy() if doc is None else parse_policy(doc.body)


def save_policy(con: duckdb.DuckDBPyConnection, text: str, by: str) -> ContactPolicy:
    """Validate and save the policy; the text is kept as written (comments and all)."""
    policy = parse_policy(text)
    put_document(con, KIND, NAME, text, by)
    return policy


@dataclass(frozen=True)
class Proposal:
    """A contact a trigger would like to make."""

    person_id: str
    action: str
    channel: str
    purpose: Purpose
    at: datetime  # UTC, when it would go out
    key: str  # decision idempotency key (per person), e.g. f"{trigger}:{cause}"
    priority: int = 0
    trigger: str | None = None
    cause: str | None = None
    on_quiet_hours: Literal["hold", "drop"] = "hold"


@dataclass(frozen=True)
class Decision:
    id: str
    proposal: Proposal
    outcome: Outcome
    reasons: tuple[str, ...]
    rule: str | None  # which rule held or dropped it; None when sent
    hold_until: datetime | None
    decided_at: datetime
    outbox_id: str | None = None


def new_decision_id() -> str:
    return f"dec_{secrets.token_hex(8)}"


def _day(at: datetime, tz: ZoneInfo) -> str:
    return f"{at.astimezone(tz):%m-%d}"


def _label(c: Contact) -> str:
    return "survey" if c.purpose == "survey" else c.channel


def _listed(contacts: Sequence[Contact], tz: ZoneInfo) -> str:
    return ", ".join(f"{_label(c)} {_day(c.at, tz)}" for c in contacts)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _window(per: timedelta) -> str:
    days = per.total_seconds() / 86400
    if days == int(days):
        return f"the last {_plural(int(days), 'day')}"
    return f"the last {format_duration(per)}"


def _ago(delta: timedelta) -> str:
    """`3d`, `5h` or `20m`: rounded down, as people say it."""
    if delta >= timedelta(days=1):
        return f"{delta.days}d"
    if delta >= timedelta(hours=1):
        return f"{int(delta.total_seconds() // 3600)}h"
    return f"{max(1, int(delta.total_seconds() // 60))}m"


@dataclass(frozen=True, slots=True)
class _Verdict:
    outcome: Outcome
    rule: str | None
    reason: str
    hold_until: datetime | None = None


def _consent(p: Proposal, state: PersonState, policy: ContactPolicy) -> _Verdict | None:
    """None when consent allows it; the reason goes in front of the others either way."""
    if p.purpose == "transactional":
        record = consent_for(state.consents, p.channel, "transactional")
        if record is not None and not record.granted:
            why = f"blocked: transactional on {p.channel} {record.describe()}"
            return _Verdict("drop", "consent", why)
        return None
    record = consent_for(state.consents, p.channel, p.purpose)
    if record is not None:
        if record.granted:
            return None
        why = f"blocked: {p.purpose} on {p.channel} {record.describe()}"
        return _Verdict("drop", "consent", why)
    if policy.consent.default_for(p.purpose) == "opt_in":
        why = f"blocked: no {p.purpose} consent on {p.channel} (opt-in needed, none recorded)"
        return _Verdict("drop", "consent", why)
    return None


def _consent_reason(p: Proposal, state: PersonState) -> str:
    record = consent_for(state.consents, p.channel, p.purpose)
    if record is not None:
        return f"consent: {p.purpose} on {p.channel} {record.describe()}"
    return f"consent: {p.purpose} on {p.channel} allowed unless withdrawn (no record)"


def _in_window(contacts: Sequence[Contact], ref: datetime, per: timedelta) -> list[Contact]:
    start = ref - per
    return [c for c in contacts if c.at > start]


def _full(
    counted: list[Contact],
    cap: int,
    per: timedelta,
    ref: datetime,
    tz: ZoneInfo,
    what: str,
    when_full: str,
    rule: str,
) -> _Verdict:
    listed = f": {_listed(counted, tz)}" if counted else ""
    why = f"blocked: {_plural(len(counted), what)} in {_window(per)}{listed}"
    if when_full == "hold" and cap > 0:
        # A slot frees when enough of the oldest counted contacts leave the window.
        freed = sorted(c.at for c in counted)[len(counted) - cap] + per
        return _Verdict("hold", rule, why, max(freed, ref))
    return _Verdict("drop", rule, why)


def _quiet_end(local: datetime, quiet: QuietHours, tz: ZoneInfo) -> datetime:
    """The UTC moment the quiet window containing `local` ends, DST-correct: the end is a
    wall-clock time on a calendar date, converted once the date is known."""
    day = local.date()
    if local.time() >= quiet.end and quiet.start > quiet.end:
        day = day + timedelta(days=1)  # evening part of a window crossing midnight
    wall = datetime.combine(day, quiet.end, tzinfo=tz)
    # A wall time inside a spring-forward gap does not exist: fold it forward.
    back = wall.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != wall.replace(tzinfo=None):
        wall = back
    return wall.astimezone(UTC)


def _checks(
    p: Proposal, state: PersonState, policy: ContactPolicy, tz: ZoneInfo
) -> tuple[_Verdict | None, list[str]]:
    """The first rule that stops the proposal (or None) and the reasons of those passed."""
    passed: list[str] = []
    ref = p.at
    stopped = _consent(p, state, policy)
    if stopped is not None:
        return stopped, passed
    passed.append(_consent_reason(p, state))
    if p.purpose == "transactional":
        passed.append("transactional: caps, quiet hours and suppressions do not apply")
        return None, passed
    if state.open_cases and p.purpose in policy.open_case.blocks:
        why = f"suppressed: {_plural(state.open_cases, 'open case')}; no {p.purpose} until resolved"
        return _Verdict("drop", "open_case", why), passed
    ad = policy.after_detractor
    detractor_at = (
        last_detractor(state.answers, ad.thresholds) if state.answers else state.last_detractor_at
    )
    if detractor_at is not None and p.purpose not in ad.allow and detractor_at > ref - ad.days:
        why = (
            f"suppressed: detractor answer on {_day(detractor_at, tz)}; only "
            f"{' and '.join(ad.allow)} messages for {format_duration(ad.days)}"
        )
        return _Verdict("drop", "after_detractor", why), passed
    if p.purpose == "survey" and state.last_survey_at is not None:
        gap = policy.survey_fatigue.min_gap
        if state.last_survey_at > ref - gap:
            ago = ref - state.last_survey_at
            why = (
                f"blocked: last survey invitation {_day(state.last_survey_at, tz)} "
                f"({_ago(ago)} ago); at least "
                f"{format_duration(gap)} between surveys"
            )
            return _Verdict("drop", "survey_fatigue", why), passed
    budget = policy.budget
    if p.purpose in budget.purposes:
        counted = [
            c for c in _in_window(state.contacts, ref, budget.per) if c.purpose in budget.purposes
        ]
        if len(counted) >= budget.max:
            verdict = _full(
                counted, budget.max, budget.per, ref, tz, "contact", budget.when_full, "budget"
            )
            return verdict, passed
        passed.append(f"budget: {len(counted)} of {budget.max} contacts in {_window(budget.per)}")
    cap = policy.channel_caps.get(p.channel)
    if cap is not None:
        counted = [
            c
            for c in _in_window(state.contacts, ref, cap.per)
            if c.channel == p.channel and c.purpose != "transactional"
        ]
        if len(counted) >= cap.max:
            what = f"{p.channel} contact"
            return _full(
                counted, cap.max, cap.per, ref, tz, what, budget.when_full, "channel_cap"
            ), passed
        passed.append(f"{p.channel} cap: {len(counted)} of {cap.max} in {_window(cap.per)}")
    quiet = policy.quiet_hours
    if quiet is not None:
        local = p.at.astimezone(tz)
        span = f"{quiet.start:%H:%M}-{quiet.end:%H:%M}"
        if quiet.contains(local.time()):
            where = f"{local:%H:%M} local ({tz.key})"
            if p.on_quiet_hours == "drop":
                return _Verdict("drop", "quiet_hours", f"quiet hours {span}: {where}"), passed
            until = _quiet_end(local, quiet, tz)
            why = f"quiet hours {span}: {where}; held until {until.astimezone(tz):%H:%M %m-%d}"
            bm = policy.best_moment
            if bm.enabled:
                better = next_good_moment(
                    state.responses, tz, until, horizon=bm.horizon, min_responses=bm.min_responses
                )
                if (
                    better is not None
                    and better > until
                    and not quiet.contains(better.astimezone(tz).time())
                ):
                    why = (
                        f"quiet hours {span}: {where}; held until "
                        f"{better.astimezone(tz):%H:%M %m-%d}, their best moment after "
                        f"{quiet.end:%H:%M}"
                    )
                    until = better
            return _Verdict("hold", "quiet_hours", why, until), passed
        passed.append(f"quiet hours {span}: {local:%H:%M} local ({tz.key}) is outside")
    return None, passed


def decide(
    proposal: Proposal, state: PersonState, policy: ContactPolicy, now: datetime
) -> Decision:
    """Send, hold or drop `proposal`, with every reason (pure: no I/O).

    >>> p = Proposal("p1", "welcome", "email", "marketing", datetime(2026, 3, 2, 15, tzinfo=UTC),
    ...              "welcome:1")
    >>> d = decide(p, PersonState("p1"), default_policy(), p.at)
    >>> d.outcome, d.rule
    ('drop', 'consent')
    """
    tz = zone(state.timezone, policy.default_timezone)
    stopped, passed = _checks(proposal, state, policy, tz)
    if stopped is None:
        return Decision(new_decision_id(), proposal, "send", tuple(passed), None, None, now)
    reasons = (stopped.reason, *passed)
    return Decision(
        new_decision_id(), proposal, stopped.outcome, reasons, stopped.rule, stopped.hold_until, now
    )


def order_proposals(proposals: Sequence[Proposal]) -> list[Proposal]:
    """Highest priority first; then the earliest, then by key (a stable, total order)."""
    return sorted(proposals, key=lambda p: (-p.priority, p.at, p.key))


_ROOM_RULES = frozenset({"budget", "channel_cap", "survey_fatigue"})


def with_contact(state: PersonState, decision: Decision) -> PersonState:
    """The state once `decision` (a send) is counted."""
    p = decision.proposal
    contact = Contact(max(p.at, decision.decided_at), p.channel, p.purpose, p.action)
    last_survey = state.last_survey_at
    if p.purpose == "survey":
        last_survey = max(last_survey, contact.at) if last_survey else contact.at
    return replace(state, contacts=(*state.contacts, contact), last_survey_at=last_survey)


def arbitrate(
    proposals: Sequence[Proposal], state: PersonState, policy: ContactPolicy, now: datetime
) -> list[Decision]:
    """Decide competing proposals for one person, highest priority first; each winner
    counts against the budgets of the ones after it. A proposal that would have fitted
    but for this round's winners gets rule "arbitration" and names them."""
    before = state
    winners: list[Decision] = []
    out: list[Decision] = []
    for p in order_proposals(proposals):
        d = decide(p, state, policy, now)
        if d.outcome != "send" and winners and d.rule in _ROOM_RULES:
            alone = decide(p, before, policy, now)
            if alone.outcome == "send" or alone.rule != d.rule:
                names = ", ".join(
                    f"{w.proposal.action} (priority {w.proposal.priority})" for w in winners
                )
                lead = f"arbitration: lost to {names}; {d.reasons[0]}"
                d = replace(d, rule="arbitration", reasons=(lead, *d.reasons[1:]))
        if d.outcome == "send":
            winners.append(d)
            state = with_contact(state, d)
        out.append(d)
    return out
