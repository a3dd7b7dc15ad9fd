"""What every `opencx` command shares: consoles, the --db option, errors, progress bars."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from opencx.config import Settings, load_settings
from opencx.errors import InvalidInput, NotFound, OpenCXError
from opencx.identity import parse_identifier
from opencx.ingest import Ingestor
from opencx.journeys import TouchpointModel, touchpoint_model
from opencx.profiles import find_profiles
from opencx.store import Store
from opencx.warehouse import Warehouse, open_warehouse

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB database file [env OPENCX_DB; default ./opencx.duckdb]."),
]


def handles_errors(fn: F) -> F:
    """Print OpenCX errors as one clear line and exit with the error's code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OpenCXError as exc:
            # soft_wrap: one line however long, so scripts can grep it; escape: user text
            # such as '[red]' or '[/]' is printed as typed, not read as Rich markup.
            err_console.print(
                f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def settings_for(db: Path | None, **overrides: Any) -> Settings:
    return load_settings(db=db, **overrides)


@contextmanager
def open_store(settings: Settings) -> Iterator[Store]:
    store = Store.for_settings(settings)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def progress_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def read_text_file(file: Path) -> str:
    """A UTF-8 file the user named, or one clear error."""
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {file}: {exc.strerror}") from None


@contextmanager
def open_analytics(db: Path | None) -> Iterator[tuple[Store, Warehouse, TouchpointModel]]:
    """The store, its analytics engine (`OPENCX_WAREHOUSE`), and the touchpoint model."""
    settings = settings_for(db)
    with open_store(settings) as store:
        warehouse = open_warehouse(settings, store.con)
        yield store, warehouse, touchpoint_model(store.con, warehouse)


def resolve_person(store: Store, settings: Settings, identifier: str) -> str:
    """A profile id as typed (`p_…`), or the profile holding `KIND:VALUE`."""
    if identifier.startswith("p_") and ":" not in identifier:
        return identifier
    key = parse_identifier(identifier, Ingestor(store, settings).extractor)
    found = find_profiles(store.con, key)
    if not found:
        raise NotFound(f"no profile has the identifier {key}")
    return found[0]


def bar_chart(items: list[tuple[str, float]], *, width: int = 30, colour: str = "blue") -> Table:
    """Horizontal bars in the terminal: label, bar, value."""
    table = Table.grid(padding=(0, 1))
    top = max((abs(v) for _, v in items), default=0) or 1
    for label, value in items:
        bar = "█" * round(width * abs(value) / top)
        table.add_row(escape(label), f"[{colour}]{bar}[/]", f"{value:,.0f}")
    return table
