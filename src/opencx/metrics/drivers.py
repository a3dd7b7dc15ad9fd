"""Key-driver analysis: which touchpoints, effort signals, themes and traits move an outcome.

The unit is a person: their latest answer in the period (NPS score, "low NPS" = a
detractor 0–6, or CSAT score), or a business outcome given per person. Each candidate
driver is something measured *before* that answer:

- **touchpoint** T: the person met T in the `lookback` (90 days) before answering. The
  feedback loop itself (`Survey …` and `Case …` events) is left out: it follows answers;
- **effort**: they had an assisted contact in the lookback that was a repeat contact, a
  channel hop, a re-identification or slow to resolve (`opencx.metrics.effort`), and, per
  digital flow, a channel hop *after* it ("channel hop after Password Reset Started
  (app)");
- **theme**: the person is tagged with a theme (optional input, e.g. from their comments);
- **trait**: a profile trait (optional input): numbers as they are (missing values take
  the mean), true/false as 1/0 (missing: false), text as one indicator per value.

Drivers that at least `min_people` people have and `min_people` lack are candidates; an
indicator that duplicates an earlier one (|r| ≥ 0.95, like "Call Started" and "Call
Ended") is folded into it and named in its `aliases`. The steps of a flow ("Password
Reset Started", "... Completed") stay apart: held against each other, "started" measures
starting *without* completing, which is often the point. When there are more than
`max_drivers` candidates, the ones most associated with the outcome one at a time enter.

One ordinary least-squares regression of the outcome on every kept driver (a linear
probability model for low NPS) gives each driver's **importance**: its standardised
coefficient β = b·sd(x)/sd(y), the change in the outcome, in standard deviations, for
one standard deviation of the driver with the other drivers held equal; positive raises
the outcome (for low NPS: raises the chance of a detractor). Its p-value is the t-test
of b with heteroskedasticity-robust (HC3) standard errors, and a driver is
**significant** when its Holm-corrected p-value, over every candidate considered, is
below `alpha` (0.05). **Performance** is the share of people with the driver (the mean,
for a numeric trait). R² is the model's. Drivers come most positive first: for low NPS
what raises the chance of a detractor most; for an NPS or CSAT score, what lowers it is
last.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

import ibis
import ibis.expr.types as ir
import numpy as np
from numpy.typing import NDArray
from scipy import linalg as _linalg
from scipy import stats as _dist

from opencx.durations import format_duration, parse_duration
from opencx.errors import InvalidInput, NotFound
from opencx.journeys import TouchpointModel
from opencx.metrics._answers import check_period, scored_answers, utc
from opencx.metrics.effort import SIGNALS, EffortRules, assisted_contacts
from opencx.warehouse import Warehouse, check_field_name

OutcomeKind = Literal["nps", "low_nps", "csat"]
OUTCOMES: tuple[str, ...] = ("nps", "low_nps", "csat")
DriverKind = Literal["touchpoint", "effort", "theme", "trait"]
Themes: TypeAlias = Mapping[str, Iterable[str]] | ir.Table
"""Who has which theme: {person_id: theme ids} or an Ibis table (person_id, theme)."""
Vector: TypeAlias = NDArray[np.float64]

DUPLICATE_R = 0.95  # indicators this correlated are one driver under two names
_FEEDBACK_LOOP = ("Survey ", "Case ")
_HOP_AFTER = "effort:channel_hop_after:"
_KIND_ORDER = {"effort": 0, "touchpoint": 1, "theme": 2, "trait": 3}


@dataclass(frozen=True)
class Driver:
    """One driver of the outcome and the evidence for it (see the module docstring).

    `coefficient` is in outcome units (a share, for low NPS) per unit of the driver, the
    other drivers held equal; `mean_with`/`mean_without` are the plain outcome means of
    the people with and without a yes/no driver; `p_adjusted` is Holm-corrected;
    `correlated_with` is the driver in the model most correlated with it (|r| ≥ 0.5).
    """

    name: str
    kind: DriverKind
    label: str
    importance: float
    performance: float
    p_value: float
    significant: bool
    effect_in_words: str
    people: int
    coefficient: float
    p_adjusted: float
    mean_with: float | None = None
    mean_without: float | None = None
    aliases: tuple[str, ...] = ()
    correlated_with: str | None = None


@dataclass(frozen=True)
class DriverResult:
    """The drivers, most positive importance first, and the regression behind them."""

    outcome: str
    n: int
    r2: float
    drivers: tuple[Driver, ...]
    mean: float
    adjusted_r2: float
    candidates: int
    lookback: timedelta
    collinear: tuple[str, ...] = ()  # candidates left out as combinations of others

    def driver(self, name: str) -> Driver:
        for d in self.drivers:
            if d.name == name:
                return d
        known = ", ".join(d.name for d in self.drivers[:8]) or "none"
        raise NotFound(f"no driver {name!r} in the model; the first ones are: {known}")


@dataclass
class _Candidate:
    name: str
    kind: DriverKind
    label: str
    binary: bool
    column: Vector
    aliases: list[str] = field(default_factory=list)


def outcome_rows(
    warehouse: Warehouse,
    outcome: OutcomeKind | ir.Table,
    *,
    start_at: datetime | None = None,
    end_at: datetime | None = None,
) -> ir.Table:
    """One row per person (person_id, at, y): their latest answer in [start_at, end_at).

    `outcome` is "nps" (the score 0–10), "low_nps" (1 for a detractor, 0–6, else 0),
    "csat" (the score 1–5), or an Ibis table (person_id, at, value) of a business
    outcome, e.g. 1 for people who left within 30 days of `at`.
    """
    if isinstance(outcome, ir.Table):
        missing = {"person_id", "at", "value"} - set(outcome.columns)
        if missing:
            raise InvalidInput(
                f"the outcome table needs person_id, at and value columns, lacks {sorted(missing)}"
            )
        rows = outcome.select(
            person_id=outcome.person_id.cast("string"),
            at=outcome.at,
            tie=ibis.literal(""),
            y=outcome.value.cast("float64"),
        )
        rows = rows.filter(rows.y.notnull())
    elif outcome in OUTCOMES:
        answers = scored_answers(warehouse, ["csat" if outcome == "csat" else "nps"])
        y = (answers.score <= 6).cast("float64") if outcome == "low_nps" else answers.score
        rows = answers.select("person_id", "at", tie=answers.message_id, y=y)
    else:
        raise InvalidInput(
            f"outcome must be one of {', '.join(OUTCOMES)} or an Ibis table, got {outcome!r}"
        )
    if start_at is not None:
        rows = rows.filter(rows.at >= start_at)
    if end_at is not None:
        rows = rows.filter(rows.at < end_at)
    latest = ibis.window(group_by="person_id", order_by=[ibis.desc("at"), ibis.desc("tie")])
    rows = rows.mutate(nth=ibis.row_number().over(latest))
    return rows.filter(rows.nth == 0).select("person_id", "at", "y")


def _touchpoint_facts(
    warehouse: Warehouse, model: TouchpointModel, rows: ir.Table, lookback: timedelta
) -> ir.Table:
    """(person_id, driver): the touchpoints each person met in the lookback before `at`."""
    kept = tuple(tp for tp in model.touchpoints if not tp.event.startswith(_FEEDBACK_LOOP))
    if not kept:
        return _facts_table([])
    events = warehouse.events()
    labelled = TouchpointModel(touchpoints=kept).label(events)
    met = labelled.select("person_id", "touchpoint", ts=labelled.timestamp)
    joined = met.join(
        rows, [met.person_id == rows.person_id, met.ts < rows.at, met.ts >= rows.at - lookback]
    )
    return joined.select(
        person_id=met.person_id, driver=ibis.literal("touchpoint:") + met.touchpoint
    ).distinct()


def _effort_facts(
    warehouse: Warehouse,
    model: TouchpointModel,
    rows: ir.Table,
    lookback: timedelta,
    rules: EffortRules,
) -> ir.Table:
    """(person_id, driver): effort signals of contacts in the lookback before `at`."""
    contacts = assisted_contacts(warehouse, model, rules=rules)
    joined = contacts.join(
        rows,
        [
            contacts.person_id == rows.person_id,
            contacts.started_at < rows.at,
            contacts.started_at >= rows.at - lookback,
        ],
    ).select(contacts)
    parts = [
        joined.filter(joined[s]).select("person_id", driver=ibis.literal(f"effort:{s}"))
        for s in SIGNALS
    ]
    hops = joined.filter(joined.hopped_from.notnull())
    parts.append(hops.select("person_id", driver=ibis.literal(_HOP_AFTER) + hops.hopped_from))
    return ibis.union(*parts, distinct=True)


def _theme_facts(themes: Themes) -> ir.Table:
    if isinstance(themes, ir.Table):
        missing = {"person_id", "theme"} - set(themes.columns)
        if missing:
            raise InvalidInput(
                f"the themes table needs person_id and theme columns, lacks {sorted(missing)}"
            )
        table = themes.select(person_id=themes.person_id.cast("string"), theme=themes.theme)
    else:
        table = _facts_table([(str(p), str(t)) for p, ids in themes.items() for t in ids])
        table = table.rename(theme="driver")
    return table.select(
        "person_id", driver=ibis.literal("theme:") + table.theme.cast("string")
    ).distinct()


def _facts_table(pairs: list[tuple[str, str]]) -> ir.Table:
    return ibis.memtable(
        {"person_id": [p for p, _ in pairs], "driver": [d for _, d in pairs]},
        schema={"person_id": "string", "driver": "string"},
    )


def _label(name: str, touchpoints: Mapping[str, str], slow: str) -> str:
    kind, _, rest = name.partition(":")
    if name.startswith(_HOP_AFTER):
        tp = name[len(_HOP_AFTER) :]
        return f"a channel hop after {touchpoints.get(tp, tp)}"
    if kind == "touchpoint":
        return touchpoints.get(rest, rest)
    if kind == "effort":
        return {
            "repeat_contact": "a repeat contact",
            "channel_hop": "a channel hop",
            "reidentification": "identifying again",
            "slow_resolution": f"a contact unresolved for more than {slow}",
        }[rest]
    return f"theme {rest}"


def _fact_candidates(
    facts: list[dict[str, str]], people: Mapping[str, int], model: TouchpointModel, slow: str
) -> list[_Candidate]:
    """One 0/1 column per driver fact: effort first, then touchpoints and themes, each by
    how many people have it (so a duplicate is folded into the more common name)."""
    holders: dict[str, list[int]] = {}
    for fact in facts:
        index = people.get(fact["person_id"])
        if index is not None:
            holders.setdefault(fact["driver"], []).append(index)
    names = {tp.id: tp.name for tp in model.touchpoints}
    out = []
    for name in sorted(holders, key=lambda d: (_KIND_ORDER[d.split(":")[0]], -len(holders[d]), d)):
        column = np.zeros(len(people))
        column[holders[name]] = 1.0
        kind: DriverKind = name.split(":", 1)[0]  # type: ignore[assignment]
        out.append(_Candidate(name, kind, _label(name, names, slow), True, column))
    return out


def _trait_candidates(
    warehouse: Warehouse, traits: Sequence[str], people: Mapping[str, int]
) -> list[_Candidate]:
    if not traits:
        return []
    names = [check_field_name(t, "trait") for t in traits]
    profiles = warehouse.profiles()
    table = profiles.select(
        person_id=profiles.person_id.cast("string"),
        **{f"t{i}": warehouse.json_text(profiles.traits, n) for i, n in enumerate(names)},
    )
    raw: list[list[str | None]] = [[None] * len(people) for _ in names]
    for row in table.to_pyarrow().to_pylist():
        index = people.get(row["person_id"])
        if index is not None:
            for i in range(len(names)):
                raw[i][index] = row[f"t{i}"]
    return [c for i, name in enumerate(names) for c in _trait_columns(name, raw[i])]


def _as_number(text: str) -> float | None:
    word = text.strip().lower()
    if word in ("true", "false"):
        return float(word == "true")
    try:
        value = float(word)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _trait_columns(name: str, raw: list[str | None]) -> list[_Candidate]:
    """A number (missing: the mean), true/false as 1/0, or one 0/1 column per text value."""
    present = [v for v in raw if v is not None]
    numbers = [_as_number(v) for v in present]
    if present and all(n is not None for n in numbers):
        flag = all(v.strip().lower() in ("true", "false") for v in present)
        fill = 0.0 if flag else float(np.mean([n for n in numbers if n is not None]))
        column = np.array([fill if v is None else _as_number(v) for v in raw], dtype=float)
        label = f"trait {name}" + (" = true" if flag else "")
        return [_Candidate(f"trait:{name}", "trait", label, flag, column)]
    out = []
    for value in sorted(set(present)):
        column = np.array([float(v == value) for v in raw])
        label = f"trait {name} = {value}"
        out.append(_Candidate(f"trait:{name}={value}", "trait", label, True, column))
    return out


def _screen_people(candidates: list[_Candidate], min_people: int) -> list[_Candidate]:
    """Drivers enough people have and lack (numbers: that vary); duplicates folded."""
    kept: list[_Candidate] = []
    for c in candidates:
        having = int(c.column.sum()) if c.binary else len(c.column)
        lacking = len(c.column) - having if c.binary else min_people
        if having < min_people or lacking < min_people or np.ptp(c.column) == 0:
            continue
        twin = next((k for k in kept if _duplicate(c.column, k.column)), None)
        if twin is not None:
            twin.aliases.append(c.name)
        else:
            kept.append(c)
    return kept


def _duplicate(a: Vector, b: Vector) -> bool:
    r = float(np.corrcoef(a, b)[0, 1])
    return math.isfinite(r) and abs(r) >= DUPLICATE_R


@dataclass(frozen=True)
class RegressionFit:
    """OLS estimates per column of x that entered (`kept`), and the fit's R²."""

    coefficients: Vector
    se: Vector
    p: Vector
    r2: float
    adjusted_r2: float
    kept: tuple[int, ...]


def univariate_t(x: Vector, y: Vector) -> float:
    """The t statistic of the correlation of x and y (0 when either is constant).

    >>> round(univariate_t(np.array([0., 0, 1, 1]), np.array([1., 2, 3, 4])), 2)
    2.83
    """
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    r = float(np.corrcoef(x, y)[0, 1])
    if abs(r) >= 1:
        return math.copysign(math.inf, r)
    return r * math.sqrt((len(x) - 2) / (1 - r * r))


def _independent(x: Vector) -> tuple[int, ...]:
    """The columns of x (centred) that are not linear combinations of the others."""
    _, r, pivots = _linalg.qr(x - x.mean(axis=0), mode="economic", pivoting=True)
    diag = np.abs(np.diag(r))
    if diag.size == 0 or diag[0] == 0:
        return ()
    rank = int((diag > diag[0] * 1e-9).sum())
    return tuple(sorted(int(p) for p in pivots[:rank]))


def ols_hc3(x: Vector, y: Vector) -> RegressionFit:
    """OLS of y on the columns of x plus an intercept; HC3 standard errors, t-test p-values.

    Columns that are linear combinations of others are left out (see `kept`).

    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=(400, 2))
    >>> fit = ols_hc3(x, 2 * x[:, 0] + rng.normal(size=400))
    >>> round(float(fit.coefficients[0]), 1), bool(fit.p[0] < 1e-6), bool(fit.p[1] > 0.05)
    (1.9, True, True)
    """
    kept = _independent(x)
    n, k = len(y), len(kept)
    if n - k - 1 < 1:
        raise InvalidInput(f"{n} people are too few to weigh {k} drivers")
    design = np.column_stack([np.ones(n), x[:, list(kept)]])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ beta
    bread = np.linalg.pinv(design.T @ design)
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    weights = residuals**2 / np.clip(1 - leverage, 1e-12, None) ** 2
    se = np.sqrt(np.clip(np.diag(bread @ (design.T * weights) @ design @ bread), 0, None))
    t = np.divide(beta, se, out=np.zeros_like(beta), where=se > 0)
    p = 2 * _dist.t.sf(np.abs(t), n - k - 1)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float((residuals**2).sum()) / total if total > 0 else 0.0
    adjusted = 1 - (1 - r2) * (n - 1) / (n - k - 1)
    return RegressionFit(beta[1:], se[1:], p[1:], r2, adjusted, kept)


def holm(p_values: Sequence[float], tests: int | None = None) -> list[float]:
    """Holm's step-down correction, as if `tests` (default: all given) had been run.

    >>> [round(p, 3) for p in holm([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    """
    m = max(tests or 0, len(p_values))
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(sorted(range(len(p_values)), key=lambda i: p_values[i])):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _span(delta: timedelta) -> str:
    text = format_duration(delta)
    number, unit = text[:-1], {"d": "day", "h": "hour", "m": "minute", "s": "second"}[text[-1]]
    return f"{number} {unit}{'' if number == '1' else 's'}"


def _levels(outcome: str, with_: float, without: float) -> str:
    if outcome == "low_nps":
        return f"{with_:.0%} were detractors, against {without:.0%} of the others"
    digits = {"nps": 1, "csat": 2}.get(outcome)
    if digits is None:
        return f"the outcome averaged {with_:.3g}, against {without:.3g} for the others"
    return f"they scored {with_:.{digits}f} on average, the others {without:.{digits}f}"


def _change(outcome: str, value: float) -> str:
    if outcome == "low_nps":
        return f"{100 * value:+.0f} points of detractors"
    return f"{value:+.2f}" + (" points" if outcome in OUTCOMES else "")


def _words(outcome: str, c: _Candidate, y: Vector, b: float, lookback: str) -> str:
    if not c.binary:
        sd = float(c.column.std())
        return (
            f"One standard deviation more of {c.label} ({sd:.3g}) goes with "
            f"{_change(outcome, b * sd)}, the other drivers held equal."
        )
    has = c.column == 1.0
    when = f" in the {lookback} before answering" if c.kind in ("touchpoint", "effort") else ""
    return (
        f"Of the {int(has.sum())} people {'who met' if c.kind == 'touchpoint' else 'with'} "
        f"{c.label}{when}, "
        f"{_levels(outcome, float(y[has].mean()), float(y[~has].mean()))}; "
        f"{_change(outcome, b)} with the other drivers held equal."
    )


def _caveats(
    c: _Candidate, y: Vector, b: float, partner: tuple[_Candidate, float] | None, p_adj: float,
    significant: bool,
) -> str:  # fmt: skip
    """What keeps the sentence honest: a sign that turns against a close driver, and chance."""
    text = ""
    has = c.column == 1.0
    if c.binary and partner is not None and float(y[has].mean() - y[~has].mean()) * b < 0:
        other, r = partner
        text += f" The sign turns once {other.label} is held equal (r = {r:.2f}): read both."
    if not significant:
        text += f" Not significant (p = {p_adj:.2g} corrected for the drivers tried)."
    return text


def _partners(entered: list[_Candidate]) -> list[tuple[_Candidate, float] | None]:
    """Each driver's most correlated other driver in the model, when |r| ≥ 0.5."""
    if len(entered) < 2:
        return [None] * len(entered)
    r = np.corrcoef(np.column_stack([c.column for c in entered]).T)
    np.fill_diagonal(r, 0.0)
    out: list[tuple[_Candidate, float] | None] = []
    for j in range(len(entered)):
        k = int(np.argmax(np.abs(r[j])))
        out.append((entered[k], float(r[j, k])) if abs(r[j, k]) >= 0.5 else None)
    return out


def key_drivers(
    warehouse: Warehouse,
    model: TouchpointModel,
    *,
    outcome: OutcomeKind | ir.Table = "nps",
    start_at: datetime | None = None,
    end_at: datetime | None = None,
    lookback: timedelta | str = "90d",
    themes: Themes | None = None,
    traits: Sequence[str] = (),
    min_people: int = 30,
    max_drivers: int = 30,
    alpha: float = 0.05,
    rules: EffortRules | None = None,
) -> DriverResult:
    """What drives the outcome of the answers in [start_at, end_at) (see the module docstring).

    For example `key_drivers(wh, model, outcome="low_nps").drivers[0]` is what most raises
    the chance of a detractor with the other drivers held equal, and its
    `effect_in_words` says by how much, among how many people.
    """
    if min_people < 1 or max_drivers < 1:
        raise InvalidInput(
            f"min_people and max_drivers must be at least 1, got {min_people} and {max_drivers}"
        )
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must be between 0 and 1, got {alpha}")
    start_at, end_at = utc(start_at), utc(end_at)
    check_period(start_at, end_at)
    window = parse_duration(lookback, field="lookback")
    rules = rules or EffortRules()
    name = outcome if isinstance(outcome, str) else "outcome"
    rows = outcome_rows(warehouse, outcome, start_at=start_at, end_at=end_at).view()
    answered = rows.to_pyarrow().to_pylist()
    if len(answered) < 2 * min_people:
        raise InvalidInput(
            f"key drivers of {name} need at least {2 * min_people} people with an answer "
            f"(2 x min_people), got {len(answered)}"
        )
    people = {r["person_id"]: i for i, r in enumerate(answered)}
    y = np.array([float(r["y"]) for r in answered])
    facts = [_touchpoint_facts(warehouse, model, rows, window)]
    facts.append(_effort_facts(warehouse, model, rows, window, rules))
    facts += [] if themes is None else [_theme_facts(themes)]
    pairs = ibis.union(*facts, distinct=True).to_pyarrow().to_pylist()
    candidates = _fact_candidates(pairs, people, model, _span(rules.slow_after))
    candidates += _trait_candidates(warehouse, traits, people)
    kept = _screen_people(candidates, min_people)
    return _analyse(name, y, kept, window, max_drivers, alpha)


def _strongest(candidates: list[_Candidate], y: Vector, max_drivers: int) -> list[_Candidate]:
    """All candidates, or the `max_drivers` most associated with the outcome on their own."""
    if len(candidates) <= max_drivers:
        return candidates
    strength = [abs(univariate_t(c.column, y)) for c in candidates]
    ranked = sorted(range(len(candidates)), key=lambda i: (-strength[i], i))
    return [candidates[i] for i in sorted(ranked[:max_drivers])]


def _analyse(
    outcome: str,
    y: Vector,
    candidates: list[_Candidate],
    lookback: timedelta,
    max_drivers: int,
    alpha: float,
) -> DriverResult:
    n, mean, tried = len(y), float(y.mean()), len(candidates)
    chosen = _strongest(candidates, y, max_drivers)
    if not chosen or np.ptp(y) == 0:
        return DriverResult(outcome, n, 0.0, (), mean, 0.0, tried, lookback)
    fit = ols_hc3(np.column_stack([c.column for c in chosen]), y)
    entered = [chosen[j] for j in fit.kept]
    collinear = tuple(c.name for j, c in enumerate(chosen) if j not in fit.kept)
    adjusted = holm([float(p) for p in fit.p], tests=tried)
    sd_y, span = float(y.std()), _span(lookback)
    drivers = []
    for j, (c, partner) in enumerate(zip(entered, _partners(entered), strict=True)):
        b, significant = float(fit.coefficients[j]), adjusted[j] < alpha
        words = _words(outcome, c, y, b, span)
        drivers.append(
            Driver(
                name=c.name,
                kind=c.kind,
                label=c.label,
                importance=b * float(c.column.std()) / sd_y,
                performance=float(c.column.mean()),
                p_value=float(fit.p[j]),
                significant=significant,
                effect_in_words=words + _caveats(c, y, b, partner, adjusted[j], significant),
                people=int(c.column.sum()) if c.binary else n,
                coefficient=b,
                p_adjusted=adjusted[j],
                mean_with=float(y[c.column == 1.0].mean()) if c.binary else None,
                mean_without=float(y[c.column != 1.0].mean()) if c.binary else None,
                aliases=tuple(c.aliases),
                correlated_with=None if partner is None else partner[0].name,
            )
        )
    drivers.sort(key=lambda d: (-d.importance, d.name))
    return DriverResult(
        outcome, n, fit.r2, tuple(drivers), mean, fit.adjusted_r2, tried, lookback, collinear
    )
