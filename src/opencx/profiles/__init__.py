"""Profiles: one per person, with merged traits and a cross-channel timeline."""

from __future__ import annotations

from opencx.profiles._activity import LogOverview, RecentActivity, log_overview, recent_activity
from opencx.profiles._read import (
    MAX_TIMELINE,
    Profile,
    TimelineEntry,
    canonical_id,
    computed_traits,
    find_profiles,
    get_profile,
    profile_members,
    refresh_profiles,
    timeline,
)
from opencx.profiles._search import ProfileMatch, search_profiles

__all__ = [
    "MAX_TIMELINE",
    "LogOverview",
    "Profile",
    "ProfileMatch",
    "RecentActivity",
    "TimelineEntry",
    "canonical_id",
    "computed_traits",
    "find_profiles",
    "get_profile",
    "log_overview",
    "profile_members",
    "recent_activity",
    "refresh_profiles",
    "search_profiles",
    "timeline",
]
