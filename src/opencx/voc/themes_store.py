"""The analyst's themes: discovered once, then renamed and edited, kept as a document."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import yaml

from opencx.errors import InvalidInput
from opencx.store import get_document, put_document
from opencx.voc._themes import Theme, discover_themes, measure_themes, tag_themes
from opencx.voc.reports import Verbatim

THEMES = "themes"
DEFAULT = "default"


def saved_themes(con: duckdb.DuckDBPyConnection) -> list[Theme] | None:
    """The themes an analyst saved (None while none are: discover them instead)."""
    doc = get_document(con, THEMES, DEFAULT)
    if doc is None:
        return None
    return _parse(doc.body)


def _parse(text: str) -> list[Theme]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"themes are not valid YAML: {exc}") from None
    items = data.get("themes") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise InvalidInput("themes must be a mapping with a non-empty 'themes' list")
    themes = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("phrases"), list):
            raise InvalidInput(f"themes.{n}: needs 'phrases' (a list) and may have 'name'")
        theme = Theme.from_phrases([str(p) for p in item["phrases"]])
        if item.get("id"):
            theme = Theme(id=str(item["id"]), name=theme.name, phrases=theme.phrases)
        if item.get("name"):
            theme = theme.renamed(str(item["name"]))
        themes.append(theme)
    return themes


def themes_yaml(themes: list[Theme]) -> str:
    body = {"themes": [{"id": t.id, "name": t.name, "phrases": list(t.phrases)} for t in themes]}
    return yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


def save_themes(con: duckdb.DuckDBPyConnection, text: str, *, by: str | None = None) -> list[Theme]:
    """Keep an analyst's themes (YAML: id, name, phrases); tagging uses them from now on."""
    themes = _parse(text)
    put_document(con, THEMES, DEFAULT, themes_yaml(themes), by)
    return themes


@dataclass(frozen=True)
class ThemeView:
    """A theme as the VoC page shows it: its figures, where it comes from, and its trend."""

    theme: Theme
    touchpoints: tuple[tuple[str, int], ...]
    channels: tuple[tuple[str, int], ...]
    recent: int
    before: int


def theme_views(
    con: duckdb.DuckDBPyConnection, verbatims: list[Verbatim], *, now: datetime, days: int = 30
) -> list[ThemeView]:
    """Saved themes (or ones discovered now) measured on the verbatims, with the
    touchpoints and channels they come from and mentions in the last `days` vs the
    `days` before."""
    texts = [v.text for v in verbatims]
    themes = saved_themes(con)
    if themes is None:
        if len(texts) < 40:
            return []
        themes = discover_themes(texts, seed=0)
    themes = measure_themes(texts, themes)
    tags = tag_themes(texts, themes)
    where: dict[str, Counter[str]] = {t.id: Counter() for t in themes}
    via: dict[str, Counter[str]] = {t.id: Counter() for t in themes}
    recent: Counter[str] = Counter()
    before: Counter[str] = Counter()
    cut, start = now - timedelta(days=days), now - timedelta(days=2 * days)
    for verbatim, found in zip(verbatims, tags, strict=True):
        for theme in {tag.theme_id for tag in found}:
            where[theme][verbatim.touchpoint or "(none)"] += 1
            via[theme][verbatim.channel] += 1
            if verbatim.at >= cut:
                recent[theme] += 1
            elif verbatim.at >= start:
                before[theme] += 1
    return [
        ThemeView(
            t,
            tuple(where[t.id].most_common(3)),
            tuple(via[t.id].most_common(3)),
            recent[t.id],
            before[t.id],
        )
        for t in sorted(themes, key=lambda t: -t.size)
    ]
