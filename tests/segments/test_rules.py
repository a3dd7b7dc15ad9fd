"""The rule language: what it reads, how it explains mistakes, and what it refuses."""

from __future__ import annotations

import doctest

import pytest

from opencx.errors import InvalidInput
from opencx.segments import rules
from opencx.segments.rules import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_TERMS,
    MAX_VALUES,
    And,
    Compare,
    Member,
    Not,
    Or,
    Truthy,
    parse_rule,
)


def error_of(text: str) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_rule(text)
    return caught.value


def test_the_documented_examples_read() -> None:
    rule = parse_rule('purchases_90d >= 2 and last_nps <= 6 and channel = "app"')
    assert isinstance(rule.root, And)
    assert [f.label for f in rule.fields()] == ["purchases_90d", "last_nps", "channel"]
    first = rule.root.operands[0]
    assert isinstance(first, Compare) and first == Compare(first.field, ">=", 2, 18)

    member = parse_rule('plan in ("pro", "business")').root
    assert isinstance(member, Member) and member.values == ("pro", "business")
    assert not member.negated

    negated = parse_rule("not churned").root
    assert isinstance(negated, Not) and isinstance(negated.operand, Truthy)

    trait = parse_rule('trait.city = "Leeds"').root
    assert isinstance(trait, Compare) and trait.field.trait and trait.field.name == "city"


def test_precedence_parentheses_and_keywords_in_any_case() -> None:
    rule = parse_rule("a = 1 OR b = 2 and NOT (c = 3 or d != 4)")
    assert isinstance(rule.root, Or)
    right = rule.root.operands[1]
    assert isinstance(right, And)
    assert isinstance(right.operands[1], Not) and isinstance(right.operands[1].operand, Or)


def test_values_numbers_text_and_flags() -> None:
    values = [
        parse_rule(text).root.value  # type: ignore[union-attr]
        for text in ("a = -2.5", "a = 7", "a = TRUE", "a = false", "a = 'x'", r'a = "say \"hi\""')
    ]
    assert values == [-2.5, 7, True, False, "x", 'say "hi"']
    assert parse_rule("a == 1").root.op == "="  # type: ignore[union-attr]
    assert parse_rule("a <> 1").root.op == "!="  # type: ignore[union-attr]
    assert parse_rule("x not in (1, 2)").root.negated  # type: ignore[union-attr]


def test_keywords_inside_names_are_names() -> None:
    rule = parse_rule("android = 1 and notable and order_in > 2 and true_fan")
    assert [f.name for f in rule.fields()] == ["android", "notable", "order_in", "true_fan"]


def test_a_missing_value_is_pointed_at_with_a_caret() -> None:
    error = error_of("purchases_90d >= and last_nps <= 6")
    first, caret = error.message.splitlines()
    assert first.startswith("rule: expected a value")
    assert "after '>=' at column 18: purchases_90d >= and last_nps <= 6" in first
    assert caret.index("^") == first.index("purchases_90d") + 17  # under "and"
    assert error.details["column"] == 18


@pytest.mark.parametrize(
    ("text", "says", "column"),
    [
        ("a >=", "expected a value", 5),
        ("(a = 1", "expected ')' after '1'", 7),
        ("a = 1)", "expected the end of the rule after '1'", 6),
        ("a = 1 or", "expected a field, 'not' or '(' after 'or'", 9),
        ("a b", "expected a comparison", 3),
        ('a = "unclosed', "no closing quote", 5),
        ("a = 1 & b = 2", "unexpected character '&'", 7),
        ("x in ()", "expected a value", 7),
        ("in = 3", "expected a field", 1),  # keywords are reserved
    ],
)
def test_syntax_errors_say_what_was_expected_and_where(text: str, says: str, column: int) -> None:
    error = error_of(text)
    assert says in error.message
    assert f"at column {column}:" in error.message


def test_a_closing_parenthesis_is_only_offered_inside_one() -> None:
    assert "')'" not in error_of("a b").message
    assert "')'" in error_of("(a b").message


@pytest.mark.parametrize(
    "hostile",
    [
        "__import__('os').system('echo hacked')",
        "1; DROP TABLE events",
        "a = 1; DROP TABLE events",
        "a = 1 -- comment",
        "exec('x')",
        "a = `whoami`",
        "trait.__class__.__mro__ = 1",
        "lambda: 0",
        "{a = 1}",
        "a = 1 /* */",
    ],
)
def test_hostile_rules_are_refused_as_bad_input(hostile: str) -> None:
    error_of(hostile)


def test_long_and_deep_rules_have_bounds() -> None:
    assert "over the limit" in error_of("a = 1 and " * 300 + "a = 1").message
    assert len("a = 1 and " * 300) > MAX_LENGTH
    assert "nest more than" in error_of("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1)).message
    assert "nests more than" in error_of("not " * (MAX_DEPTH + 1) + "a").message
    terms = " or ".join(f"a{i} = 1" for i in range(MAX_TERMS + 1))
    assert "more than 100 comparisons" in error_of(terms).message
    values = ", ".join("1" for _ in range(MAX_VALUES + 1))
    assert f"more than {MAX_VALUES} values" in error_of(f"a in ({values})").message
    assert (
        "the number 99999999999999999999 is too large at column 5"
        in error_of("a = 99999999999999999999").message
    )
    assert "trait.NAME" in error_of("trait. = 1").message
    # Just inside the bounds still parses, without recursion trouble.
    assert parse_rule("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    assert parse_rule("not " * (MAX_DEPTH - 2) + "a")


def test_long_rules_show_the_part_around_the_mistake() -> None:
    text = " and ".join(f"field_{i} = {i}" for i in range(20)) + " and oops"
    first, caret = error_of(text + " !").message.splitlines()
    assert "…" in first and "oops" in first
    assert first[caret.index("^")] == "!"


def test_empty_rules_are_refused() -> None:
    assert "empty" in error_of("   ").message


def test_docstring_examples() -> None:
    assert doctest.testmod(rules).failed == 0
