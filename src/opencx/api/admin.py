"""Admin API: failed events, identity rebuild and split."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import duckdb
import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel

from opencx.api.deps import AdminDep, ConDep, StateDep
from opencx.identity import parse_identifier, rebuild, split
from opencx.ingest import EventWriter
from opencx.profiles import canonical_id

router = APIRouter(prefix="/api/v1", tags=["admin"])


class FailedEventPublic(BaseModel):
    id: int
    received_at: datetime
    source: str | None
    origin: str
    row_number: int | None
    message_id: str | None
    status: str
    errors: list[dict[str, Any]]
    payload: str


@router.get("/failed-events", response_model=list[FailedEventPublic], summary="Rejected events")
def failed_events(
    con: ConDep,
    _: AdminDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status: Annotated[str | None, Query(pattern="^(failed|replayed)$")] = None,
) -> list[FailedEventPublic]:
    sql = (
        "SELECT id, received_at, source, origin, row_number, message_id, status, errors, payload "
        "FROM failed_events"
    )
    params: list[Any] = []
    if status:
        sql += " WHERE status = ?"
        params.append(status)
    rows = con.execute(sql + " ORDER BY id DESC LIMIT ?", [*params, limit]).fetchall()
    fields = ("id", "received_at", "source", "origin", "row_number", "message_id", "status")
    return [
        FailedEventPublic(
            **dict(zip(fields, r[:7], strict=True)), errors=orjson.loads(r[7]), payload=r[8]
        )
        for r in rows
    ]


class SplitRequest(BaseModel):
    profile_id: str
    identifier: str


class IdentityReport(BaseModel):
    profile_id: str | None = None
    events: int
    identifiers: int
    profiles: int
    merges: int
    conflicts: int
    events_moved: int


@router.post("/identity/rebuild", response_model=IdentityReport, summary="Rebuild identity")
def identity_rebuild(state: StateDep, _: AdminDep) -> IdentityReport:
    def run(con: duckdb.DuckDBPyConnection, writer: EventWriter) -> IdentityReport:
        report = rebuild(con, state.settings.identity)
        writer.reload_identity()
        return IdentityReport(**report.__dict__)

    return state.ingestor.writer.call(run)


@router.post("/identity/split", response_model=IdentityReport, summary="Undo a wrong merge")
def identity_split(body: SplitRequest, state: StateDep, con: ConDep, _: AdminDep) -> IdentityReport:
    key = parse_identifier(body.identifier, state.ingestor.extractor)
    profile = canonical_id(con, body.profile_id)

    def run(wcon: duckdb.DuckDBPyConnection, writer: EventWriter) -> IdentityReport:
        new_pid, report = split(wcon, state.settings.identity, profile, key)
        writer.reload_identity()
        return IdentityReport(profile_id=new_pid, **report.__dict__)

    return state.ingestor.writer.call(run)
