"""Privacy API (admins only): erase, anonymise, export a person; purge a time range."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, Field

from opencx.api.deps import AdminDep, ConDep, StateDep, audit
from opencx.privacy import (
    Suppression,
    anonymise_person,
    erase_person,
    export_person,
    list_suppressions,
    purge_events,
    resolve_person,
)

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])


class PersonRequest(BaseModel):
    identifier: str = Field(
        min_length=1,
        max_length=300,
        description="KIND:VALUE (e.g. email:jane@example.com) or a profile id",
    )
    reason: str = Field(default="data subject request", min_length=1, max_length=500)


class PurgeRequest(BaseModel):
    start: AwareDatetime = Field(description="First moment purged (received_at), inclusive.")
    end: AwareDatetime = Field(description="End of the range (received_at), exclusive.")
    source: str | None = Field(default=None, description="Only events of this source.")
    dry_run: bool = False


@router.post("/erase", summary="Erase a person")
def erase(body: PersonRequest, state: StateDep, token: AdminDep) -> dict[str, Any]:
    """Delete everything about the person in every table and suppress their identifiers;
    the answer is the verification report (ids only as salted hashes)."""
    report = erase_person(
        state.ingestor, body.identifier, by=f"token:{token.name}", reason=body.reason
    )
    return report.to_dict()


@router.post("/anonymise", summary="Anonymise a person in place")
def anonymise(body: PersonRequest, state: StateDep, token: AdminDep) -> dict[str, Any]:
    """Keep the person's events for aggregate analytics, without anything identifying them."""
    report = anonymise_person(
        state.ingestor, body.identifier, by=f"token:{token.name}", reason=body.reason
    )
    return report.to_dict()


@router.post("/purge", summary="Purge events received in a time range")
def purge(body: PurgeRequest, state: StateDep, token: AdminDep) -> dict[str, Any]:
    report = purge_events(
        state.ingestor,
        start=body.start,
        end=body.end,
        source=body.source,
        by=f"token:{token.name}",
        dry_run=body.dry_run,
    )
    return report.to_dict()


@router.get(
    "/export",
    summary="Export everything about a person",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "JSON and CSV files."}},
)
def export(
    identifier: Annotated[str, Query(min_length=1, max_length=300)],
    state: StateDep,
    con: ConDep,
    token: AdminDep,
    request: Request,
) -> Response:
    data = export_person(con, identifier, state.settings)
    person = resolve_person(con, state.ingestor.extractor, identifier)
    target = person.profile_ids[0] if person.profile_ids else None
    audit(request, token, "privacy.export", "profile", target, {"by": identifier.split(":")[0]})
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="opencx-export.zip"'},
    )


class SuppressionPublic(BaseModel):
    identifier_hash: str
    kind: str
    reason: str
    erasure_id: str | None
    created_at: datetime
    created_by: str
    dropped: int
    last_dropped_at: datetime | None


@router.get("/suppressions", response_model=list[SuppressionPublic], summary="Suppressions")
def suppressions(
    con: ConDep, _: AdminDep, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
) -> list[Suppression]:
    """Erased identifiers (as salted hashes) and how many late events each has dropped."""
    return list_suppressions(con, limit=limit)
