"""Read API for profiles and timelines (agents and up)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from opencx.api.deps import AgentDep, ConDep, StateDep, audit
from opencx.identity import parse_identifier
from opencx.profiles import (
    MAX_TIMELINE,
    Profile,
    TimelineEntry,
    canonical_id,
    find_profiles,
    get_profile,
    timeline,
)

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"])
# The library's dataclasses (Profile, TimelineEntry) are the response models.


class TimelinePage(BaseModel):
    profile_id: str
    items: list[TimelineEntry]
    next_before: str | None
    """Pass as `before` for the next (older) page; null on the last page."""


class ProfileMatches(BaseModel):
    identifier: str
    profiles: list[Profile]


@router.get("", response_model=ProfileMatches, summary="Find profiles by identifier")
def lookup(
    identifier: Annotated[
        str, Query(description="KIND:VALUE, e.g. email:jane@example.com or phone:+15551234567")
    ],
    state: StateDep,
    con: ConDep,
    token: AgentDep,
    request: Request,
) -> ProfileMatches:
    key = parse_identifier(identifier, state.ingestor.extractor)
    found = [get_profile(con, pid) for pid in find_profiles(con, key)]
    for person in found:  # the identifier itself is personal data: only its kind is kept
        audit(request, token, "profile.lookup", "profile", person.id, {"by": key.split(":")[0]})
    return ProfileMatches(identifier=key, profiles=found)


@router.get("/{profile_id}", response_model=Profile, summary="One profile")
def read_profile(profile_id: str, con: ConDep, token: AgentDep, request: Request) -> Profile:
    person = get_profile(con, profile_id)
    audit(request, token, "profile.view", "profile", person.id)
    return person


@router.get("/{profile_id}/timeline", response_model=TimelinePage, summary="Cross-channel timeline")
def read_timeline(
    profile_id: str,
    con: ConDep,
    token: AgentDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_TIMELINE)] = 50,
    before: Annotated[str | None, Query(description="cursor from next_before, or ISO time")] = None,
    channel: Annotated[list[str] | None, Query()] = None,
    type: Annotated[list[str] | None, Query()] = None,
) -> TimelinePage:
    entries = timeline(con, profile_id, limit=limit, before=before, channels=channel, types=type)
    person = canonical_id(con, profile_id)
    audit(request, token, "profile.timeline", "profile", person, {"before": before})
    return TimelinePage(
        profile_id=person,
        items=entries,
        next_before=entries[-1].cursor if len(entries) == limit else None,
    )
