"""OpenCX: one interaction log, one profile per person, and the analytics built on them."""

from __future__ import annotations

__version__ = "0.1.0"
