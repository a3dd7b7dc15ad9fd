"""What the sample brand's customers write points at its planted problem."""

from __future__ import annotations

from opencx.demo import generate_brand
from opencx.voc import discover_themes, rank_negative_themes


def test_the_broken_app_password_reset_is_a_top_three_negative_theme() -> None:
    comments = [
        m["properties"]["comment"]
        for _, m in generate_brand(1500, seed=7)
        if m.get("event") == "Survey Responded" and m["properties"].get("comment")
    ]
    assert len(comments) > 400
    top = rank_negative_themes(discover_themes(comments, seed=0), top=3)
    names = [t.name for t in top]
    assert any("reset" in n or "password" in n or "code" in n for n in names), names
