"""Customer lifetime value: the log's orders summarised per customer, BG/NBD × Gamma-Gamma.

`calibration_summary` turns `Order Completed` events into the (frequency, recency, T,
monetary) the models read, the way Fader, Hardie & Lee count: purchases on one UTC
calendar day are one transaction; frequency is the number of *repeat* purchase days;
recency and T run from the first purchase day to the last one and to the last day of
the period; monetary is the mean value of the repeat days (the first is left out, as
the Gamma-Gamma model is fitted on repeat spend).

`clv` then multiplies expected purchases (BG/NBD) by expected spend (Gamma-Gamma) over
a horizon, optionally discounted per step:
CLV = Σᵢ (E[Y(tᵢ)] − E[Y(tᵢ₋₁)]) × E[M] / (1 + d)ⁱ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import ibis.expr.types as ir
import numpy as np

from opencx.errors import InvalidInput
from opencx.segments._orders import day_number, orders
from opencx.segments.bgnbd import Array, ArrayLike, BgNbd, fit_bgnbd
from opencx.segments.gamma_gamma import GammaGamma, fit_gamma_gamma
from opencx.warehouse import Warehouse

_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class CalibrationSummary:
    """One entry per customer with an order before the end of the period."""

    person_id: list[str]
    frequency: Array
    recency: Array
    T: Array
    monetary: Array
    unit_days: float


def _last_day(end_at: datetime) -> int:
    """The day number of the period's last day: `end_at` is excluded."""
    moment = end_at.replace(tzinfo=UTC) if end_at.tzinfo is None else end_at.astimezone(UTC)
    return ((moment - timedelta(microseconds=1)).date() - _EPOCH).days


def calibration_expression(
    warehouse: Warehouse, *, end_at: datetime, unit_days: float = 7.0
) -> ir.Table:
    """person_id, frequency, recency, T, monetary from the orders before `end_at`; times
    in units of `unit_days` days (weeks by default)."""
    if unit_days <= 0:
        raise InvalidInput(f"unit_days must be more than 0, got {unit_days}")
    o = orders(warehouse)
    o = o.filter(o.at < end_at)
    daily = o.group_by(["person_id", day_number(o.at).name("day")]).aggregate(
        revenue=o.revenue.sum().fill_null(0.0)
    )
    daily = daily.mutate(first=daily.day.min().over(group_by="person_id"))
    per = daily.group_by("person_id").aggregate(
        days=daily.count(),
        first=daily.day.min(),
        last=daily.day.max(),
        repeat_revenue=daily.revenue.sum(where=daily.day != daily.first).fill_null(0.0),
    )
    repeats = per.days - 1
    return per.select(
        "person_id",
        frequency=repeats,
        # float first: Spark divides an integer by a literal as DECIMAL, to 6 places.
        recency=(per.last - per.first).cast("float64") / unit_days,
        T=(_last_day(end_at) - per.first).cast("float64") / unit_days,
        monetary=(repeats > 0).ifelse(per.repeat_revenue / repeats.cast("float64"), 0.0),
    ).order_by("person_id")


def calibration_summary(
    warehouse: Warehouse, *, end_at: datetime, unit_days: float = 7.0
) -> CalibrationSummary:
    """Execute `calibration_expression` into arrays ready for `fit_bgnbd` and `clv`."""
    table = calibration_expression(warehouse, end_at=end_at, unit_days=unit_days).to_pyarrow()

    def column(name: str) -> Array:
        return np.asarray(table.column(name).to_numpy(), dtype=np.float64)

    return CalibrationSummary(
        person_id=table.column("person_id").to_pylist(),
        frequency=column("frequency"),
        recency=column("recency"),
        T=column("T"),
        monetary=column("monetary"),
        unit_days=unit_days,
    )


def clv(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary: ArrayLike,
    horizon: float,
    *,
    discount_rate: float = 0.0,
    step: float | None = None,
    bgnbd: BgNbd | None = None,
    gamma_gamma: GammaGamma | None = None,
) -> Array:
    """Each customer's expected revenue over the next `horizon` (in the unit of T).

    The models are fitted on these customers unless given. With `discount_rate` d, each
    `step` (default: the whole horizon) is discounted by (1 + d)^i, e.g. monthly steps
    in weeks: `step=30 / 7, discount_rate=0.01`.

    >>> m = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0, customers=0)
    >>> g = GammaGamma(p=6.25, q=3.74, gamma=15.44, log_likelihood=0, customers=0)
    >>> value = clv([2], [30.43], [38.86], [22.35], 39, bgnbd=m, gamma_gamma=g)
    >>> round(float(value[0]), 2)
    30.24
    """
    if horizon <= 0:
        raise InvalidInput(f"horizon must be more than 0, got {horizon}")
    if discount_rate < 0:
        raise InvalidInput(f"discount_rate must be 0 or more, got {discount_rate}")
    size = horizon if step is None else step
    if size <= 0:
        raise InvalidInput(f"step must be more than 0, got {step}")
    model = bgnbd if bgnbd is not None else fit_bgnbd(frequency, recency, T)
    spend_model = gamma_gamma if gamma_gamma is not None else fit_gamma_gamma(frequency, monetary)
    spend = spend_model.expected_spend(frequency, monetary)
    value = np.zeros_like(spend)
    previous = np.zeros_like(spend)
    steps = math.ceil(horizon / size - 1e-9)
    for i in range(1, steps + 1):
        upto = model.expected_purchases(min(i * size, horizon), frequency, recency, T)
        value += (upto - previous) * spend / (1 + discount_rate) ** i
        previous = upto
    return value
