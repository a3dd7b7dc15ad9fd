"""Shared fixtures: settings on a temp dir, an in-memory store, an ingestor, servers."""

from __future__ import annotations

import base64
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from opencx.access import add_source, create_token
from opencx.api import create_app
from opencx.config import Settings, load_settings
from opencx.ingest import Ingestor, SourceContext
from opencx.store import Store

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Defaults, with the database in this test's own temp dir and no background refresh."""
    return load_settings(
        db=tmp_path / "opencx.duckdb", profiles_refresh_s=0, orchestrate_every_s=0,
        segments_every_s=0, ingest_workers=0,  # tests/ingest/test_workers.py starts some
    )  # fmt: skip


@pytest.fixture
def store() -> Iterator[Store]:
    with Store() as s:
        yield s


@pytest.fixture
def ingestor(store: Store, settings: Settings) -> Ingestor:
    return Ingestor(store, settings)


WEB = SourceContext("web", "web")


_ids = itertools.count(1)


@pytest.fixture
def event() -> Callable[..., dict[str, Any]]:
    """Factory of valid Segment messages: `event(type="track", event="X", userId="u1")`."""

    def make(type: str = "track", **fields: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"type": type, "messageId": f"m-{next(_ids)}"}
        if type == "track":
            message["event"] = "Something Happened"
        if "userId" not in fields and "anonymousId" not in fields:
            message["anonymousId"] = "anon-1"
        message.update(fields)
        return message

    return make


def basic_auth(write_key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()}


@dataclass
class ApiClient:
    """A TestClient on a fresh in-memory store with one source and a token per role."""

    client: TestClient
    store: Store
    write_key: str
    tokens: dict[str, str]

    def bearer(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    @property
    def ingest_auth(self) -> dict[str, str]:
        return basic_auth(self.write_key)


@pytest.fixture
def api(settings: Settings) -> Iterator[ApiClient]:
    with Store() as s:
        _, key = add_source(s.con, "web", "web")
        tokens = {
            role: create_token(s.con, role, role)[1] for role in ("admin", "analyst", "agent")
        }
        with TestClient(create_app(settings, s)) as client:
            yield ApiClient(client, s, key, tokens)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    """`opencx serve` in a child process on a free loopback port."""

    url: str
    db: Path
    write_key: str
    admin_token: str
    process: subprocess.Popen[bytes]

    def start_again(self) -> LiveServer:
        return start_server(self.db, self.write_key, self.admin_token)


def start_server(db: Path, write_key: str, admin_token: str, timeout: float = 30) -> LiveServer:
    port = free_port()
    env = {
        **os.environ, "OPENCX_PROFILES_REFRESH_S": "0", "OPENCX_VOC_EVERY_S": "0",
        "OPENCX_ORCHESTRATE_EVERY_S": "0", "OPENCX_SEGMENTS_EVERY_S": "0",
    }  # fmt: skip
    log = db.with_suffix(f".{port}.log")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "opencx.cli", "serve", "--db", str(db), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: see {log.name}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return LiveServer(url, db, write_key, admin_token, process)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not answer on {url} within {timeout} s")


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    db = tmp_path / "live.duckdb"
    with Store(db) as s:
        _, key = add_source(s.con, "web", "web")
        _, token = create_token(s.con, "admin", "admin")
    server = start_server(db, key, token)
    yield server
    for proc in (server.process,):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Spark (2 cores, loopback only) for the whole run: it takes seconds to start.

    Tests that use it carry `@pytest.mark.xdist_group("spark")`, so one worker owns it.
    """
    pyspark_sql = pytest.importorskip("pyspark.sql", reason="PySpark is in the dev extras")
    if shutil.which("java") is None:
        pytest.fail("Spark parity tests need a Java runtime (Debian: apt-get install default-jre)")
    scratch = tmp_path_factory.mktemp("spark")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    session = (
        pyspark_sql.SparkSession.builder.master("local[2]")
        .appName("opencx-tests")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.warehouse.dir", str(scratch / "warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={scratch}")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
