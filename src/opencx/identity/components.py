"""Identity resolution at scale: connected components on the analytics engine, then rules.

The engine (DuckDB or Spark, through Ibis) does the heavy part over the pseudonymised
`identity_edges` (each distinct identifier set's first event, one row per identifier):

1. **components** by min-label propagation: every key starts labelled with itself; each
   round, every identifier set takes the smallest label of its keys and every key the
   smallest label of its sets; it stops when no label changes (rounds ~ the longest
   chain of sets, a handful for anonymous -> email -> user_id across devices);
2. **rule check** per component, as in `identity/_rebuild.py`: a component is *clean*
   when no kind holds more keys than its limit (one `user_id` by default) and no blocked
   pair (a split) falls inside it. A clean component never meets a conflict, so it is
   one profile, founded by its first event: `p_` + MD5(message_id)[:16], as ingestion
   names it;
3. the few components where a rule bites are pulled to the driver and resolved event by
   event by `IdentityGraph`, with every rule (limits by priority, blocks, split origins),
   exactly as the embedded rebuild does.

So `resolve_identity_on_engine` gives the same owner of every identifier as
`rebuild_identity` (tests/identity/test_components.py checks it on DuckDB and Spark);
`resolve_components` alone is the engine-only answer, which differs on rule-bound
components (it marks them `clean = False` and leaves their `profile_id` empty).
Blocked values need nothing here: they never become identifiers at ingest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from opencx.config import IdentitySettings
from opencx.errors import InvalidInput
from opencx.identity.graph import IdentityGraph
from opencx.types import IdentifierKey, ProfileId
from opencx.warehouse import Warehouse

Block = tuple[IdentifierKey, IdentifierKey, ProfileId | None]


@ibis.udf.scalar.builtin(name="md5")
def _md5(text: str) -> str:  # type: ignore[empty-body]
    """MD5 as 32 hex digits (the same builtin on DuckDB and Spark)."""


def engine_key(key: IdentifierKey) -> str:
    """The pseudonymised form of `kind:value` that the export and the engine use."""
    return f"{key[: key.index(':')]}:{hashlib.md5(key.encode()).hexdigest()}"


@dataclass(frozen=True)
class EngineIdentity:
    """The owner of every (pseudonymised) identifier, and how the work was split."""

    owners: dict[str, ProfileId]
    components: int
    rule_bound_components: int
    rounds: int


def resolve_components(
    warehouse: Warehouse,
    settings: IdentitySettings,
    blocks: Iterable[tuple[str, str]] = (),
    *,
    max_rounds: int = 100,
) -> tuple[ir.Table, int]:
    """Each key's component, whether the component is clean, and its profile if so.

    Returns the table (key, component, clean, profile_id) and the rounds it took.
    `blocks` are pairs of keys in `engine_key` form.
    """
    edges = warehouse.identity_edges().select("seq", "message_id", "key")
    labels = _materialise(warehouse, "labels_0", edges.select("key", label=edges.key).distinct())
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        tagged = edges.join(labels, "key")
        per_set = tagged.group_by("seq").aggregate(set_label=tagged.label.min())
        spread = edges.join(per_set, "seq")
        new = _materialise(
            warehouse,
            f"labels_{rounds}",
            spread.group_by("key").aggregate(label=spread.set_label.min()),
        )
        moved = new.join(labels, "key").filter(lambda t: t.label != t.label_right)
        settled = moved.count().to_pyarrow().as_py() == 0
        _forget(warehouse, f"labels_{rounds - 1}")
        labels = new
        if settled:
            break
    else:
        raise InvalidInput(f"identity components did not settle in {max_rounds} rounds")
    keyed = labels.select("key", component=labels.label)
    kinds = keyed.mutate(kind=keyed.key.split(":")[0])
    per_kind = kinds.group_by(["component", "kind"]).aggregate(n=kinds.count())
    limit = ibis.literal(settings.default_limit)
    for kind, n in sorted(settings.limits.items()):
        limit = (per_kind.kind == kind).ifelse(n, limit)
    over = per_kind.filter(per_kind.n > limit).select("component").distinct()
    dirty = over
    pairs = [(a, b) for a, b in blocks]
    if pairs:
        blocked = ibis.memtable({"a": [a for a, _ in pairs], "b": [b for _, b in pairs]})
        ka = keyed.select(a=keyed.key, ca=keyed.component)
        kb = keyed.select(b=keyed.key, cb=keyed.component)
        inside = blocked.join(ka, "a").join(kb, "b")
        inside = inside.filter(inside.ca == inside.cb).select(component=inside.ca).distinct()
        dirty = dirty.union(inside, distinct=True)
    first = edges.join(keyed, "key")
    founders = first.group_by("component").aggregate(message_id=first.message_id.argmin(first.seq))
    flagged = dirty.mutate(bound=ibis.literal(True))
    result = (
        keyed.join(founders, "component")
        .left_join(flagged, "component")
        .select(
            "key",
            "component",
            clean=lambda t: t.bound.isnull(),
            profile_id=lambda t: t.bound.isnull().ifelse(
                "p_" + _md5(t.message_id).substr(0, 16), ibis.null("string")
            ),
        )
    )
    return result, rounds


def _materialise(warehouse: Warehouse, name: str, expr: ir.Table) -> ir.Table:
    """Compute one round's labels and keep them, so the next round starts from data.

    Spark: a local checkpoint, which also cuts the plan (it would grow every round).
    """
    name = f"opencx_identity_{name}"
    if warehouse.engine == "pyspark":
        session = warehouse.backend._session
        frame = session.sql(ibis.to_sql(expr, dialect="pyspark")).localCheckpoint()
        frame.createOrReplaceTempView(name)
        return warehouse.backend.table(name)
    sql = ibis.to_sql(expr, dialect="duckdb")
    warehouse.backend.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
    return warehouse.backend.table(name)


def _forget(warehouse: Warehouse, name: str) -> None:
    name = f"opencx_identity_{name}"
    if warehouse.engine == "pyspark":
        warehouse.backend._session.catalog.dropTempView(name)
    else:
        warehouse.backend.con.execute(f"DROP TABLE IF EXISTS {name}")


def resolve_identity_on_engine(
    warehouse: Warehouse, settings: IdentitySettings, blocks: Sequence[Block] = ()
) -> EngineIdentity:
    """Every identifier's profile: components on the engine, rule-bound ones by the graph.

    `blocks` as the store keeps them (`identity_blocks`: plain keys and origin profile);
    they are pseudonymised here like the export's keys.
    """
    hidden = [(engine_key(a), engine_key(b), origin) for a, b, origin in blocks]
    table, rounds = resolve_components(warehouse, settings, [(a, b) for a, b, _ in hidden])
    rows = table.to_pyarrow()
    keys = rows.column("key").to_pylist()
    owners = {k: p for k, p in zip(keys, rows.column("profile_id").to_pylist(), strict=True) if p}
    bound = {k for k, c in zip(keys, rows.column("clean").to_pylist(), strict=True) if not c}
    component_of = rows.column("component").to_pylist()
    components = len(set(component_of))
    bound_components = len({c for k, c in zip(keys, component_of, strict=True) if k in bound})
    if bound:
        edges = warehouse.identity_edges()
        wanted = table.filter(~table.clean).select("key")
        # Every key of a set is in the set's component: this is whole sets, in log order.
        full = edges.semi_join(wanted, "key").order_by(["seq", "pos"])
        graph = IdentityGraph(settings, hidden, journal=False)
        current: list[str] = []
        last: tuple[int, str] | None = None
        for row in full.to_pyarrow().to_pylist():
            if last is not None and row["seq"] != last[0]:
                graph.resolve(current, last[1], last[0])
                current = []
            current.append(row["key"])
            last = (row["seq"], row["message_id"])
        if last is not None:
            graph.resolve(current, last[1], last[0])
        owners.update(graph.owners())
    return EngineIdentity(owners, components, bound_components, rounds)
