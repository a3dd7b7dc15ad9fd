"""The Gamma-Gamma model of spend per transaction, to pair with BG/NBD for lifetime value.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "RFM and CLV: Using Iso-Value Curves
for Customer Base Analysis", Journal of Marketing Research 42(4), 415-430; the
likelihood as written in Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary
Value". A customer's transaction values are Gamma(p, ν) around their own mean, with
ν ~ Gamma(q, γ) across customers; the model assumes spend is independent of how often
people buy (check that correlation before trusting it). It is fitted on customers with
at least one repeat purchase, from x (repeat purchases) and m (their mean value).
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
class GammaGamma:
    """Fitted Gamma-Gamma parameters p, q and γ (`gamma`)."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int

    @property
    def population_mean(self) -> float:
        """The expected spend per transaction of someone we know nothing about: pγ/(q−1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")

    def expected_spend(self, frequency: ArrayLike, monetary: ArrayLike) -> Array:
        """E[M | x, m]: a weighted mean of the customer's own average and the population's
        (equation 5 of the 2013 note); the population mean for x = 0.

        >>> g = GammaGamma(p=6.25, q=3.74, gamma=15.44, log_likelihood=0, customers=0)
        >>> [round(float(v), 2) for v in g.expected_spend([0, 2, 10], [0, 22.35, 22.35])]
        [35.22, 24.66, 22.89]
        """
        x = np.asarray(frequency, dtype=np.float64)
        m = np.asarray(monetary, dtype=np.float64)
        value = self.p * (self.gamma + x * m) / (self.p * x + self.q - 1)
        return np.asarray(np.where(x > 0, value, self.population_mean), dtype=np.float64)


def log_likelihood(params: ArrayLike, frequency: ArrayLike, monetary: ArrayLike) -> Array:
    """Each customer's log-likelihood of their mean spend m over x transactions."""
    p, q, gamma = np.asarray(params, dtype=np.float64)
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    px = p * x
    return np.asarray(
        special.gammaln(px + q) - special.gammaln(px) - special.gammaln(q)
        + q * np.log(gamma) + (px - 1) * np.log(m) + px * np.log(x)
        - (px + q) * np.log(gamma + x * m),
        dtype=np.float64,
    )  # fmt: skip


def fit_gamma_gamma(
    frequency: ArrayLike, monetary: ArrayLike, *, penalizer: float = 0.0
) -> GammaGamma:
    """Maximum-likelihood p, q, γ from the customers with x > 0 and m > 0 (the rest are
    skipped: a first purchase alone says nothing about spend *per repeat*).

    On CDNOW this gives the published p = 6.25, q = 3.74, γ = 15.44
    (tests/segments/test_gamma_gamma.py).
    """
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary, dtype=np.float64)
    if x.shape != m.shape:
        raise InvalidInput(f"frequency and monetary differ in length: {x.shape} and {m.shape}")
    keep = (x > 0) & (m > 0)
    if keep.sum() < 3:
        raise InvalidInput("fitting Gamma-Gamma needs customers who bought again, with spend")
    x, m = x[keep], m[keep]
    count = float(x.size)

    def objective(log_params: Array) -> float:
        params = np.exp(log_params)
        return -float(log_likelihood(params, x, m).sum()) / count + penalizer * float(
            np.sum(params**2)
        )

    result = optimize.minimize(objective, np.zeros(3), method="L-BFGS-B")
    if not np.isfinite(result.fun):
        raise InvalidInput("Gamma-Gamma did not converge on these customers")
    p, q, gamma = (float(v) for v in np.exp(result.x))
    return GammaGamma(p, q, gamma, float(log_likelihood([p, q, gamma], x, m).sum()), x.size)
