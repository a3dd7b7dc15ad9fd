"""SIGKILL during a backup or a restore: never a half-written backup or database."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opencx.store import Store
from opencx.store.backup import create_backup, restore_backup, verify_backup

pytestmark = pytest.mark.slow
EVENTS = 400_000


def _fill(db: Path, tag: str) -> None:
    """A log big enough that a backup or restore takes a moment (SQL, not ingestion)."""
    with Store(db) as store:
        store.con.execute(
            "INSERT INTO events (seq, message_id, type, event, channel, source, anonymous_id, "
            "identifiers, timestamp, received_at, properties) "
            f"SELECT i, '{tag}-' || i, 'track', 'Viewed', 'web', 'web', 'a' || (i % 5000), "
            "['anonymous_id:a' || (i % 5000)], now(), now(), "
            "'{\"n\": ' || i || ', \"pad\": \"' || md5(i::VARCHAR) || '\"}' "
            f"FROM range(1, {EVENTS} + 1) t(i)"
        )


def _killed_after(args: list[str], delay: float) -> int | None:
    process = subprocess.Popen(
        [sys.executable, "-m", "opencx.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        process.wait(delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    return process.returncode


def test_a_backup_killed_midway_leaves_no_file_or_a_whole_one(tmp_path: Path) -> None:
    db = tmp_path / "big.duckdb"
    _fill(db, "e")
    outcomes = []
    for n, delay in enumerate((0.8, 1.5, 2.5, 30)):  # the last one is let finish
        file = tmp_path / f"b{n}.zip"
        code = _killed_after(["backup", "--to", str(file), "--db", str(db)], delay)
        outcomes.append(code)
        if file.exists():  # only ever complete: written aside, then renamed
            assert verify_backup(file).tables["events"] == EVENTS
        else:
            assert code == -signal.SIGKILL
    assert -signal.SIGKILL in outcomes and outcomes[-1] == 0
    # The killed runs leave at most scratch folders, which never look like a backup.
    assert all(p.name.startswith(".opencx-backup-") for p in tmp_path.iterdir() if p.is_dir())


def test_a_restore_killed_midway_keeps_the_old_database_or_the_whole_new_one(
    tmp_path: Path,
) -> None:
    source = tmp_path / "source.duckdb"
    _fill(source, "new")
    with Store(source, read_only=True) as store:
        create_backup(store.con, tmp_path / "new.zip")
    target = tmp_path / "target.duckdb"
    _fill(target, "old")
    killed = 0
    for delay in (0.5, 1.0, 2.0, 3.0):
        start = time.monotonic()
        code = _killed_after(
            ["restore", str(tmp_path / "new.zip"), "--db", str(target), "--force"], delay
        )
        killed += code == -signal.SIGKILL
        with Store(target) as store:
            tags = store.con.execute(
                "SELECT DISTINCT split_part(message_id, '-', 1) FROM events"
            ).fetchall()
            count = store.con.execute("SELECT count(*) FROM events").fetchall()[0][0]
        assert count == EVENTS and tags in ([("old",)], [("new",)]), (delay, tags)
        if code == 0:
            assert tags == [("new",)]
            break
        assert time.monotonic() - start < 60
    assert killed >= 1, "every restore finished before the kill: nothing was interrupted"
    # A later restore cleans up what a killed one left beside the target.
    restore_backup(tmp_path / "new.zip", target, force=True)
    assert not (tmp_path / "target.duckdb.restoring").exists()
    with Store(target) as store:
        assert store.con.execute(
            "SELECT count(*) FROM events WHERE starts_with(message_id, 'new-')"
        ).fetchall() == [(EVENTS,)]
