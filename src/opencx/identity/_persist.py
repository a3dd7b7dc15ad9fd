"""Identity state in the database: load it, write what resolution changed, rebuild, split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from opencx.config import IdentitySettings
from opencx.errors import Conflict, NotFound
from opencx.identity._rebuild import rebuild_identity
from opencx.identity.graph import Changes, IdentityGraph
from opencx.types import IdentifierKey, ProfileId

Progress = Callable[[int, int], None]
_CHUNK = 200_000
Block = tuple[IdentifierKey, IdentifierKey, ProfileId | None]


def load_blocks(con: duckdb.DuckDBPyConnection) -> list[Block]:
    return [
        (a, b, origin)
        for a, b, origin in con.execute(
            "SELECT identifier, other, split_from FROM identity_blocks "
            "ORDER BY created_at, identifier"
        ).fetchall()
    ]


def load_graph(con: duckdb.DuckDBPyConnection, settings: IdentitySettings) -> IdentityGraph:
    """The identity graph as the database holds it (what the server resumes from)."""
    graph = IdentityGraph(settings, load_blocks(con))
    merges = con.execute("SELECT profile_id, merged_into FROM profile_merges").fetchall()
    identities = con.execute(
        "SELECT identifier, profile_id, seq FROM identities ORDER BY seq, rowid"
    ).fetchall()
    graph.load(identities, merges)
    return graph


def write_changes(con: duckdb.DuckDBPyConnection, changes: Changes, graph: IdentityGraph) -> None:
    """Persist one flush's identity changes; call inside the flush's transaction."""
    if changes.identities:
        rows = changes.identities
        con.register(
            "_new_identities",
            pa.table(
                {
                    "identifier": [r.key for r in rows],
                    "kind": [r.key.partition(":")[0] for r in rows],
                    "value": [r.key.partition(":")[2] for r in rows],
                    "profile_id": [r.profile_id for r in rows],
                    "seq": pa.array([r.seq for r in rows], pa.int64()),
                    "message_id": [r.message_id for r in rows],
                }
            ),
        )
        con.execute("INSERT INTO identities SELECT * FROM _new_identities")
        con.unregister("_new_identities")
    if changes.merges:
        rows = changes.merges
        con.register(
            "_new_merges",
            pa.table(
                {
                    "profile_id": [r.profile_id for r in rows],
                    "merged_into": [r.merged_into for r in rows],
                    "canonical_id": [graph.canonical(r.profile_id) for r in rows],
                    "seq": pa.array([r.seq for r in rows], pa.int64()),
                    "message_id": [r.message_id for r in rows],
                    "identifier": [r.identifier for r in rows],
                }
            ),
        )
        # Profiles merged earlier into one absorbed now follow it to the survivor.
        con.execute(
            "UPDATE profile_merges SET canonical_id = n.canonical_id FROM _new_merges n "
            "WHERE profile_merges.canonical_id = n.profile_id"
        )
        con.execute("INSERT INTO profile_merges SELECT * FROM _new_merges")
        con.unregister("_new_merges")
    if changes.conflicts:
        rows = changes.conflicts
        con.executemany(
            "INSERT INTO identity_conflicts VALUES (?, ?, ?, ?, ?)",
            [(r.seq, r.message_id, r.identifier, r.profile_id, r.reason) for r in rows],
        )


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild found: how many events, identifiers and profiles, and what moved."""

    events: int
    identifiers: int
    profiles: int
    merges: int
    conflicts: int
    events_moved: int


def replay(
    con: duckdb.DuckDBPyConnection,
    settings: IdentitySettings,
    progress: Progress | None = None,
    extra_blocks: Sequence[Block] = (),
) -> tuple[IdentityGraph, Changes]:
    """Resolve the stored log again, in order, from nothing but the log and the blocks.

    Only the first event of each distinct identifier set is resolved: a later event
    with the same set cannot change the graph (profiles only grow, so what linked
    then is linked now and what was refused then is refused now), and real logs
    repeat their identifier sets for nearly every event.
    """
    graph = IdentityGraph(settings, [*load_blocks(con), *extra_blocks], journal=False)
    with con.cursor() as cur:  # its own connection: no open result of the caller's in the way
        distinct = cur.sql(
            "SELECT identifiers, min(seq) AS seq, arg_min(message_id, seq) AS message_id "
            "FROM events WHERE len(identifiers) > 0 GROUP BY identifiers ORDER BY seq"
        ).to_arrow_table()
    total = distinct.num_rows
    done = 0
    resolve = graph.resolve
    for chunk in distinct.to_batches(_CHUNK):
        keys = chunk.column(0).to_pylist()
        seqs = chunk.column(1).to_pylist()
        mids = chunk.column(2).to_pylist()
        for ks, seq, mid in zip(keys, seqs, mids, strict=True):
            resolve(ks, mid, seq)
        done += len(seqs)
        if progress is not None:
            progress(done, total)
    return graph, graph.commit()


def rebuild(
    con: duckdb.DuckDBPyConnection,
    settings: IdentitySettings,
    progress: Progress | None = None,
    extra_blocks: Sequence[Block] = (),
) -> RebuildReport:
    """Recompute identity from the event log and replace the stored state with the result.

    Every event is put on the profile of its most trusted identifier (which resolution
    never drops). `extra_blocks` (from a split) are stored in the same transaction.
    A running writer must reload its graph afterwards (`load_graph`).
    """
    blocks = [*load_blocks(con), *extra_blocks]
    result = rebuild_identity(con, settings, blocks, progress)
    merges = result.merges
    into = dict(
        zip(
            merges.column("profile_id").to_pylist(),
            merges.column("merged_into").to_pylist(),
            strict=True,
        )
    )
    canonical = []
    for pid in into:
        root = into[pid]
        while root in into:
            root = into[root]
        canonical.append(root)
    merges = merges.add_column(2, "canonical_id", pa.array(canonical, pa.string()))
    con.register("_owners", result.owners)
    con.register("_identities", result.identities)
    con.register("_merges", merges)
    con.register("_conflicts", result.conflicts)
    try:
        moved = int(
            con.execute(
                "SELECT count(*) FROM resolved_events e "
                "LEFT JOIN _owners o ON o.identifier = e.identifiers[1] "
                "WHERE e.person_id IS DISTINCT FROM o.profile_id"
            ).fetchall()[0][0]
        )
        con.execute("BEGIN")
        try:
            if extra_blocks:
                con.executemany(
                    "INSERT OR IGNORE INTO identity_blocks (identifier, other, split_from) "
                    "VALUES (?, ?, ?)",
                    list(extra_blocks),
                )
            con.execute("DELETE FROM identities")
            con.execute("DELETE FROM profile_merges")
            con.execute("DELETE FROM identity_conflicts")
            con.execute("INSERT INTO identities SELECT * FROM _identities")
            con.execute("INSERT INTO profile_merges SELECT * FROM _merges")
            con.execute("INSERT INTO identity_conflicts SELECT * FROM _conflicts")
            con.execute(
                "UPDATE events SET profile_id = o.profile_id FROM _owners o "
                "WHERE o.identifier = events.identifiers[1] "
                "AND events.profile_id IS DISTINCT FROM o.profile_id"
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        for name in ("_owners", "_identities", "_merges", "_conflicts"):
            con.unregister(name)
    count = con.execute("SELECT count(*) FROM events").fetchall()
    return RebuildReport(
        events=int(count[0][0]),
        identifiers=result.identities.num_rows,
        profiles=result.profiles,
        merges=merges.num_rows,
        conflicts=result.conflicts.num_rows,
        events_moved=moved,
    )


def split(
    con: duckdb.DuckDBPyConnection,
    settings: IdentitySettings,
    profile_id: ProfileId,
    identifier: IdentifierKey,
    progress: Progress | None = None,
) -> tuple[ProfileId | None, RebuildReport]:
    """Move `identifier` (and the events that carry it) off `profile_id`, for good.

    The identifier is blocked from every other identifier the profile holds now, and
    identity is rebuilt, so the split is exactly what a rebuild would produce.
    Returns the identifier's new profile id and the rebuild report. The new profile
    id is None when every event that carried the identifier also carried a more
    trusted identifier of the old profile: those events stay, and the identifier is
    left unattached until an event links it to someone else.
    """
    canonical = _canonical(con, profile_id)
    members = [
        k
        for (k,) in con.execute(
            "SELECT i.identifier FROM identities i "
            "LEFT JOIN profile_merges m ON m.profile_id = i.profile_id "
            "WHERE coalesce(m.canonical_id, i.profile_id) = ? ORDER BY i.seq",
            [canonical],
        ).fetchall()
    ]
    if not members:
        raise NotFound(f"profile {profile_id!r} does not exist")
    if identifier not in members:
        raise NotFound(
            f"profile {profile_id!r} has no identifier {identifier!r}; it has: {', '.join(members)}"
        )
    others = [k for k in members if k != identifier]
    if not others:
        raise Conflict(f"{identifier!r} is the only identifier of profile {profile_id!r}")
    blocks = [(identifier, other, canonical) for other in others]
    report = rebuild(con, settings, progress, blocks)
    row = con.execute(
        "SELECT coalesce(m.canonical_id, i.profile_id) FROM identities i "
        "LEFT JOIN profile_merges m ON m.profile_id = i.profile_id WHERE i.identifier = ?",
        [identifier],
    ).fetchall()
    return (row[0][0] if row else None), report


def _canonical(con: duckdb.DuckDBPyConnection, profile_id: ProfileId) -> ProfileId:
    row = con.execute(
        "SELECT canonical_id FROM profile_merges WHERE profile_id = ?", [profile_id]
    ).fetchall()
    return str(row[0][0]) if row else profile_id
