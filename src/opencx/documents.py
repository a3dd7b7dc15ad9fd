"""YAML documents people write (touchpoints, journeys, surveys): parsed, validated, explained."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import time, timedelta
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from opencx.durations import format_duration
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


def document_yaml(model: BaseModel, *, keep_empty: bool = False) -> str:
    """A document model back as the YAML people write: durations as `7d`, times as `21:00`,
    unset and empty fields left out (unless `keep_empty`: where an empty list means
    something, e.g. a policy rule that blocks nothing)."""
    return str(yaml.safe_dump(_plain(model.model_dump(mode="python"), keep_empty), sort_keys=False,
                              allow_unicode=True))  # fmt: skip


def _plain(value: Any, keep_empty: bool) -> Any:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, time):
        return f"{value:%H:%M}"
    if isinstance(value, dict):
        return {
            k: _plain(v, keep_empty)
            for k, v in value.items()
            if keep_empty or v not in (None, (), [], {}, "")
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v, keep_empty) for v in value]
    return value
