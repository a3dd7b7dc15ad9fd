"""Dependencies shared by the read API: the server state, the caller's token and role,
its rate limit, and the audit log of what it read and changed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import duckdb
from fastapi import Depends, Request

from opencx.access import AuditBuffer, Token
from opencx.api._limits import RateLimiters, client_address
from opencx.api._state import ServerState
from opencx.errors import Forbidden, Unauthorized
from opencx.warehouse import Warehouse

_RANK = {"agent": 1, "analyst": 2, "admin": 3}
_READS = frozenset({"GET", "HEAD", "OPTIONS"})
log = logging.getLogger("opencx.api")


def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.opencx
    return state


StateDep = Annotated[ServerState, Depends(get_state)]


def get_con(state: StateDep) -> duckdb.DuckDBPyConnection:
    return state.store.cursor()


ConDep = Annotated[duckdb.DuckDBPyConnection, Depends(get_con)]


def get_warehouse(state: StateDep) -> Warehouse:
    return state.warehouse()


WarehouseDep = Annotated[Warehouse, Depends(get_warehouse)]


def current_token(request: Request, state: StateDep) -> Token:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized(
            "an API token is required: Authorization: Bearer <token> "
            "(create one with `opencx tokens create NAME --role agent|analyst|admin`)"
        )
    token = state.token(secret.strip())
    if token is None:
        raise Unauthorized("the API token is not valid (unknown or revoked)")
    limiters: RateLimiters = request.app.state.limits
    limiters.check_token(token.id)
    return token


def actor(token: Token) -> str:
    """How a token appears in the audit log and in documents' `by`."""
    return f"token:{token.name}"


def audit(
    request: Request,
    token: Token,
    action: str,
    target_kind: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record in the audit log that `token` did `action` (e.g. `profile.view`) to `target`.

    Reads of a profile (`profile.…`, many a minute) are queued and written within a second;
    anything else (exports, erasures, changes) is written before this returns.
    """
    buffer: AuditBuffer = request.app.state.audit
    buffer.record(
        actor(token), action, target_kind, target, {"token_id": token.id, **(details or {})},
        client_address(request.scope), at_once=not action.startswith("profile."),
    )  # fmt: skip


def require(role: str) -> Callable[..., Iterator[Token]]:
    """A dependency that lets through tokens of `role` or a more powerful one.

    Every change a token makes (a request other than GET) that succeeds is recorded in
    the audit log as `api:METHOD /route/{param}`, with the path's parameters.
    """

    def check(request: Request, token: Annotated[Token, Depends(current_token)]) -> Iterator[Token]:
        if _RANK.get(token.role, 0) < _RANK[role]:
            raise Forbidden(f"this needs the {role} role; the token {token.name!r} is {token.role}")
        yield token
        if request.method in _READS:
            return
        route = request.scope.get("route")
        path = getattr(route, "path", request.url.path)
        params = dict(request.path_params)
        try:
            audit(
                request, token, f"api:{request.method} {path}", "route", path,
                {"path_params": params} if params else None,
            )  # fmt: skip
        except Exception:  # the change is made: a failed audit write must not undo the answer
            log.exception("could not record %s %s in the audit log", request.method, path)

    return check


AgentDep = Annotated[Token, Depends(require("agent"))]
AnalystDep = Annotated[Token, Depends(require("analyst"))]
AdminDep = Annotated[Token, Depends(require("admin"))]
