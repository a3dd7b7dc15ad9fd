"""Identity resolution: identifiers are nodes, events link them, a profile is a component."""

from __future__ import annotations

from opencx.identity._normalise import (
    IdentifierExtractor,
    normalise_email,
    normalise_phone,
    parse_identifier,
    split_key,
)
from opencx.identity._persist import (
    RebuildReport,
    load_graph,
    rebuild,
    replay,
    split,
    write_changes,
)
from opencx.identity.graph import (
    Changes,
    ConflictRow,
    IdentityGraph,
    IdentityRow,
    MergeRow,
    profile_id_for,
)

__all__ = [
    "Changes",
    "ConflictRow",
    "IdentifierExtractor",
    "IdentityGraph",
    "IdentityRow",
    "MergeRow",
    "RebuildReport",
    "load_graph",
    "normalise_email",
    "normalise_phone",
    "parse_identifier",
    "profile_id_for",
    "rebuild",
    "replay",
    "split",
    "split_key",
    "write_changes",
]
