"""`make bench`: every benchmark, each against a baseline measured in the same run."""

from __future__ import annotations

import platform
import time

from rich.console import Console
from rich.table import Table

from bench import identity, ingest, journeys, load, metrics, nba, policy, scale, text, web

console = Console(width=150)


def main() -> None:
    console.print(
        f"OpenCX benchmarks on {platform.machine()} {platform.processor() or ''}, "
        f"Python {platform.python_version()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )
    table = Table("benchmark", "result", "baseline (same run)", "ratio", "target")

    console.print("ingestion over HTTP (100-event batches, acknowledged once committed)…")
    http = ingest.run()
    table.add_row(
        "ingest /v1/batch, events/s",
        f"{http['opencx_events_s']:,.0f} median of "
        f"{', '.join(f'{r:,.0f}' for r in http['opencx_runs'])} ({http['errors']} errors, "
        f"{http['stored']:,}/{http['expected']:,} stored)",
        f"bare JSON endpoint {http['bare_events_s']:,.0f}",
        f"{http['ratio']:.2f}",
        ">= 30,000 events/s; ratio ~0.5",
    )

    console.print(f"load test: {load.TARGET_EVENTS_S:,} events/s for {load.DEFAULT_SECONDS:.0f} s…")
    held = load.run()
    table.add_row(
        "load test, /v1/batch at the target rate",
        load.describe(held),
        f"bare JSON endpoint, same schedule: p99 {held['baseline']['p99_ms']:.1f} ms",
        f"{held['p99_ratio']:.1f}",
        "30,000 events/s held, 0 errors, flat memory",
    )

    console.print("identity rebuild, 1 M identifiers…")
    ident = identity.run()
    table.add_row(
        "identity rebuild",
        f"{ident['rebuild_s']:.2f} s for {ident['identifiers']:,} identifiers, "
        f"{ident['events']:,} events → {ident['profiles']:,} profiles",
        f"second rebuild {ident['rebuild_again_s']:.2f} s "
        f"({ident['moved_on_second']} events moved)",
        f"{ident['rebuild_again_s'] / ident['rebuild_s']:.2f}",
        "< 5 s",
    )
    console.print("customer-360 page on the sample brand (5,000 customers)…")
    page = web.run()
    table.add_row(
        "customer-360 page, p95 of 100 customers",
        f"{page['p95_ms']:.0f} ms (p50 {page['p50_ms']:.0f} ms, {page['events']:,} events)",
        f"sign-in page p95 {page['baseline_p95_ms']:.1f} ms",
        f"{page['p95_ms'] / page['baseline_p95_ms']:.1f}",
        "< 300 ms",
    )
    console.print("next best action on the sample brand (5,000 customers)…")
    best = nba.run()
    table.add_row(
        "next best action, p95 over customers and channels",
        f"{best['p95_ms']:.1f} ms (p50 {best['p50_ms']:.1f} ms, {best['people']} people, "
        f"{best['events']:,} events)",
        f"get_profile p95 {best['baseline_p95_ms']:.1f} ms",
        f"{best['p95_ms'] / best['baseline_p95_ms']:.2f}",
        "< 50 ms",
    )
    table.add_row(
        "contact-policy dry run, 30 days of the sample brand",
        f"{best['simulation_s']:.1f} s ({best['simulation_proposals']:,} contacts to "
        f"{best['simulation_people']:,} people; {best['simulation_sent']:,} would be sent)",
        "target 60 s",
        f"{best['simulation_s'] / 60:.2f}",
        "< 60 s",
    )
    console.print("text analytics: sentiment on held-out labelled snippets, 100,000 verbatims…")
    voc = text.run()
    vader = voc["sentiment"]["vader"]["macro_f1"]
    for name, s in voc["sentiment"].items():
        table.add_row(
            f"sentiment macro-F1, {name}",
            f"{s['macro_f1']:.3f} (accuracy {s['accuracy']:.3f}, {s['n']:,} held-out snippets)",
            f"plain VADER {vader:.3f}",
            f"{s['macro_f1'] / vader:.2f}",
            ">= 0.527 (embedding: aim 0.63)",
        )
    table.add_row(
        "100,000 verbatims: sentiment + theme tagging",
        f"{voc['analyse_s']:.1f} s (sentiment {voc['sentiment_s']:.1f} s, tagging "
        f"{voc['tagging_s']:.1f} s, {voc['themes']} themes; top negative: "
        f"{voc['top_negative'][0]})",
        f"generating them {voc['generate_s']:.1f} s",
        f"{voc['analyse_s'] / voc['generate_s']:.1f}",
        "< 60 s",
    )
    console.print("journeys: 4-step funnel and transitions over 10 M synthetic events…")
    jour = journeys.run()
    for rule in ("first", "any"):
        f = jour[f"funnel_{rule}"]
        table.add_row(
            f"funnel, 4 steps, 7-day window, start={rule}",
            f"{f['opencx_s']:.2f} s median of {', '.join(f'{r:.2f}' for r in f['opencx_runs'])} "
            f"({f['entered'][-1]:,} of {f['entered'][0]:,} customers reach step 4)",
            f"hand-written SQL {f['sql_s']:.2f} s",
            f"{f['ratio']:.2f}",
            "≤ 1.25x and < 1.5 s",
        )
    t = jour["transitions"]
    table.add_row(
        "transitions (repeats collapsed, entries and exits)",
        f"{t['opencx_s']:.2f} s median of {', '.join(f'{r:.2f}' for r in t['opencx_runs'])} "
        f"({t['pairs']} pairs of {t['touchpoints']} touchpoints)",
        f"hand-written SQL {t['sql_s']:.2f} s",
        f"{t['ratio']:.2f}",
        "≤ 1.25x",
    )
    table.add_row(
        "journeys: generating the log in SQL",
        f"{jour['generate_s']:.1f} s for {jour['events']:,} events, {jour['people']:,} customers",
        "",
        "",
        "< 60 s",
    )
    table.add_row(
        "journeys: peak RSS (its own process)", f"{jour['peak_rss_mb']:,.0f} MB", "", "", ""
    )
    console.print("KPIs over 1 M survey answers, segment refresh over 1 M profiles…")
    m = metrics.run()
    k, r = m["kpis"], m["refresh"]
    table.add_row(
        "NPS by channel, 1 M answers",
        f"{k['nps_by_channel_s']:.2f} s (CSAT by segment {k['csat_by_segment_s']:.2f} s, "
        f"alert scan {k['alerts_s']:.2f} s)",
        f"plain SQL {k['baseline_nps_sql_s']:.2f} s",
        f"{k['nps_by_channel_s'] / k['baseline_nps_sql_s']:.1f}",
        "< 5 s",
    )
    table.add_row(
        "segment refresh, 1 M profiles",
        f"{r['members_s']:.2f} s ({r['members']:,} members; 3 saved sizes {r['sizes_s']:.2f} s)",
        f"hand-written SQL {r['baseline_rule_sql_s']:.2f} s",
        f"{r['members_s'] / r['baseline_rule_sql_s']:.1f}",
        "< 5 s",
    )
    console.print("contact policy: decisions over 1 M profiles with 30 days of history…")
    pol = policy.run()
    table.add_row(
        "contact-policy decisions/s, 1 M profiles",
        f"{pol['decisions_s']:,.0f}/s ({pol['states']:,} states bulk-loaded in "
        f"{pol['load_s']:.1f} s from {pol['events']:,} events; point read p95 "
        f"{pol['point_p95_ms']:.0f} ms)",
        f"trivial budget check {pol['baseline_s_per']:,.0f}/s",
        f"{pol['decisions_s'] / pol['baseline_s_per']:.2f}",
        ">= 5,000/s",
    )
    console.print("scale: funnel, transitions, KPIs, segments, identity from 1 M to 50 M…")
    for row in scale.rows(scale.run(progress=console.print)):
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
