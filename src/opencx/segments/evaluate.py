"""Who is in a segment now: a rule applied to the feature table, as an Ibis expression."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import ibis
import ibis.expr.types as ir

from opencx.errors import InvalidInput
from opencx.segments.compile import ALIASES, rule_expression
from opencx.segments.features import FEATURES, features_expression
from opencx.segments.rules import Rule, parse_rule
from opencx.warehouse import Warehouse

RuleText = str | Rule


def _features(
    warehouse: Warehouse, now: datetime, features: ir.Table | None, rules: Iterable[RuleText]
) -> ir.Table:
    """The given table, else the feature table with only the columns the rules read (a
    rule naming an unknown field gets the whole table, so its error lists every field)."""
    if features is not None:
        return features
    needed: set[str] = set()
    for rule in rules:
        parsed = parse_rule(rule) if isinstance(rule, str) else rule
        for field in parsed.fields():
            needed.add("traits" if field.trait else ALIASES.get(field.name, field.name))
    if not needed <= set(FEATURES):
        return features_expression(warehouse, now)
    return features_expression(warehouse, now, columns=needed)


def segment_expression(
    warehouse: Warehouse, rule: RuleText, now: datetime, *, features: ir.Table | None = None
) -> ir.Table:
    """The members (one `person_id` column) of the rule as of `now`.

    Pass `features` to reuse one feature table (e.g. a materialised one) for several rules.
    """
    parsed = parse_rule(rule) if isinstance(rule, str) else rule
    table = _features(warehouse, now, features, [parsed])
    return table.filter(rule_expression(parsed, table, warehouse)).select("person_id")


def evaluate_segment(
    warehouse: Warehouse, rule: RuleText, now: datetime, *, features: ir.Table | None = None
) -> list[str]:
    """The member person ids, sorted, e.g.
    `evaluate_segment(wh, 'purchases_90d >= 2 and last_nps <= 6', now)`."""
    members = segment_expression(warehouse, rule, now, features=features)
    return sorted(members.to_pyarrow().column("person_id").to_pylist())


def _parsed(rules: Mapping[str, RuleText]) -> dict[str, Rule]:
    if not rules:
        raise InvalidInput("no segments given: name at least one rule")
    return {name: parse_rule(r) if isinstance(r, str) else r for name, r in rules.items()}


def membership_expression(
    warehouse: Warehouse,
    rules: Mapping[str, RuleText],
    now: datetime,
    *,
    features: ir.Table | None = None,
) -> ir.Table:
    """(person_id, segment) for every member of every named rule; a person may be in several.

    This is what `opencx.metrics.kpi(..., by="segment", segments=...)` takes.
    """
    parsed = _parsed(rules)
    table = _features(warehouse, now, features, parsed.values()).view()
    parts = [
        table.filter(rule_expression(rule, table, warehouse)).select(
            "person_id", segment=ibis.literal(name)
        )
        for name, rule in parsed.items()
    ]
    return parts[0].union(*parts[1:], distinct=False) if len(parts) > 1 else parts[0]


def segment_sizes_now(
    warehouse: Warehouse,
    rules: Mapping[str, RuleText],
    now: datetime,
    *,
    features: ir.Table | None = None,
) -> dict[str, int]:
    """How many people each named rule selects, all counted in one pass over the features."""
    parsed = _parsed(rules)
    table = _features(warehouse, now, features, parsed.values())
    # Column names are generated, so any segment name (spaces, quotes) is safe.
    counts = table.aggregate(
        **{
            f"s{i}": rule_expression(rule, table, warehouse).cast("int64").sum()
            for i, rule in enumerate(parsed.values())
        }
    )
    row = counts.to_pyarrow().to_pylist()[0]
    return {name: int(row[f"s{i}"] or 0) for i, name in enumerate(parsed)}
