"""Audit API (admins): who viewed, exported, erased or changed what."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from opencx.access import AuditEntry, audit_entries
from opencx.access.audit import MAX_ENTRIES
from opencx.api.deps import AdminDep, ConDep
from opencx.errors import NotFound
from opencx.profiles import canonical_id

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/audit", response_model=list[AuditEntry], summary="The audit log, newest first")
def read_audit(
    request: Request,
    con: ConDep,
    _: AdminDep,
    person: Annotated[
        str | None, Query(description="A profile id: who viewed or exported this customer.")
    ] = None,
    actor: Annotated[str | None, Query(description="e.g. token:ops or user:ann@x.com")] = None,
    action: Annotated[
        str | None, Query(description="An action, or a prefix ending in '.', e.g. profile.")
    ] = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ENTRIES)] = 100,
) -> list[AuditEntry]:
    request.app.state.audit.flush()  # what was just viewed is in the answer
    target = None
    if person:
        try:
            target = canonical_id(con, person)
        except NotFound:  # an erased customer's views stay in the log
            target = person
    return audit_entries(con, target=target, actor=actor, action=action, since=since, limit=limit)
