"""Admin API: a backup of the running server's database, as a file download, and the
Parquet export other engines read."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from opencx.api.deps import AdminDep, StateDep
from opencx.store import MEMORY
from opencx.store.backup import create_backup
from opencx.warehouse import sync_parquet, warehouse_folder

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


@router.post(
    "/backup",
    summary="Back up the database",
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "The backup file."}},
)
def backup(state: StateDep, _: AdminDep) -> FileResponse:
    """A consistent snapshot of the whole database (one zip with a manifest), taken while
    ingestion goes on; restore it with `opencx restore FILE --db NEW.duckdb`."""
    path = state.store.path
    near = Path(path).parent if path != MEMORY else None  # beside the data: same disk
    scratch = Path(tempfile.mkdtemp(prefix=".opencx-backup-", dir=near))
    try:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        file = scratch / f"opencx-backup-{stamp}.zip"
        manifest = create_backup(state.store.con, file)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return FileResponse(
        file,
        media_type="application/zip",
        filename=file.name,
        headers={
            "X-OpenCX-Schema-Version": str(manifest.schema_version),
            "X-OpenCX-Events": str(manifest.events),
        },
        background=BackgroundTask(shutil.rmtree, scratch, ignore_errors=True),
    )


@router.post("/export", summary="Bring the Parquet export for other engines up to date")
def export(state: StateDep, _: AdminDep) -> dict[str, Any]:
    """`opencx export parquet` for a running server (which holds the database): rewrites
    only the day partitions that changed, into the warehouse folder (`warehouse_dir`)."""
    folder = warehouse_folder(state.settings)
    report = sync_parquet(state.store.cursor(), folder)
    return {
        "folder": str(folder),
        "events": report.events,
        "written_days": len(report.written_days),
        "removed_days": len(report.removed_days),
        "unchanged_days": report.unchanged_days,
        "written_tables": list(report.written_tables),
    }
