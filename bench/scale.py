"""Scale: funnel, transitions, KPIs, segment refresh and identity from 1 M to 50 M, with exponents.

Each analytic runs at several sizes on the embedded engine (DuckDB) and the growth of
its time with data is fitted as the slope of log(seconds) against log(size): 1.0 is
linear, less means fixed costs still matter at the small end. Every figure has a ratio
measured in the same run: the funnel against hand-written SQL (as bench/journeys.py
does, and checked to give the same table), the others as time per million rows against
the 1 M run.

Data comes from the other benchmarks' generators (bench/journeys.py for the log,
bench/metrics.py for survey answers and profiles, bench/identity.py for identifier
chains), written once per size into a DuckDB file in a temporary folder by one child
process; each analytic then runs in a fresh child process over that file, so the peak
RSS reported (ru_maxrss, which counts DuckDB's memory too) is that analytic's alone.

Every analytic goes to 50 M rows by default (identity to 10 M identifiers); the flags
shorten a run, e.g. `python -m bench.scale --max-answers 10M --max-profile-events 10M`.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import ibis

from bench import identity, journeys, metrics
from opencx.config import load_settings
from opencx.identity import rebuild
from opencx.journeys import FunnelQuery, FunnelStep, PathQuery, run_funnel, transitions
from opencx.metrics import kpi
from opencx.segments import segment_expression
from opencx.store import Store
from opencx.warehouse import embedded

SIZES = (1_000_000, 10_000_000, 50_000_000)
IDENTIFIER_SIZES = (1_000_000, 10_000_000)
RUNS = 3  # timed runs after one warm-up; the median is reported
IDENTITY_RUNS = 1  # a rebuild rewrites the stored state: one timed run, no warm-up
EVENTS_PER_PERSON = 20  # the journeys log: 500 K customers for 10 M events
ANSWERS_PER_RESPONDENT = 10 / 3  # bench/metrics.py: 300 K respondents for 1 M answers
# bench/identity.py's chains: anonymous id, user id, email, phone, and a second device
# for one person in four.
IDENTIFIERS_PER_PERSON = 4.25
DEFAULT_MAX = {
    "events": 50_000_000,
    "answers": 50_000_000,
    "profile_events": 50_000_000,
    "identifiers": 10_000_000,
}
FUNNEL_TARGET = 1.1  # issue 10: funnel time at most linear in events, 1 M to 50 M

# Which generator fills a file for each analytic, and which size axis it grows along.
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "journeys": ("events", ("funnel", "transitions")),
    "answers": ("answers", ("kpis",)),
    "profiles": ("profile_events", ("refresh",)),
    "identity": ("identifiers", ("identity",)),
}


def parse_count(text: str) -> int:
    """`50M`, `20k`, `1_000_000` or `10000000` as a count; `parse_count("50M") == 50_000_000`."""
    value = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(value[-1:], 1)
    digits = value[:-1] if scale > 1 else value
    try:
        count = float(digits) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a count: give digits with an optional k or M, e.g. 10M"
        ) from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: a count must be at least 1")
    return int(count)


def fit_exponent(sizes: Sequence[float], seconds: Sequence[float]) -> float:
    """The least-squares slope of log(seconds) against log(size): time ~ size ** slope."""
    if len(sizes) != len(seconds) or len(sizes) < 2:
        raise ValueError("an exponent needs at least two (size, seconds) points")
    slope, _ = statistics.linear_regression(
        [math.log(s) for s in sizes], [math.log(t) for t in seconds]
    )
    return slope


def _timed(work: Callable[[], Any], runs: int) -> tuple[float, list[float], Any]:
    """Median and all of `runs` timed calls after one warm-up, and the last result."""
    result = work()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times, result


@contextmanager
def _metrics_sized(**constants: int) -> Iterator[None]:
    """bench/metrics.py's generators take their sizes from module constants."""
    saved = {name: getattr(metrics, name) for name in constants}
    for name, value in constants.items():
        setattr(metrics, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(metrics, name, value)


# Generators: each fills a store's connection at one size.


def generate_journeys(store: Store, events: int) -> dict[str, Any]:
    people = max(1, events // EVENTS_PER_PERSON)
    journeys.generate(store.con, events, people)
    return {"rows": events, "people": people}


def generate_answers(store: Store, answers: int) -> dict[str, Any]:
    respondents = max(1, round(answers / ANSWERS_PER_RESPONDENT))
    with _metrics_sized(ANSWERS=answers, RESPONDENTS=respondents):
        metrics.generate_answers(store.con)
    return {"rows": answers, "people": respondents}


def generate_profiles(store: Store, events: int) -> dict[str, Any]:
    profiles = max(1, events // metrics.EVENTS_PER_PROFILE)
    with _metrics_sized(PROFILES=profiles):
        metrics.generate_profiles(store.con)
    return {"rows": profiles * metrics.EVENTS_PER_PROFILE, "people": profiles}


def generate_identity(store: Store, identifiers: int) -> dict[str, Any]:
    people = max(1, round(identifiers / IDENTIFIERS_PER_PERSON))
    rows = identity.load(store, identity.chains(people))
    store.con.execute("CHECKPOINT")
    return {"rows": identifiers, "people": people, "events": rows}


GENERATORS: dict[str, Callable[[Store, int], dict[str, Any]]] = {
    "journeys": generate_journeys,
    "answers": generate_answers,
    "profiles": generate_profiles,
    "identity": generate_identity,
}


# Measurements: each times one analytic on a filled connection.


def measure_funnel(con: duckdb.DuckDBPyConnection, runs: int = RUNS) -> dict[str, Any]:
    """The 4-step, 7-day funnel (start=first) against hand-written SQL; same table or stop."""
    warehouse = embedded(con)
    query = FunnelQuery(
        steps=tuple(FunnelStep(event=s) for s in journeys.STEPS),
        window=timedelta(hours=journeys.WINDOW_HOURS),
        start="first",
    )
    sql = journeys.hand_written_funnel(journeys.STEPS, journeys.WINDOW_HOURS, "first")
    ours_s, ours_runs, ours = _timed(
        lambda: journeys._funnel_table(run_funnel(query, warehouse)), runs
    )
    sql_s, sql_runs, theirs = _timed(
        lambda: journeys._sql_funnel_table(con.execute(sql).fetchall()), runs
    )
    journeys._check("funnel, start=first", ours, theirs)
    return {
        "seconds": ours_s,
        "runs": ours_runs,
        "sql_s": sql_s,
        "sql_runs": sql_runs,
        "entered": [row[1] for row in ours],
    }


def measure_transitions(con: duckdb.DuckDBPyConnection, runs: int = RUNS) -> dict[str, Any]:
    """Transitions between the log's default touchpoints (repeats collapsed, entries, exits)."""
    warehouse = embedded(con)
    model = journeys._model(con)
    seconds, times, flows = _timed(lambda: transitions(PathQuery(), warehouse, model), runs)
    return {
        "seconds": seconds,
        "runs": times,
        "pairs": len(flows),
        "touchpoints": len(model.touchpoints),
    }


def measure_kpis(con: duckdb.DuckDBPyConnection, runs: int = RUNS) -> dict[str, Any]:
    """NPS by channel and CSAT by segment (bench/metrics.py's five overlapping segments)."""
    warehouse = embedded(con)
    segments = warehouse.backend.table("bench_segments")
    nps_s, nps_runs, nps = _timed(
        lambda: kpi(warehouse, "nps", start_at=None, end_at=None, by="channel"), runs
    )
    csat_s, csat_runs, csat = _timed(
        lambda: kpi(warehouse, "csat", start_at=None, end_at=None, by="segment", segments=segments),
        runs,
    )
    return {
        "seconds": nps_s + csat_s,
        "runs": [a + b for a, b in zip(nps_runs, csat_runs, strict=True)],
        "nps_by_channel_s": nps_s,
        "csat_by_segment_s": csat_s,
        "nps_answers": nps.overall.n if nps.overall else 0,
        "channels": len(nps.groups),
        "segments": len(csat.groups),
    }


def measure_refresh(con: duckdb.DuckDBPyConnection, runs: int = RUNS) -> dict[str, Any]:
    """A segment refresh: bench/metrics.py's rule evaluated to its members (Arrow)."""
    warehouse = embedded(con)
    seconds, times, members = _timed(
        lambda: segment_expression(warehouse, metrics.RULE, metrics.NOW).to_pyarrow(), runs
    )
    return {"seconds": seconds, "runs": times, "members": members.num_rows}


def measure_identity(con: duckdb.DuckDBPyConnection, runs: int = IDENTITY_RUNS) -> dict[str, Any]:
    """A full identity rebuild from the log; one run by default (it rewrites the state, and
    bench/identity.py already times a second rebuild at 1 M)."""
    settings = load_settings().identity
    times = []
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        report = rebuild(con, settings)
        times.append(time.perf_counter() - started)
    return {
        "seconds": statistics.median(times),
        "runs": times,
        "identifiers": report.identifiers,
        "profiles": report.profiles,
    }


MEASURES: dict[str, Callable[[duckdb.DuckDBPyConnection, int], dict[str, Any]]] = {
    "funnel": measure_funnel,
    "transitions": measure_transitions,
    "kpis": measure_kpis,
    "refresh": measure_refresh,
    "identity": measure_identity,
}


def _peak_rss_mb() -> float:
    """This process's peak RSS (DuckDB works inside it, so it counts too). `VmHWM` is the
    new process image's own high-water mark; `ru_maxrss` survives exec on Linux, so a
    child spawned by a large parent (as in `make bench`) would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _open(path: str) -> Store:
    store = Store(path)
    # DuckDB draws a progress bar on long queries when it thinks it has a terminal.
    store.con.execute("SET enable_progress_bar = false")
    return store


def generate_file(family: str, path: str, size: int) -> dict[str, Any]:
    """Fill a new DuckDB file with one family's data (run in a child process)."""
    with _open(path) as store:
        started = time.perf_counter()
        out = GENERATORS[family](store, size)
        out["generate_s"] = time.perf_counter() - started
    out["file_mb"] = os.path.getsize(path) / 1e6
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def measure_file(analytic: str, path: str, runs: int) -> dict[str, Any]:
    """Time one analytic over a filled file (run in a fresh child process)."""
    with _open(path) as store:
        out = MEASURES[analytic](store.con, runs)
    out["peak_rss_mb"] = _peak_rss_mb()
    return out


def in_child(work: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """`work(*args)` in a fresh spawned process, so its peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(work, *args).result()


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    tmp = tempfile.gettempdir()
    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "ram_gb": pages / 2**30,
        "tmp_free_gb": os.statvfs(tmp).f_bavail * os.statvfs(tmp).f_frsize / 2**30,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "ibis": ibis.__version__,
    }


def load_average() -> str:
    """The 1, 5 and 15-minute load averages, as /proc/loadavg gives them."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run(
    maxima: dict[str, int] | None = None,
    *,
    sizes: Sequence[int] = SIZES,
    identifier_sizes: Sequence[int] = IDENTIFIER_SIZES,
    runs: int = RUNS,
    families: Sequence[str] = tuple(FAMILIES),
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Every analytic at every size up to its maximum; the curves and their exponents."""
    limits = {**DEFAULT_MAX, **(maxima or {})}
    out: dict[str, Any] = {
        "machine": machine(),
        "load_before": load_average(),
        "curves": {},
        "limits": limits,
    }
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="opencx-scale-") as tmp:
        for family in families:
            axis, analytics = FAMILIES[family]
            ladder = identifier_sizes if family == "identity" else sizes
            for size in [s for s in ladder if s <= limits[axis]]:
                path = str(Path(tmp) / f"{family}-{size}.duckdb")
                progress(f"{family}: generating {size:,} {axis.replace('_', ' ')}…")
                data = in_child(generate_file, family, path, size)
                for analytic in analytics:
                    times = IDENTITY_RUNS if analytic == "identity" else runs
                    result = in_child(measure_file, analytic, path, times)
                    out["curves"].setdefault(analytic, []).append(
                        {"size": size, "axis": axis, "data": data, **result}
                    )
                    progress(
                        f"{analytic} at {size:,}: {result['seconds']:.2f} s, "
                        f"peak RSS {result['peak_rss_mb']:,.0f} MB "
                        f"(data {data['generate_s']:.0f} s; load average {load_average()})"
                    )
                Path(path).unlink()
    out["seconds"] = time.perf_counter() - started
    out["load_after"] = load_average()
    for analytic, points in out["curves"].items():
        _add_ratios(points, "sql_s" if analytic == "funnel" else None)
    out["exponents"] = exponents(out["curves"])
    return out


def _add_ratios(points: list[dict[str, Any]], baseline: str | None) -> None:
    """Each point's ratio: to its same-run baseline, else its time per million rows against
    the smallest size's (1.0 is linear growth, above it superlinear)."""
    first = points[0]
    per_million = first["seconds"] / first["size"] * 1e6
    for p in points:
        p["s_per_million"] = p["seconds"] / p["size"] * 1e6
        p["ratio"] = p["seconds"] / p[baseline] if baseline else p["s_per_million"] / per_million


def exponents(curves: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The fitted exponent of each curve with two sizes or more (and of the funnel's SQL)."""
    out: dict[str, dict[str, Any]] = {}
    for analytic, points in curves.items():
        if len(points) < 2:
            continue
        sizes = [p["size"] for p in points]
        fit = {
            "exponent": fit_exponent(sizes, [p["seconds"] for p in points]),
            "from": sizes[0],
            "to": sizes[-1],
        }
        if analytic == "funnel":
            fit["sql_exponent"] = fit_exponent(sizes, [p["sql_s"] for p in points])
        out[analytic] = fit
    return out


def _count(n: int) -> str:
    return f"{n / 1e6:g} M" if n >= 1_000_000 else f"{n / 1e3:g} k"


_LABELS = {
    "funnel": "funnel, 4 steps, 7 days, start=first",
    "transitions": "transitions (repeats collapsed)",
    "kpis": "NPS by channel + CSAT by segment",
    "refresh": "segment refresh (rule → members)",
    "identity": "identity rebuild",
}


def _detail(analytic: str, p: dict[str, Any]) -> str:
    data = p["data"]
    if analytic == "funnel":
        return f"{p['entered'][-1]:,} of {p['entered'][0]:,} reach step 4"
    if analytic == "transitions":
        return f"{p['pairs']} pairs"
    if analytic == "kpis":
        return f"NPS {p['nps_by_channel_s']:.2f} s, CSAT {p['csat_by_segment_s']:.2f} s"
    if analytic == "refresh":
        return f"{data['people']:,} profiles, {p['members']:,} members"
    return f"{data['events']:,} events → {p['profiles']:,} profiles"


def rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Table rows (benchmark, result, baseline, ratio, target) for `make bench`."""
    m = result["machine"]
    out = [
        (
            "scale: machine",
            f"{m['cores']} cores, {m['ram_gb']:.0f} GB RAM, {m['tmp_free_gb']:.0f} GB free for "
            f"temp files; Python {m['python']}, DuckDB {m['duckdb']}, Ibis {m['ibis']}",
            f"load average {result['load_before']} before, {result['load_after']} after",
            "",
            f"{result['seconds']:.0f} s in all",
        )
    ]
    for analytic, points in result["curves"].items():
        unit = points[0]["axis"].replace("profile_events", "events").replace("_", " ")
        for p in points:
            size = p["size"]
            baseline = (
                f"hand-written SQL {p['sql_s']:.2f} s"
                if analytic == "funnel"
                else f"{_count(points[0]['size'])} run: {points[0]['s_per_million']:.2f} s per M"
            )
            out.append(
                (
                    f"{_LABELS[analytic]}, {_count(size)} {unit}",
                    f"{p['seconds']:.2f} s (runs {', '.join(f'{r:.2f}' for r in p['runs'])}; "
                    f"{_detail(analytic, p)}; peak RSS {p['peak_rss_mb']:,.0f} MB; "
                    f"data {p['data']['generate_s']:.0f} s, {p['data']['file_mb']:,.0f} MB)",
                    baseline,
                    f"{p['ratio']:.2f}",
                    "≤ 1.25x" if analytic == "funnel" else "per-M ratio ~1",
                )
            )
        fit = result["exponents"].get(analytic)
        if fit:
            sql = f"hand-written SQL {fit['sql_exponent']:.2f}" if "sql_exponent" in fit else ""
            out.append(
                (
                    f"{_LABELS[analytic]}: growth exponent",
                    f"{fit['exponent']:.2f} from {_count(fit['from'])} to {_count(fit['to'])}",
                    sql,
                    "",
                    f"≤ {FUNNEL_TARGET}" if analytic == "funnel" else "",
                )
            )
    return out


def parse_args(argv: Sequence[str] | None = None) -> tuple[dict[str, int], int]:
    """The command line's largest size per axis, and the number of timed runs."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    for name, default in DEFAULT_MAX.items():
        flag = "--max-" + name.replace("_", "-")
        parser.add_argument(flag, type=parse_count, default=default, help=f"default {default:,}")
    parser.add_argument("--runs", type=int, default=RUNS, help="timed runs after a warm-up")
    args = parser.parse_args(argv)
    return {name: getattr(args, f"max_{name}") for name in DEFAULT_MAX}, args.runs


def main(argv: Sequence[str] | None = None) -> None:
    from rich.console import Console
    from rich.table import Table

    maxima, runs = parse_args(argv)
    console = Console(width=150)
    result = run(maxima, runs=runs, progress=console.print)
    table = Table("benchmark", "result", "baseline (same run)", "ratio", "target")
    for row in rows(result):
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
