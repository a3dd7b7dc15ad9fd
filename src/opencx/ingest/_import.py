"""Bulk import of offline channels: JSONL (Segment spec), CSV and Parquet with a column map.

Rows become Segment messages and go through the same validation, deduplication and
identity path as the HTTP API. A row without a message id gets one derived from the
source and the row's content (as for any message without an id), so importing the same
file twice, or an export that overlaps the last one, adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from opencx.errors import InvalidInput
from opencx.ingest._pipeline import Ingestor, now_us
from opencx.ingest._validate import Failure, SourceContext

Progress = Callable[[int, int], None]
CHUNK_ROWS = 5_000

# Targets a column may be mapped to; anything else must be traits.X, properties.X or context.X.
MAP_TARGETS = (
    "type", "event", "name", "messageId", "userId", "anonymousId", "timestamp", "channel",
    "email", "phone", "first_name", "last_name", "groupId", "previousId",
)  # fmt: skip
_TRAIT_TARGETS = {"email", "phone", "first_name", "last_name"}


@dataclass(frozen=True)
class ImportReport:
    """What an import did: rows read, events stored, duplicates skipped, rows rejected."""

    rows: int
    accepted: int
    duplicates: int
    rejected: int


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """`['email=customer_email', 'event=interaction_type']` as {target: column}."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        target, sep, column = pair.partition("=")
        target, column = target.strip(), column.strip()
        if not sep or not target or not column:
            raise InvalidInput(f"--map {pair!r} must be TARGET=COLUMN, e.g. email=customer_email")
        if target not in MAP_TARGETS and not target.startswith(
            ("traits.", "properties.", "context.")
        ):
            raise InvalidInput(
                f"--map target {target!r} is unknown: use one of {', '.join(MAP_TARGETS)}, "
                "or traits.NAME, properties.NAME, context.NAME"
            )
        mapping[target] = column
    return mapping


def _detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt.lower()
    suffixes = [s.lower() for s in path.suffixes]
    for name in ("jsonl", "ndjson", "json", "csv", "tsv", "parquet"):
        if f".{name}" in suffixes:
            return {"ndjson": "jsonl", "json": "jsonl"}.get(name, name)
    raise InvalidInput(f"cannot tell the format of {path.name}: use --format jsonl|csv|parquet")


def count_rows(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    with path.open("rb") as fh:
        lines = sum(1 for line in fh if line.strip())
    return lines - 1 if fmt in ("csv", "tsv") else lines


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield number, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield number, _Unparsable(line.decode("utf-8", "replace"), str(exc))


@dataclass(frozen=True)
class _Unparsable:
    text: str
    error: str


def _table_rows(
    path: Path, fmt: str, mapping: Mapping[str, str]
) -> Iterator[tuple[int, dict[str, Any]]]:
    if fmt == "parquet":
        batches: Iterator[pa.RecordBatch] = pq.ParquetFile(path).iter_batches(CHUNK_ROWS)
    else:
        parse = pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",")
        # Ids and traits stay text, so '007' or a zip code '02134' keep their leading zeros;
        # timestamps and properties keep the inferred types (epoch numbers, amounts).
        text = {
            column: pa.string()
            for target, column in mapping.items()
            if target != "timestamp" and not target.startswith("properties.")
        }
        convert = pacsv.ConvertOptions(strings_can_be_null=True, column_types=text)
        batches = pacsv.open_csv(path, parse_options=parse, convert_options=convert)
    number = 1 if fmt == "parquet" else 2  # CSV row numbers count the header line
    for batch in batches:
        for row in batch.to_pylist():
            yield number, row
            number += 1


def row_to_message(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """A Segment message from one table row through the column map."""
    message: dict[str, Any] = {}
    for target, column in mapping.items():
        if column not in row:
            raise InvalidInput(f"column {column!r} (mapped to {target}) is not in the file")
        value = _plain(row[column])
        if value is None or value == "":
            continue
        if target in _TRAIT_TARGETS:
            message.setdefault("context", {}).setdefault("traits", {})[target] = value
        elif target == "channel":
            message.setdefault("context", {})["channel"] = value
        elif "." in target:
            head, _, name = target.partition(".")
            if head == "context" and name.startswith("traits."):
                message.setdefault("context", {}).setdefault("traits", {})[name[7:]] = value
            else:
                message.setdefault(head, {})[name] = value
        else:
            message[target] = value
    message.setdefault("type", "track")
    return message


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def import_file(
    ingestor: Ingestor,
    path: Path,
    source: SourceContext,
    *,
    mapping: Mapping[str, str] | None = None,
    constants: Mapping[str, str] | None = None,
    fmt: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one file through the ingestion pipeline; bad rows go to failed_events.

    `constants` sets a target to the same value on every row of a CSV or Parquet file,
    e.g. a survey export: `{"event": "Survey Responded", "properties.survey_type": "nps"}`.
    """
    if not path.is_file():
        raise InvalidInput(f"file {path} does not exist")
    kind = _detect_format(path, fmt)
    if kind not in ("jsonl", "csv", "tsv", "parquet"):
        raise InvalidInput(f"format must be jsonl, csv, tsv or parquet, got {kind!r}")
    if constants and kind == "jsonl":
        raise InvalidInput("--set applies to CSV and Parquet rows; JSONL lines are messages")
    if kind != "jsonl" and not mapping:
        raise InvalidInput(
            "a CSV or Parquet import needs a column map: --map event=COLUMN --map email=COLUMN "
            "--map timestamp=COLUMN ... (see `opencx import --help`)"
        )
    total = count_rows(path, kind)
    src = SourceContext(source.name, source.channel, origin=f"import:{path.name}")
    rows: Iterator[tuple[int, Any]] = (
        _jsonl_rows(path) if kind == "jsonl" else _table_rows(path, kind, mapping or {})
    )
    accepted = duplicates = rejected = done = 0
    chunk: list[Any] = []
    numbers: list[int] = []

    def flush() -> None:
        nonlocal accepted, duplicates, rejected, done
        good = [i for i, m in enumerate(chunk) if not isinstance(m, _Unparsable)]
        batch = ingestor.validate(
            [chunk[i] for i in good], src, row_numbers=[numbers[i] for i in good]
        )
        for i, message in enumerate(chunk):
            if isinstance(message, _Unparsable):
                batch.failures.append(
                    Failure(
                        index=i,
                        message_id=None,
                        payload=message.text,
                        errors=[{"field": "line", "message": f"line is not JSON: {message.error}"}],
                        source=src.name,
                        origin=src.origin,
                        received_at=now_us(),
                        row_number=numbers[i],
                    )
                )
        result = ingestor.writer.write(batch)
        accepted += result.accepted
        duplicates += result.duplicates
        rejected += result.rejected
        done += len(chunk)
        chunk.clear()
        numbers.clear()
        if progress is not None:
            progress(done, total)

    for number, raw in rows:
        if isinstance(raw, _Unparsable):
            message: Any = raw
        elif kind == "jsonl":
            message = raw
        elif constants:
            fixed = {f"\0{target}": value for target, value in constants.items()}
            both = {**(mapping or {}), **{target: f"\0{target}" for target in constants}}
            message = row_to_message({**raw, **fixed}, both)
        else:
            message = row_to_message(raw, mapping or {})
        chunk.append(message)
        numbers.append(number)
        if len(chunk) >= CHUNK_ROWS:
            flush()
    if chunk:
        flush()
    return ImportReport(rows=done, accepted=accepted, duplicates=duplicates, rejected=rejected)
