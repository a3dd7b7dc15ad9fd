"""Admin API: failed events, identity rebuild and split, the server's memory and backlog."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import duckdb
import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from opencx.api._state import process_memory
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


class _FromAttributes(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ProcessMemoryPublic(_FromAttributes):
    rss_bytes: int | None
    peak_rss_bytes: int | None


class MemoryTagPublic(_FromAttributes):
    tag: str
    memory_bytes: int
    temporary_storage_bytes: int


class DuckDBMemoryPublic(_FromAttributes):
    memory_limit: str
    memory_bytes: int
    temporary_storage_bytes: int
    tags: list[MemoryTagPublic]


class DatabaseSizePublic(_FromAttributes):
    file_bytes: int
    used_bytes: int
    wal_bytes: int
    block_size: int


class IngestionStatsPublic(_FromAttributes):
    backlog: int
    max_queued_events: int
    flushes: int
    dedup_index_entries: int
    dedup_index_bytes: int
    identifiers: int


class ServerStatsPublic(BaseModel):
    process: ProcessMemoryPublic
    duckdb: DuckDBMemoryPublic
    database: DatabaseSizePublic
    ingestion: IngestionStatsPublic


@router.get(
    "/admin/stats", response_model=ServerStatsPublic, summary="Memory, database size, backlog"
)
def server_stats(state: StateDep, _: AdminDep) -> ServerStatsPublic:
    usage = state.store.usage()
    return ServerStatsPublic(
        process=ProcessMemoryPublic.model_validate(process_memory()),
        duckdb=DuckDBMemoryPublic.model_validate(usage),
        database=DatabaseSizePublic.model_validate(usage),
        ingestion=IngestionStatsPublic.model_validate(state.ingestion_stats()),
    )
