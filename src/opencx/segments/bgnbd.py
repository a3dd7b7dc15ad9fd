"""The BG/NBD model of repeat buying: how often each customer buys, and whether they still do.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "'Counting Your Customers' the Easy
Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284. While
alive a customer buys as a Poisson process with rate λ ~ Gamma(r, α); after each
purchase they drop out with probability p ~ Beta(a, b). A customer is summarised by
(x, t_x, T): repeat purchases, the time of the last one and their age, all measured
from their first purchase (`opencx.segments.value.calibration_summary`).

The log-likelihood is equation (6) of the paper, maximised over log-parameters with
SciPy (L-BFGS-B); identical customers are counted once with a weight, so a million
customers cost as much as their distinct (x, t_x, T). `lifetimes` implements the same
model, but it no longer imports on pandas 3 (or without setuptools' pkg_resources).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from opencx.errors import InvalidInput

Array = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike


@dataclass(frozen=True)
class BgNbd:
    """Fitted BG/NBD parameters (time in the unit of T, e.g. weeks)."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int

    def expected_purchases(
        self, t: float, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> Array:
        """E[Y(t) | x, t_x, T]: purchases each customer is expected to make in the next t
        (equation 10 of the paper).

        >>> m = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0, customers=0)
        >>> round(float(m.expected_purchases(39, [2], [30.43], [38.86])[0]), 3)
        1.226
        """
        x, t_x, age = _summary(frequency, recency, T)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + age + t)
        head = (a + b + x - 1) / (a - 1)
        tail = 1 - ((alpha + age) / (alpha + age + t)) ** (r + x) * special.hyp2f1(
            r + x, b + x, a + b + x - 1, z
        )
        return np.asarray(head * tail * self._alive(x, t_x, age), dtype=np.float64)

    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> Array:
        """P(still a customer | x, t_x, T); 1 for anyone who never bought again.

        >>> m = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=0, customers=0)
        >>> [round(float(p), 3) for p in m.probability_alive([0, 2, 2], [0, 30.43, 5], [38.86] * 3)]
        [1.0, 0.727, 0.124]
        """
        return self._alive(*_summary(frequency, recency, T))

    def expected_purchases_new(self, t: ArrayLike) -> Array:
        """E[X(t)]: purchases a new customer is expected to make in their first t
        (equation 9)."""
        t = np.asarray(t, dtype=np.float64)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        tail = 1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, t / (alpha + t))
        return np.asarray((a + b - 1) / (a - 1) * tail, dtype=np.float64)

    def _alive(self, x: Array, t_x: Array, age: Array) -> Array:
        # 1 / (1 + δ(x>0) a/(b+x-1) ((α+T)/(α+t_x))^(r+x)), in logs so large x cannot overflow.
        with np.errstate(divide="ignore"):
            term = np.where(
                x > 0,
                np.log(self.a)
                - np.log(np.maximum(self.b + x - 1, 1e-300))
                + (self.r + x) * (np.log(self.alpha + age) - np.log(self.alpha + t_x)),
                -np.inf,
            )
        return np.asarray(np.exp(-np.logaddexp(0.0, term)), dtype=np.float64)


def _summary(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[Array, Array, Array]:
    x = np.asarray(frequency, dtype=np.float64)
    t_x = np.asarray(recency, dtype=np.float64)
    age = np.asarray(T, dtype=np.float64)
    if not x.shape == t_x.shape == age.shape:
        raise InvalidInput(
            f"frequency, recency and T must have the same length, got {x.shape}, "
            f"{t_x.shape} and {age.shape}"
        )
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise InvalidInput("frequency must be whole numbers of repeat purchases, 0 or more")
    if np.any(t_x < 0) or np.any(t_x > age + 1e-9):
        raise InvalidInput("recency must be between 0 and T (the customer's age)")
    return x, t_x, age


def log_likelihood(
    params: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> Array:
    """Each customer's log-likelihood under (r, α, a, b): equation (6) of the paper."""
    r, alpha, a, b = np.asarray(params, dtype=np.float64)
    x, t_x, age = _summary(frequency, recency, T)
    common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    dropped_now = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore", invalid="ignore"):
        # The customer died right after their last purchase (possible only if x > 0).
        died_after = np.where(
            x > 0,
            special.betaln(a + 1, b + x - 1) - special.betaln(a, b)
            - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )  # fmt: skip
    return np.asarray(common + np.logaddexp(dropped_now, died_after), dtype=np.float64)


def fit_bgnbd(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, penalizer: float = 0.0
) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters; `penalizer` adds an L2 pull on the parameters
    (as `lifetimes` does) for small or odd samples.

    On the CDNOW sample (2,357 customers, 39 weeks) this gives the paper's r = 0.243,
    α = 4.414, a = 0.793, b = 2.426 (tests/segments/test_bgnbd.py).
    """
    x, t_x, age = _summary(frequency, recency, T)
    if x.size < 4:
        raise InvalidInput(f"fitting BG/NBD needs some customers, got {x.size}")
    if not np.any(x > 0):
        raise InvalidInput("fitting BG/NBD needs some customers who bought again")
    rows, weights = np.unique(np.column_stack([x, t_x, age]), axis=0, return_counts=True)
    total = float(weights.sum())

    def objective(log_params: Array) -> float:
        params = np.exp(log_params)
        ll = float(np.dot(weights, log_likelihood(params, rows[:, 0], rows[:, 1], rows[:, 2])))
        return -ll / total + penalizer * float(np.sum(params**2))

    result = optimize.minimize(objective, np.zeros(4), method="L-BFGS-B")
    if not np.isfinite(result.fun):
        raise InvalidInput("BG/NBD did not converge on these customers")
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    ll = float(
        np.dot(weights, log_likelihood([r, alpha, a, b], rows[:, 0], rows[:, 1], rows[:, 2]))
    )
    return BgNbd(r, alpha, a, b, ll, int(total))
