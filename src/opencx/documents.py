"""YAML documents people write (touchpoints, journeys, surveys): parsed, validated, explained."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from opencx.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)


def describe_errors(exc: ValidationError, root: str = "body") -> str:
    """`stages.0.targets.conversion: Input should be less than or equal to 1; ...`"""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or root}: {err['msg']}" for err in exc.errors()
    )


def parse_document(model: type[M], data: str | Mapping[str, Any], what: str, shape: str) -> M:
    """`model` from YAML text (or an already parsed mapping), with errors naming the field.

    >>> from pydantic import BaseModel
    >>> class Pet(BaseModel):
    ...     name: str
    >>> parse_document(Pet, "name: Rex", "pet", "a mapping with a name").name
    'Rex'
    """
    if isinstance(data, str):
        try:
            data = yaml.safe_load(data) or {}
        except yaml.YAMLError as exc:
            raise InvalidInput(f"{what} is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{what} must be {shape}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise InvalidInput(f"{what} is not valid: {describe_errors(exc, what)}") from None
