"""Segment rules compiled to an Ibis boolean over the feature table: typed, two-valued.

Each field is checked against the table's columns and its type (a number is compared
with a number, text with text, a flag with true/false); values become SQL literals,
never SQL text. A comparison with a missing value is false, and `not`, `!=` and `not
in` are its exact negation, so `not trait.city = "Leeds"` and `trait.city != "Leeds"`
both include people with no city. Traits are JSON text: compared with a number they
are read as a number, with true/false as a flag, bare (`trait.vip`) as "is true".
"""

from __future__ import annotations

import difflib
import operator

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from opencx.errors import InvalidInput
from opencx.segments.rules import (
    And,
    Compare,
    Field,
    Member,
    Node,
    Not,
    Or,
    Rule,
    Truthy,
    Value,
    parse_rule,
    rule_error,
)
from opencx.warehouse import Warehouse, check_field_name

ALIASES = {"channel": "main_channel"}
_HIDDEN = {"traits"}  # read through trait.NAME only
_ORDERING = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def field_types(features: ir.Table) -> dict[str, str]:
    """The fields a rule may name in this table, with their type: number, text or bool.

    >>> import ibis
    >>> field_types(ibis.table({"orders": "int64", "plan": "string"}, name="f"))
    {'orders': 'number', 'plan': 'text'}
    """
    out = {}
    for name, dtype in features.schema().items():
        if name in _HIDDEN:
            continue
        if dtype.is_numeric():
            out[name] = "number"
        elif dtype.is_string():
            out[name] = "text"
        elif dtype.is_boolean():
            out[name] = "bool"
    return out


def rule_expression(rule: Rule | str, features: ir.Table, warehouse: Warehouse) -> ir.BooleanValue:
    """The rule as a boolean over `features` (true for members, never NULL).

    For example `features.filter(rule_expression("not responded", features, wh))`.
    """
    parsed = parse_rule(rule) if isinstance(rule, str) else rule
    return _Compiler(parsed, features, warehouse).compile(parsed.root)


class _Compiler:
    def __init__(self, rule: Rule, features: ir.Table, warehouse: Warehouse) -> None:
        self.text = rule.text
        self.features = features
        self.warehouse = warehouse
        self.types = field_types(features)

    def compile(self, node: Node) -> ir.BooleanValue:
        # Depth is bounded by parse_rule, so this recursion is too.
        if isinstance(node, And):
            return ibis.and_(*(self.compile(n) for n in node.operands))
        if isinstance(node, Or):
            return ibis.or_(*(self.compile(n) for n in node.operands))
        if isinstance(node, Not):
            return ~self.compile(node.operand)
        if isinstance(node, Truthy):
            return self.truthy(node.field)
        if isinstance(node, Compare):
            return self.compare(node)
        return self.member(node)

    def column(self, field: Field) -> tuple[ir.Value, str]:
        """The column (or trait) a field names, with its type; `trait` for raw trait text."""
        if field.trait:
            try:
                name = check_field_name(field.name, "trait")
            except InvalidInput as exc:
                raise rule_error(self.text, field.column, exc.message) from None
            if "traits" not in self.features.columns:
                raise rule_error(self.text, field.column, "this table has no traits")
            return self.warehouse.json_text(self.features.traits, name), "trait"
        name = ALIASES.get(field.name, field.name)
        if name not in self.types:
            raise self.unknown(field)
        return self.features[name], self.types[name]

    def unknown(self, field: Field) -> InvalidInput:
        known = sorted(set(self.types) | {a for a, c in ALIASES.items() if c in self.types})
        close = difflib.get_close_matches(field.name, known, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return rule_error(
            self.text,
            field.column,
            f"unknown field {field.name!r} ({hint}known fields: {', '.join(known)}; "
            f"a profile trait is written trait.{field.name})",
            known=known,
        )

    def truthy(self, field: Field) -> ir.BooleanValue:
        value, kind = self.column(field)
        if kind == "bool":
            return value.fill_null(False)
        if kind == "trait":
            return (value.lower() == "true").fill_null(False)
        example = f"{field.label} > 0" if kind == "number" else f'{field.label} = "…"'
        raise rule_error(
            self.text,
            field.column,
            f"{field.label} is {_article(kind)}, not a yes/no field: compare it, e.g. {example}",
        )

    def operand(self, field: Field, value: Value, op: str, column: int) -> ir.Value:
        """The field's value ready to compare with `value`, after checking they fit."""
        target, kind = self.column(field)
        given = _kind_of(value)
        if kind == "trait":
            if given == "number":
                return target.try_cast("float64")
            if given == "bool":
                if op in _ORDERING:
                    raise rule_error(self.text, column, "true and false can only be = or !=")
                return target.lower()
            return target
        if given != kind:
            raise rule_error(
                self.text,
                column,
                f"{field.label} is {_article(kind)}, so compare it with {_article(kind)}, "
                f"not {_article(given)}",
            )
        if kind == "bool" and op in _ORDERING:
            raise rule_error(self.text, column, f"{field.label} is yes/no: use = or !=")
        return target

    def compare(self, node: Compare) -> ir.BooleanValue:
        target = self.operand(node.field, node.value, node.op, node.column)
        literal = _literal(node.value, target)
        if node.op in ("=", "!="):
            equal = (target == literal).fill_null(False)
            return ~equal if node.op == "!=" else equal
        return _ORDERING[node.op](target, literal).fill_null(False)

    def member(self, node: Member) -> ir.BooleanValue:
        kinds = {_kind_of(v) for v in node.values}
        if len(kinds) > 1:
            raise rule_error(self.text, node.column, "an 'in' list mixes numbers, text and flags")
        target = self.operand(node.field, node.values[0], "in", node.column)
        literals = [_literal(v, target) for v in node.values]
        found = target.isin(literals).fill_null(False)
        return ~found if node.negated else found


def _kind_of(value: Value) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else "text"


def _literal(value: Value, target: ir.Value) -> ir.Value:
    if isinstance(value, bool) and target.type().is_string():
        return ibis.literal("true" if value else "false")  # a trait's JSON text
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ibis.literal(float(value), type=dt.float64)
    return ibis.literal(value)


def _article(kind: str) -> str:
    return {"number": "a number", "text": "text", "bool": "a yes/no flag"}.get(kind, kind)
