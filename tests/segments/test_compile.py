"""Rules compiled to Ibis: types checked, missing values false, literals never SQL text."""

from __future__ import annotations

import doctest
from collections.abc import Iterator
from typing import Any

import ibis
import pytest

from opencx.errors import InvalidInput
from opencx.segments import compile as compile_module
from opencx.segments import rule_expression
from opencx.warehouse import Warehouse

PEOPLE: dict[str, list[Any]] = {
    "person_id": ["a", "b", "c", "d"],
    "purchases_90d": [3, 1, 0, None],
    "main_channel": ["app", "web", None, "app"],
    "responded": [True, False, None, True],
    "traits": [
        '{"city": "Leeds", "age": 41, "vip": true, "plan": "pro"}',
        '{"city": "York", "age": "29", "vip": false}',
        "{}",
        None,
    ],
}


@pytest.fixture
def warehouse() -> Iterator[Warehouse]:
    con = ibis.duckdb.connect()
    con.create_table("people", ibis.memtable(PEOPLE))
    yield Warehouse(con, "duckdb")
    con.disconnect()


def members(warehouse: Warehouse, rule: str) -> list[str]:
    people = warehouse.backend.table("people")
    chosen = people.filter(rule_expression(rule, people, warehouse)).order_by("person_id")
    return list(chosen.to_pyarrow().column("person_id").to_pylist())


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("purchases_90d >= 1", ["a", "b"]),
        ("purchases_90d < 1", ["c"]),  # d has no value: every comparison with it is false
        ("not purchases_90d >= 1", ["c", "d"]),  # … and `not` is its exact negation
        ('channel = "app"', ["a", "d"]),  # `channel` is the main channel
        ('main_channel != "app"', ["b", "c"]),
        ('main_channel in ("web", "app") and purchases_90d > 0', ["a", "b"]),
        ('main_channel not in ("web")', ["a", "c", "d"]),
        ("responded", ["a", "d"]),
        ("not responded", ["b", "c"]),
        ("responded = false", ["b"]),
        ('trait.city = "Leeds"', ["a"]),
        ('trait.city != "Leeds"', ["b", "c", "d"]),
        ("trait.age >= 30", ["a"]),  # a JSON number
        ("trait.age < 30", ["b"]),  # a number written as text
        ("trait.vip", ["a"]),
        ("trait.vip = false", ["b"]),
        ('trait.plan in ("pro", "business") or purchases_90d = 0', ["a", "c"]),
        ("(purchases_90d >= 1 or responded) and not trait.vip", ["b", "d"]),
    ],
)
def test_rules_select_the_right_people(
    warehouse: Warehouse, rule: str, expected: list[str]
) -> None:
    assert members(warehouse, rule) == expected


@pytest.mark.parametrize(
    ("rule", "says"),
    [
        (
            'purchases_90d >= "2"',
            "purchases_90d is a number, so compare it with a number, not text",
        ),
        ("main_channel = 3", "main_channel is text, so compare it with text, not a number"),
        ("responded > true", "responded is yes/no: use = or !="),
        ("purchases_90d", "purchases_90d is a number, not a yes/no field"),
        ("trait.vip > true", "true and false can only be = or !="),
        ('main_channel in ("app", 2)', "mixes numbers, text and flags"),
    ],
)
def test_type_mistakes_are_explained(warehouse: Warehouse, rule: str, says: str) -> None:
    with pytest.raises(InvalidInput, match="rule: ") as caught:
        members(warehouse, rule)
    assert says in caught.value.message


def test_unknown_fields_name_the_known_ones_and_the_likely_one(warehouse: Warehouse) -> None:
    with pytest.raises(InvalidInput) as caught:
        members(warehouse, "purchases_90 >= 2")
    message = caught.value.message
    assert "unknown field 'purchases_90' (did you mean purchases_90d?" in message
    assert "known fields: channel, main_channel, person_id, purchases_90d, responded" in message
    assert "trait.purchases_90" in message and "at column 1" in message
    assert "traits" not in caught.value.details["known"]  # read only as trait.NAME


def test_literals_are_values_never_sql(warehouse: Warehouse) -> None:
    hostile = "x'; DROP TABLE people; --"
    assert members(warehouse, f'main_channel = "{hostile}"') == []
    assert members(warehouse, f'trait.city in ("{hostile}", "Leeds")') == ["a"]
    assert members(warehouse, 'trait.city = "\\" OR 1=1 --"') == []
    assert warehouse.backend.table("people").count().execute() == 4


def test_trait_names_are_checked_before_they_reach_a_json_path(warehouse: Warehouse) -> None:
    long_name = "x" * 65
    with pytest.raises(InvalidInput, match="at column 1"):
        members(warehouse, f"trait.{long_name} = 1")


def test_docstring_examples() -> None:
    assert doctest.testmod(compile_module).failed == 0
