"""Identity state in the database: load it, write what resolution changed, rebuild, split."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from opencx.config import IdentitySettings
from opencx.errors import Conflict, NotFound
from opencx.identity.graph import Changes, IdentityGraph
from opencx.types import IdentifierKey, ProfileId

Progress = Callable[[int, int], None]
_CHUNK = 200_000
Block = tuple[IdentifierKey, IdentifierKey, ProfileId | None]


def load_blocks(con: duckdb.DuckDBPyConnection) -> list[Block]:
    return [
        (a, b, origin)
        for a, b, origin in con.execute(
            "SELECT identifier, other, split_from FROM identity_blocks ORDER BY created_at, identifier"
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
) -> tuple[IdentityGraph, Changes, list[tuple[int, ProfileId | None]]]:
    """Resolve every stored event again, in log order, from nothing but the log and blocks."""
    graph = IdentityGraph(settings, [*load_blocks(con), *extra_blocks])
    total = int(con.execute("SELECT count(*) FROM events").fetchall()[0][0])
    moved: list[tuple[int, ProfileId | None]] = []
    done = 0
    resolve = graph.resolve
    reader = con.sql(
        "SELECT seq, message_id, identifiers, profile_id FROM events ORDER BY seq"
    ).to_arrow_reader(_CHUNK)
    for chunk in reader:
        seqs = chunk.column(0).to_pylist()
        mids = chunk.column(1).to_pylist()
        keys = chunk.column(2).to_pylist()
        stored = chunk.column(3).to_pylist()
        for seq, mid, ks, old in zip(seqs, mids, keys, stored, strict=True):
            pid = resolve(ks, mid, seq)
            if pid != old:
                moved.append((seq, pid))
        done += len(seqs)
        if progress is not None:
            progress(done, total)
    changes = graph.commit()
    return graph, changes, moved


def rebuild(
    con: duckdb.DuckDBPyConnection,
    settings: IdentitySettings,
    progress: Progress | None = None,
    extra_blocks: Sequence[Block] = (),
) -> tuple[IdentityGraph, RebuildReport]:
    """Recompute identity from the event log and replace the stored state with the result.

    `extra_blocks` (from a split) are stored in the same transaction as the result.
    """
    graph, changes, moved = replay(con, settings, progress, extra_blocks)
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
        write_changes(con, changes, graph)
        if moved:
            con.register(
                "_moved",
                pa.table(
                    {
                        "seq": pa.array([s for s, _ in moved], pa.int64()),
                        "profile_id": pa.array([p for _, p in moved], pa.string()),
                    }
                ),
            )
            con.execute(
                "UPDATE events SET profile_id = m.profile_id FROM _moved m WHERE events.seq = m.seq"
            )
            con.unregister("_moved")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    count = con.execute("SELECT count(*) FROM events").fetchone()
    report = RebuildReport(
        events=int(count[0]) if count else 0,
        identifiers=len(changes.identities),
        profiles=len(graph.profiles()),
        merges=len(changes.merges),
        conflicts=len(changes.conflicts),
        events_moved=len(moved),
    )
    return graph, report


def split(
    con: duckdb.DuckDBPyConnection,
    settings: IdentitySettings,
    profile_id: ProfileId,
    identifier: IdentifierKey,
    progress: Progress | None = None,
) -> tuple[IdentityGraph, ProfileId | None, RebuildReport]:
    """Move `identifier` (and the events that carry it) off `profile_id`, for good.

    The identifier is blocked from every other identifier the profile holds now, and
    identity is rebuilt, so the split is exactly what a rebuild would produce.
    Returns the new graph, the identifier's new profile id and the rebuild report.
    The new profile id is None when every event that carried the identifier also
    carried a more trusted identifier of the old profile: those events stay, and the
    identifier is left unattached until an event links it to someone else.
    """
    graph = load_graph(con, settings)
    canonical = graph.canonical(profile_id)
    members = graph.identifiers(canonical)
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
    graph, report = rebuild(con, settings, progress, blocks)
    return graph, graph.profile_of(identifier), report
