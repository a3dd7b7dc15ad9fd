"""Profiles: one per person, with merged traits and a cross-channel timeline."""

from __future__ import annotations

from opencx.profiles._read import (
    MAX_TIMELINE,
    Profile,
    TimelineEntry,
    canonical_id,
    find_profiles,
    get_profile,
    refresh_profiles,
    timeline,
)

__all__ = [
    "MAX_TIMELINE",
    "Profile",
    "TimelineEntry",
    "canonical_id",
    "find_profiles",
    "get_profile",
    "refresh_profiles",
    "timeline",
]
