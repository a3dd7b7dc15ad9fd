"""Read API for profiles and timelines (agents and up)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from opencx.api.deps import AgentDep, ConDep, StateDep
from opencx.identity import parse_identifier
from opencx.profiles import MAX_TIMELINE, Profile, find_profiles, get_profile, timeline

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"])


class ProfilePublic(BaseModel):
    id: str
    identifiers: dict[str, list[str]]
    traits: dict[str, Any]
    first_seen: datetime | None
    last_seen: datetime | None
    channels: list[str]
    sources: list[str]
    event_count: int
    counts_by_type: dict[str, int]
    merged_ids: list[str]

    @classmethod
    def of(cls, profile: Profile) -> ProfilePublic:
        return cls(**profile.__dict__)


class TimelineEntryPublic(BaseModel):
    seq: int
    message_id: str
    type: str
    event: str | None
    channel: str
    source: str
    timestamp: datetime
    received_at: datetime
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None


class TimelinePage(BaseModel):
    profile_id: str
    items: list[TimelineEntryPublic]
    next_before: str | None
    """Pass as `before` for the next (older) page; null on the last page."""


class ProfileMatches(BaseModel):
    identifier: str
    profiles: list[ProfilePublic]


@router.get("", response_model=ProfileMatches, summary="Find profiles by identifier")
def lookup(
    identifier: Annotated[
        str, Query(description="KIND:VALUE, e.g. email:jane@example.com or phone:+15551234567")
    ],
    state: StateDep,
    con: ConDep,
    _: AgentDep,
) -> ProfileMatches:
    key = parse_identifier(identifier, state.ingestor.extractor)
    found = [ProfilePublic.of(get_profile(con, pid)) for pid in find_profiles(con, key)]
    return ProfileMatches(identifier=key, profiles=found)


@router.get("/{profile_id}", response_model=ProfilePublic, summary="One profile")
def read_profile(profile_id: str, con: ConDep, _: AgentDep) -> ProfilePublic:
    return ProfilePublic.of(get_profile(con, profile_id))


@router.get("/{profile_id}/timeline", response_model=TimelinePage, summary="Cross-channel timeline")
def read_timeline(
    profile_id: str,
    con: ConDep,
    _: AgentDep,
    limit: Annotated[int, Query(ge=1, le=MAX_TIMELINE)] = 50,
    before: Annotated[str | None, Query(description="cursor from next_before, or ISO time")] = None,
    channel: Annotated[list[str] | None, Query()] = None,
    type: Annotated[list[str] | None, Query()] = None,
) -> TimelinePage:
    entries = timeline(con, profile_id, limit=limit, before=before, channels=channel, types=type)
    canonical = get_profile(con, profile_id).id if entries else profile_id
    return TimelinePage(
        profile_id=canonical,
        items=[TimelineEntryPublic(**e.__dict__) for e in entries],
        next_before=entries[-1].cursor if len(entries) == limit else None,
    )
