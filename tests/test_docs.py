"""Docs that cannot drift: every setting and every CLI command is documented."""

from __future__ import annotations

import typer

from opencx.cli import app
from opencx.config import (
    IdentitySettings,
    PrivacySettings,
    RateLimitSettings,
    Settings,
    SmtpSettings,
)
from tests.conftest import ROOT


def _commands(group: typer.Typer, prefix: str = "") -> list[str]:
    names = [f"{prefix}{c.name or c.callback.__name__}" for c in group.registered_commands]
    for sub in group.registered_groups:
        names += _commands(sub.typer_instance, f"{prefix}{sub.name} ")
    return names


def test_every_setting_is_documented() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    nested = {
        "identity": IdentitySettings,
        "smtp": SmtpSettings,
        "privacy": PrivacySettings,
        "rate_limits": RateLimitSettings,
    }
    missing = [f"OPENCX_{n.upper()}" for n in Settings.model_fields if n not in nested]
    for group, model in nested.items():
        missing += [f"OPENCX_{group.upper()}__{n.upper()}" for n in model.model_fields]
    assert [name for name in missing if f"`{name}`" not in text] == []


def test_every_cli_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    undocumented = []
    for command in _commands(app):
        group, _, leaf = command.rpartition(" ")
        if f"opencx {command}" not in readme and not (group and f"`{leaf}`" in readme):
            undocumented.append(command)
    assert undocumented == []
