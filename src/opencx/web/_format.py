"""How interactions read to a person: icons, relative times, one-line descriptions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from markupsafe import Markup

from opencx.types import CHANNELS

_CHANNELS = frozenset(CHANNELS)
_DETAIL_KEYS = (
    "topic", "error", "reason", "plan", "to", "revenue", "amount", "product_id", "campaign",
    "store_id", "resolved", "wait_s", "handle_s", "duration_s", "path", "method",
)  # fmt: skip


def icon(channel: str) -> Markup:
    """A coloured marker for a channel (a CSS class: no emoji font needed, CSP-safe)."""
    name = channel if channel in _CHANNELS else "other"
    return Markup(f'<span class="dot ch-{name}" aria-hidden="true"></span>')


def action(type_: str, event: str | None) -> Markup:
    """'Viewed <b>Plans</b>' for page views, '<b>Order Completed</b>' for actions."""
    if type_ in ("page", "screen"):
        return Markup("Viewed <strong>{}</strong>").format(event or type_)
    if type_ == "identify":
        return Markup("<strong>Identified</strong>")
    return Markup("<strong>{}</strong>").format(event or type_)


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """'10 minutes ago', '3 hours ago', '2 days ago', or a date."""
    if moment is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 0:
        return "just now" if seconds > -60 else moment.strftime("%Y-%m-%d %H:%M")
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            if unit == "day" and n > 30:
                return moment.strftime("%Y-%m-%d")
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def describe(entry: Any) -> str:
    """The key facts of an interaction's properties, in a line."""
    props = getattr(entry, "properties", None) or {}
    parts = []
    for key in _DETAIL_KEYS:
        if key in props and props[key] not in (None, ""):
            parts.append(f"{key.replace('_', ' ')}: {props[key]}")
    if not parts and getattr(entry, "type", "") == "identify":
        traits = getattr(entry, "traits", None) or {}
        parts = [f"{k}: {traits[k]}" for k in ("email", "phone", "plan", "name") if k in traits]
    return " · ".join(parts[:5])


def failure(row: tuple[Any, ...]) -> dict[str, Any]:
    """A failed-event row for the settings page."""
    fid, received, source, origin, row_number, errors, payload = row
    return {
        "id": fid,
        "received": received,
        "source": source,
        "origin": origin,
        "row": row_number,
        "errors": [e["message"] for e in orjson.loads(errors)],
        "payload": payload[:400],
    }
