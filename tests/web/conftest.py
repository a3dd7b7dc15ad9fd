"""A live server on a small sample brand, with an admin and an agent who can sign in."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opencx.access import add_source, add_user, create_token
from opencx.config import load_settings
from opencx.demo import load_demo
from opencx.store import Store
from tests.conftest import ROOT, LiveServer, start_server

ARTIFACTS = ROOT / "tests" / "artifacts"
PASSWORD = "correct horse battery"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@dataclass
class BrandServer:
    server: LiveServer
    email: str
    phone: str
    others: tuple[str, ...] = ()
    """Emails of other known customers, for tests that need a fresh person."""


@pytest.fixture(scope="session")
def brand_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrandServer]:
    db = tmp_path_factory.mktemp("brand") / "brand.duckdb"
    settings = load_settings(db=db, profiles_refresh_s=0)
    with Store(db) as store:
        load_demo(store, settings, customers=120, seed=5)
        add_user(store.con, "admin@example.com", "admin", PASSWORD)
        add_user(store.con, "agent@example.com", "agent", PASSWORD)
        add_user(store.con, "analyst@example.com", "analyst", PASSWORD)
        _, key = add_source(store.con, "tests", "web")
        _, token = create_token(store.con, "tests", "admin")
        email, phone = store.con.execute(
            "SELECT email, phone FROM profiles WHERE len(channels) >= 3 AND phone IS NOT NULL "
            "ORDER BY event_count DESC LIMIT 1"
        ).fetchall()[0]
        others = tuple(
            row[0]
            for row in store.con.execute(
                "SELECT email FROM profiles WHERE email IS NOT NULL AND email <> ? "
                "ORDER BY profile_id LIMIT 5",
                [email],
            ).fetchall()
        )
    server = start_server(db, key, token)
    yield BrandServer(server, email, phone, others)
    server.process.terminate()
    server.process.wait(10)


def chromium_path() -> str:
    found = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        pytest.fail(
            "Browser tests need Debian's chromium package (/usr/bin/chromium), which is "
            "missing: `make test` installs it with apt-get; or run `apt-get install chromium`."
        )
    version = subprocess.run([found, "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0, f"{found} does not run: {version.stderr}"
    return found
