"""Segment fixtures: a log written at known times, and the CDNOW data `lifetimes` ships."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from opencx.store import Store
from opencx.warehouse import Warehouse, embedded
from tests.journeys.conftest import T0, Row, write_events, write_profiles

NOW = T0 + timedelta(days=100)  # 2026-06-10 09:00 UTC, a Wednesday
Log = Callable[..., Warehouse]


def hours_before_now(days: float) -> float:
    """The `write_events` offset (hours after T0) of a moment `days` before NOW."""
    return (NOW - timedelta(days=days) - T0).total_seconds() / 3600


def at(moment: datetime) -> float:
    """The `write_events` offset of an absolute moment."""
    return (moment - T0).total_seconds() / 3600


@pytest.fixture
def log(store: Store) -> Callable[..., Warehouse]:
    """`log(rows, traits)` → a DuckDB warehouse over those events, in the `store` fixture."""

    def make(rows: Iterable[Row], traits: dict[str, dict[str, Any]] | None = None) -> Warehouse:
        write_events(store, rows)
        write_profiles(store, traits or {})
        return embedded(store.con)

    return make


def warehouse_over(
    rows: Iterable[Row], traits: dict[str, dict[str, Any]] | None = None
) -> Iterator[Warehouse]:
    """A warehouse over its own store, for module-scoped fixtures of read-only tests."""
    with Store() as store:
        write_events(store, rows)
        write_profiles(store, traits or {})
        yield embedded(store.con)


def cdnow_file(name: str) -> Path:
    """A file of the CDNOW sample (Fader & Hardie) as the `lifetimes` package ships it.

    Found through the package's installed files, not imported: `lifetimes` itself no
    longer imports on pandas 3, and the data is all these tests need from it.
    """
    try:
        dist = metadata.distribution("lifetimes")
    except metadata.PackageNotFoundError:
        pytest.skip("the CDNOW sample ships with lifetimes (dev extra): pip install lifetimes")
    path = Path(str(dist.locate_file(f"lifetimes/datasets/{name}")))
    if not path.exists():
        pytest.skip(f"lifetimes is installed without its {name}")
    return path


def cdnow_orders() -> list[Row]:
    """The 6,919 purchases of the 2,357 sampled CDNOW customers as `Order Completed` rows."""
    rows: list[Row] = []
    for line in cdnow_file("CDNOW_sample.txt").read_text().splitlines():
        if not line.strip():
            continue
        _, customer, day, _cds, amount = line.split()
        moment = datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC)
        rows.append((f"c{int(customer):04d}", at(moment), "Order Completed", "web",
                     {"revenue": float(amount)}))  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def cdnow() -> Iterator[Warehouse]:
    """The CDNOW purchases in an in-memory log (shared by a module: it takes a second)."""
    yield from warehouse_over(cdnow_orders())
