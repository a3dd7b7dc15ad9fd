"""The action catalogue: YAML with field-level errors, safe scripts, saved or shipped."""

from __future__ import annotations

import doctest
from importlib import resources

import pytest

from opencx.errors import InvalidInput
from opencx.orchestrate.actions import (
    default_actions_text,
    load_actions,
    parse_actions,
    placeholders,
    render_script,
    save_actions,
)
from opencx.store import Store

ONE = """
actions:
  - id: reset-help
    title: Show the reset help
    kind: info
    channels: [app, web]
    purpose: service
    script: "Hi {first_name}"
    when: [{failed: "password_reset_*@app", within: 7d}]
"""


def northwind_text() -> str:
    return resources.files("opencx.demo").joinpath("northwind_actions.yaml").read_text()


def with_action(**fields: str) -> str:
    """ONE with some of its action's lines replaced (`field: value` as YAML)."""
    lines = ONE.strip("\n").splitlines()
    for key, value in fields.items():
        lines = [ln for ln in lines if not ln.strip().startswith(f"{key}:")]
        lines.insert(2, f"    {key}: {value}")
    return "\n".join(lines) + "\n"


def test_a_catalogue_parses_with_defaults() -> None:
    catalogue = parse_actions(ONE)
    [action] = catalogue.actions
    assert (action.id, action.kind, action.channels, action.purpose) == (
        "reset-help",
        "info",
        ("app", "web"),
        "service",
    )
    assert action.value == 50 and action.unless == () and action.audience is None
    [cond] = action.when
    assert cond.signal == "failed" and cond.window is not None and cond.window.days == 7


def test_the_shipped_catalogues_parse() -> None:
    generic, northwind = parse_actions(default_actions_text()), parse_actions(northwind_text())
    assert len(generic.actions) >= 5 and len(northwind.actions) >= 8
    ids = {a.id for a in northwind.actions}
    assert {"reset-apology-sms-link", "unlimited-upgrade", "reset-help-banner"} <= ids
    upgrade = northwind.action("unlimited-upgrade")
    assert upgrade.purpose == "marketing" and any(c.open_case == "*" for c in upgrade.unless)
    assert northwind.action("reset-apology-sms-link").sends == "sms"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"purpose": "spam"}, "actions.0.purpose"),
        ({"channels": "[app, fax]"}, "actions.0.channels"),
        ({"channels": "[app, app]"}, "actions.0.channels"),
        ({"channels": "[]"}, "actions.0.channels"),
        ({"kind": "bribe"}, "actions.0.kind"),
        ({"id": "'Has Spaces'"}, "actions.0.id"),
        ({"value": "150"}, "actions.0.value"),
        ({"sends": "phone"}, "actions.0.sends"),
        ({"colour": "red"}, "actions.0.colour"),
        ({"when": '[{failed: "x@app", event: "y@app"}]'}, "actions.0.when.0"),
        ({"when": "[{}]"}, "actions.0.when.0"),
        ({"when": '[{failed: "x@app", within: "7 days"}]'}, "actions.0.when.0.within"),
        ({"when": '[{event: "x@app", within: 60d}]'}, "actions.0.when.0"),
        ({"when": '[{failed: "Password Reset!"}]'}, "actions.0.when.0.failed"),
        ({"when": "[{trait: plan, not_followed_by: x}]"}, "actions.0.when.0"),
        ({"when": "[{answer: nps, min: 7, max: 3}]"}, "actions.0.when.0"),
        ({"unless": "[{answer: sus}]"}, "actions.0.unless.0.answer"),
        ({"script": '"{first_name.__class__}"'}, "actions.0.script"),
    ],
)
def test_errors_name_the_field(fields: dict[str, str], named: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_actions(with_action(**fields))
    assert named in err.value.message


def test_duplicate_ids_and_bad_documents_are_refused() -> None:
    twice = ONE + ONE.split("actions:\n", 1)[1]
    with pytest.raises(InvalidInput, match=r"actions\.1\.id 'reset-help' is used twice"):
        parse_actions(twice)
    with pytest.raises(InvalidInput, match="not valid YAML"):
        parse_actions("actions: [")
    with pytest.raises(InvalidInput, match="must be a mapping"):
        parse_actions("- just a list")
    with pytest.raises(InvalidInput, match="actions"):
        parse_actions("actions: []")


@pytest.mark.parametrize(
    "script",
    [
        "{first_name.__class__.__mro__}",
        "{traits[password]}",
        "{0}",
        "{first_name!r}",
        "{first_name:>{width}}",
        "{__import__('os').system('true')}",
        "unbalanced {first_name",
    ],
)
def test_placeholders_are_plain_names_only(script: str) -> None:
    with pytest.raises(ValueError):
        placeholders(script)


def test_rendering_never_evaluates_what_the_values_hold() -> None:
    hostile = {"first_name": "{__import__('os').system('touch /tmp/x')}", "plan": "{plan}"}
    text = render_script("Hi {first_name}, on {plan} {{literal}}", hostile, {})
    assert text == "Hi {__import__('os').system('touch /tmp/x')}, on {plan} {literal}"
    assert render_script("Hi {first_name}", {}, {"first_name": "there"}) == "Hi there"
    assert render_script("Hi {first_name}", {"first_name": ""}, {}) == "Hi [first_name]"


def test_the_default_is_used_until_a_catalogue_is_saved(store: Store) -> None:
    assert load_actions(store.con) == parse_actions(default_actions_text())
    saved = save_actions(store.con, northwind_text(), by="cx-lead")
    assert load_actions(store.con) == saved
    doc = store.con.execute(
        "SELECT body, updated_by FROM documents WHERE kind = 'actions' AND name = 'default'"
    ).fetchall()
    assert doc == [(northwind_text(), "cx-lead")]  # as written, comments and all
    with pytest.raises(InvalidInput, match=r"actions\.0\.purpose"):
        save_actions(store.con, with_action(purpose="spam"), by="cx-lead")
    assert load_actions(store.con) == saved


def test_actions_for_a_channel() -> None:
    catalogue = parse_actions(northwind_text())
    on_app = catalogue.for_channel("app")
    assert on_app and all("app" in a.channels for a in on_app)
    assert "reset-apology-sms-link" not in {a.id for a in on_app}
    assert catalogue.for_channel(None) == catalogue.actions
    with pytest.raises(InvalidInput, match="not in the catalogue"):
        catalogue.action("nope")


def test_docstring_examples() -> None:
    from opencx.orchestrate import actions

    result = doctest.testmod(actions)
    assert result.attempted and not result.failed
