"""Proof of an erasure: every text column of every table searched for a person's values."""

from __future__ import annotations

import re
from collections.abc import Sequence

import duckdb

_TEXT_TYPES = ("VARCHAR", "JSON", "VARCHAR[]")


def text_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    """Every base table and its text-like columns (strings, JSON, lists of strings)."""
    rows = con.execute(
        "SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_name = c.table_name "
        "AND t.table_schema = c.table_schema AND t.table_catalog = c.table_catalog "
        "WHERE t.table_type = 'BASE TABLE' AND c.table_schema = 'main' "
        "AND c.table_catalog = current_database() ORDER BY c.table_name, c.ordinal_position"
    ).fetchall()
    found: dict[str, list[str]] = {}
    for table, column, kind in rows:
        columns = found.setdefault(table, [])
        if kind.upper() in _TEXT_TYPES:
            columns.append(column)
    return found


def count_mentions(
    con: duckdb.DuckDBPyConnection, needles: Sequence[str], *, whole_words: bool = False
) -> dict[str, dict[str, int]]:
    """For each needle (lower-cased), the rows of each table whose text contains it.

    `whole_words`: only where it is not part of a longer word (`u7` is not in `u70`),
    which the verification of an erasure needs on a large store.
    """
    counts: dict[str, dict[str, int]] = {n: {} for n in needles}
    if not needles:
        return counts
    for table, columns in text_columns(con).items():
        if not columns:
            for needle in needles:
                counts[needle][table] = 0
            continue
        text = (
            "lower(concat_ws(chr(31), "
            + ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
            + "))"
        )
        if whole_words:
            test, args = "regexp_matches(_t, ${})", [_pattern(n) for n in needles]
        else:
            test, args = "contains(_t, ${})", list(needles)
        checks = ", ".join(f"count_if({test.format(i + 1)})" for i in range(len(needles)))
        row = con.execute(
            f'SELECT {checks} FROM (SELECT {text} AS _t FROM "{table}")', args
        ).fetchall()[0]
        for needle, n in zip(needles, row, strict=True):
            counts[needle][table] = int(n or 0)
    return counts


def _pattern(needle: str) -> str:
    """A regular expression of `needle` not inside a longer word."""
    head = r"\b" if re.match(r"\w", needle[:1]) else ""
    tail = r"\b" if re.match(r"\w", needle[-1:]) else ""
    return head + re.escape(needle) + tail
