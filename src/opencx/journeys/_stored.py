"""The touchpoint model and designed journeys kept in the store, edited as YAML."""

from __future__ import annotations

import duckdb

from opencx.errors import NotFound
from opencx.journeys.design import JourneyDesign, parse_design
from opencx.journeys.touchpoints import TouchpointModel, infer_touchpoints, parse_touchpoints
from opencx.store import (
    delete_document,
    get_document,
    list_documents,
    put_document,
    require_document,
)
from opencx.warehouse import Warehouse

TOUCHPOINTS = "touchpoints"
JOURNEY = "journey"
DEFAULT = "default"


def touchpoint_model(con: duckdb.DuckDBPyConnection, warehouse: Warehouse) -> TouchpointModel:
    """The saved touchpoint model, or one inferred from the log when none was saved."""
    doc = get_document(con, TOUCHPOINTS, DEFAULT)
    if doc is not None:
        return parse_touchpoints(doc.body)
    return infer_touchpoints(warehouse)


def save_touchpoint_model(
    con: duckdb.DuckDBPyConnection, text: str, *, by: str | None = None
) -> TouchpointModel:
    """Validate and keep a touchpoint model written in YAML; returns it."""
    model = parse_touchpoints(text)
    put_document(con, TOUCHPOINTS, DEFAULT, model.to_yaml(), by)
    return model


def reset_touchpoint_model(con: duckdb.DuckDBPyConnection) -> bool:
    """Forget the saved model, so the default is inferred from the log again."""
    return delete_document(con, TOUCHPOINTS, DEFAULT)


def journey_designs(con: duckdb.DuckDBPyConnection) -> list[JourneyDesign]:
    return [parse_design(d.body) for d in list_documents(con, JOURNEY)]


def journey_design(con: duckdb.DuckDBPyConnection, name: str) -> JourneyDesign:
    doc = require_document(con, JOURNEY, name, f"no designed journey named {name!r}")
    return parse_design(doc.body)


def save_journey_design(
    con: duckdb.DuckDBPyConnection,
    text: str,
    model: TouchpointModel | None = None,
    *,
    by: str | None = None,
) -> JourneyDesign:
    """Validate (against the touchpoint model, when given) and keep a journey design."""
    design = parse_design(text)
    if model is not None:
        design.check_against(model)
    put_document(con, JOURNEY, design.name, design.to_yaml(), by)
    return design


def delete_journey_design(con: duckdb.DuckDBPyConnection, name: str) -> None:
    if not delete_document(con, JOURNEY, name):
        raise NotFound(f"no designed journey named {name!r}")
