"""Dependencies shared by the read API: the server state and the caller's token and role."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import duckdb
from fastapi import Depends, Request

from opencx.access import Token
from opencx.api._state import ServerState
from opencx.errors import Forbidden, Unauthorized
from opencx.warehouse import Warehouse

_RANK = {"agent": 1, "analyst": 2, "admin": 3}


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
    return token


def require(role: str) -> Callable[[Token], Token]:
    """A dependency that lets through tokens of `role` or a more powerful one."""

    def check(token: Annotated[Token, Depends(current_token)]) -> Token:
        if _RANK.get(token.role, 0) < _RANK[role]:
            raise Forbidden(f"this needs the {role} role; the token {token.name!r} is {token.role}")
        return token

    return check


AgentDep = Annotated[Token, Depends(require("agent"))]
AnalystDep = Annotated[Token, Depends(require("analyst"))]
AdminDep = Annotated[Token, Depends(require("admin"))]
