"""Backups: one consistent snapshot of the database in one file, and a verified restore.

A backup is a zip holding `manifest.json` and the output of DuckDB's `EXPORT DATABASE`
(Parquet per table, `schema.sql`, `load.sql`). The export and the row counts in the
manifest are taken in one transaction, so they describe one snapshot even while the
server keeps writing (DuckDB's MVCC). Restore checks the manifest (format, schema
version, SHA-256 of every file), imports into a scratch file next to the target,
checks every table's row count, migrates forward, and only then moves it into place.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import orjson

from opencx import __version__
from opencx.errors import Conflict, InvalidInput, StoreUnavailable
from opencx.store._connection import fetch_one, migrate
from opencx.store._schema import MIGRATIONS

FORMAT = "opencx-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_EXPORT = "export/"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BackupManifest:
    """What a backup holds: versions, when it was taken, row counts, file checksums."""

    opencx_version: str
    duckdb_version: str
    schema_version: int
    created_at: str
    tables: dict[str, int]
    files: dict[str, str]

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"format": FORMAT, "format_version": FORMAT_VERSION, **self.__dict__},
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )

    @property
    def events(self) -> int:
        return self.tables.get("events", 0)


@dataclass(frozen=True)
class RestoreReport:
    """What a restore wrote: the target, the backup's versions, and the rows per table."""

    path: str
    backup_schema_version: int
    schema_version: int
    tables: dict[str, int]


def create_backup(con: duckdb.DuckDBPyConnection, dest: Path | str) -> BackupManifest:
    """Write a consistent backup of the database behind `con` to the file `dest`.

    Safe while other threads write through the same database: the export reads one
    snapshot. The file appears only once complete (written aside, then renamed).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _scratch_dir(dest.parent) as scratch:
        export = scratch / "export"
        with con.cursor() as cur:
            cur.execute("SET TimeZone = 'UTC'")
            cur.execute("BEGIN TRANSACTION")
            try:
                version = schema_version_readonly(cur)
                tables = _row_counts(cur)
                cur.execute(
                    f"EXPORT DATABASE {_sql_string(str(export))} (FORMAT parquet, COMPRESSION zstd)"
                )
            finally:
                cur.execute("ROLLBACK")  # read-only: nothing to keep
        schema = export / "schema.sql"
        schema.write_text(_dependency_order(schema.read_text(encoding="utf-8")), encoding="utf-8")
        files = {p.name: _sha256(p) for p in sorted(export.iterdir())}
        manifest = BackupManifest(
            opencx_version=__version__,
            duckdb_version=duckdb.__version__,
            schema_version=version,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            tables=tables,
            files=files,
        )
        partial = scratch / "backup.zip"
        with zipfile.ZipFile(partial, "w") as zf:
            zf.writestr(MANIFEST, manifest.to_json(), compress_type=zipfile.ZIP_DEFLATED)
            for name in files:
                # Parquet is compressed already; the SQL scripts are tiny.
                kind = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
                zf.write(export / name, _EXPORT + name, compress_type=kind)
        os.replace(partial, dest)
    return manifest


def read_manifest(file: Path | str) -> BackupManifest:
    """The manifest of a backup file, checked for format and completeness (not checksums)."""
    with _open_zip(Path(file)) as zf:
        return _manifest(zf, Path(file))


def verify_backup(file: Path | str) -> BackupManifest:
    """Check every file in a backup against the manifest's SHA-256; the manifest if whole."""
    path = Path(file)
    with _open_zip(path) as zf:
        manifest = _manifest(zf, path)
        for name, expected in manifest.files.items():
            if _member_sha256(zf, path, name) != expected:
                raise InvalidInput(
                    f"backup {path} is corrupted: {name} does not match its checksum in the "
                    "manifest; use another backup"
                )
    return manifest


def restore_backup(file: Path | str, target: Path | str, *, force: bool = False) -> RestoreReport:
    """Restore a backup into the database file `target`, verified, migrated forward.

    Refuses a backup of a newer schema than this code knows, a corrupted or truncated
    backup, and an existing database with data in it unless `force` (then it is
    replaced as a whole, never merged). The target must not be open elsewhere.
    """
    path, target = Path(file), Path(target)
    manifest = verify_backup(path)
    known = MIGRATIONS[-1][0]
    if manifest.schema_version > known:
        raise Conflict(
            f"backup {path} has schema version {manifest.schema_version}, newer than this "
            f"OpenCX {__version__} knows ({known}): restore it with OpenCX "
            f"{manifest.opencx_version} or later"
        )
    if target.exists():
        _check_replaceable(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".restoring")
    _remove_database(staging)
    with _scratch_dir(target.parent) as scratch:
        export = scratch / "export"
        export.mkdir()
        with _open_zip(path) as zf:
            for name in manifest.files:
                with zf.open(_EXPORT + name) as src, (export / name).open("wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
        try:
            tables = _import(export, staging, manifest, path)
        except BaseException:
            _remove_database(staging)
            raise
    wal = Path(str(target) + ".wal")
    if wal.exists():
        wal.unlink()  # checkpointed above; a stale WAL must never replay onto the new file
    os.replace(staging, target)
    return RestoreReport(
        path=str(target),
        backup_schema_version=manifest.schema_version,
        schema_version=known,
        tables=tables,
    )


def schema_version_readonly(con: duckdb.DuckDBPyConnection) -> int:
    """The database's schema version without creating anything (0 for an empty file)."""
    row = fetch_one(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = 'schema_migrations'"
        )
    )
    if not row or not row[0]:
        return 0
    found = fetch_one(con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations"))
    return int(found[0]) if found else 0


def _dependency_order(schema_sql: str) -> str:
    """`schema.sql` with each view after the views it reads.

    DuckDB 2.0's export writes views in name order, so `analytics_events` comes before
    the `resolved_events` it selects from and `IMPORT DATABASE` fails. Creating the
    statements in an empty in-memory database, deferring any that name something not
    created yet, finds an order that works.
    """
    scratch = duckdb.connect()
    try:
        pending = [s.query.strip() for s in scratch.extract_statements(schema_sql)]
        ordered: list[str] = []
        while pending:
            deferred = []
            for statement in pending:
                try:
                    scratch.execute(statement)
                except duckdb.CatalogException:
                    deferred.append(statement)
                else:
                    ordered.append(statement)
            if len(deferred) == len(pending):
                raise StoreUnavailable(
                    "cannot order the database schema for a backup: " + "; ".join(deferred)[:500]
                )
            pending = deferred
    finally:
        scratch.close()
    return "\n".join(s if s.endswith(";") else s + ";" for s in ordered) + "\n"


def _row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    names = [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND NOT temporary ORDER BY table_name"
        ).fetchall()
    ]
    counts: dict[str, int] = {}
    for name in names:
        row = fetch_one(con.execute(f"SELECT count(*) FROM {_ident(name)}"))
        counts[name] = int(row[0]) if row else 0
    return counts


def _import(export: Path, staging: Path, manifest: BackupManifest, source: Path) -> dict[str, int]:
    con = duckdb.connect(str(staging))
    try:
        con.execute("SET TimeZone = 'UTC'")
        try:
            con.execute(f"IMPORT DATABASE {_sql_string(str(export))}")
        except duckdb.Error as exc:
            raise InvalidInput(f"backup {source} could not be loaded: {exc}") from None
        restored = _row_counts(con)
        if restored != manifest.tables:
            wrong = sorted(
                f"{name}: {restored.get(name, 'missing')} rows, manifest says "
                f"{manifest.tables.get(name, 'nothing')}"
                for name in set(restored) | set(manifest.tables)
                if restored.get(name) != manifest.tables.get(name)
            )
            raise InvalidInput(
                f"backup {source} does not restore to what its manifest records: "
                + "; ".join(wrong)
            )
        found = schema_version_readonly(con)
        if found != manifest.schema_version:
            raise InvalidInput(
                f"backup {source} holds schema version {found}, its manifest says "
                f"{manifest.schema_version}"
            )
        migrate(con)
        con.execute("CHECKPOINT")
        return restored
    finally:
        con.close()


def _check_replaceable(target: Path, force: bool) -> None:
    try:
        con = duckdb.connect(str(target))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreUnavailable(
                f"database {target} is in use by another process (is `opencx serve` running on "
                "it?): stop it, or restore into another file and start the server on that"
            ) from None
        raise StoreUnavailable(f"cannot open database {target}: {exc}") from None
    try:
        rows = sum(n for name, n in _row_counts(con).items() if name != "schema_migrations")
        if rows and not force:
            raise Conflict(
                f"database {target} already holds data ({rows:,} rows): restore into a new "
                "file, or pass --force to replace it with the backup"
            )
        con.execute("CHECKPOINT")  # fold its WAL in, so nothing of it lingers beside the file
    finally:
        con.close()


def _manifest(zf: zipfile.ZipFile, path: Path) -> BackupManifest:
    try:
        raw = zf.read(MANIFEST)
    except KeyError:
        raise InvalidInput(f"{path} is not an OpenCX backup: it has no {MANIFEST}") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidInput(
            f"backup {path} is corrupted: {MANIFEST} cannot be read ({exc})"
        ) from None
    try:
        data: dict[str, Any] = orjson.loads(raw)
        if data.get("format") != FORMAT:
            raise InvalidInput(f"{path} is not an OpenCX backup (format {data.get('format')!r})")
        if data.get("format_version") != FORMAT_VERSION:
            raise InvalidInput(
                f"backup {path} has format version {data.get('format_version')!r}; this "
                f"OpenCX reads version {FORMAT_VERSION}"
            )
        manifest = BackupManifest(
            opencx_version=str(data["opencx_version"]),
            duckdb_version=str(data["duckdb_version"]),
            schema_version=int(data["schema_version"]),
            created_at=str(data["created_at"]),
            tables={str(k): int(v) for k, v in data["tables"].items()},
            files={str(k): str(v) for k, v in data["files"].items()},
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(f"backup {path} has an unreadable manifest: {exc}") from None
    present = set(zf.namelist())
    for name in manifest.files:
        if "/" in name or "\\" in name or name.startswith("."):
            raise InvalidInput(f"backup {path} names a file outside the backup: {name!r}")
        if _EXPORT + name not in present:
            raise InvalidInput(f"backup {path} is incomplete: {name} is missing")
    if "schema.sql" not in manifest.files or "load.sql" not in manifest.files:
        raise InvalidInput(f"backup {path} is incomplete: it has no schema.sql or load.sql")
    return manifest


@contextmanager
def _open_zip(path: Path) -> Iterator[zipfile.ZipFile]:
    if not path.is_file():
        raise InvalidInput(f"backup file {path} does not exist")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidInput(
            f"backup {path} is truncated or not an OpenCX backup (not a complete zip: {exc})"
        ) from None
    try:
        yield zf
    finally:
        zf.close()


def _member_sha256(zf: zipfile.ZipFile, path: Path, name: str) -> str:
    digest = hashlib.sha256()
    try:
        with zf.open(_EXPORT + name) as member:
            while chunk := member.read(_CHUNK):
                digest.update(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
        raise InvalidInput(f"backup {path} is corrupted: {name} cannot be read ({exc})") from None
    return digest.hexdigest()


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _scratch_dir(near: Path) -> Iterator[Path]:
    """A temporary folder beside `near` (same disk as the result, cleaned up after)."""
    path = Path(tempfile.mkdtemp(prefix=".opencx-backup-", dir=near))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _remove_database(path: Path) -> None:
    for leftover in (path, Path(str(path) + ".wal")):
        if leftover.exists():
            leftover.unlink()


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
