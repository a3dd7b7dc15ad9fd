"""Experience KPIs with honest statistics, effort signals, key drivers."""

from __future__ import annotations
