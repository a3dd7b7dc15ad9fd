"""Segments: a safe rule language over traits and behaviour, RFM, lifetime value."""

from __future__ import annotations
