"""The identity graph: identifiers are nodes, events link them, profiles are components.

Resolution is one deterministic function applied to events in log order, so the
incremental state kept by the server and a full rebuild from the log are the same by
construction. Merge rules (a limit per identifier kind, blocked pairs from splits) are
checked on the would-be merged profile; on a conflict the event's lowest-priority
identifier is dropped and matching is retried, and every refusal is logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from opencx.config import IdentitySettings
from opencx.types import IdentifierKey, ProfileId

_MISSING = object()


def profile_id_for(message_id: str, salt: str = "") -> ProfileId:
    """Deterministic profile id of the profile an event creates.

    MD5 (not for security: any stable hash would do) so that SQL computes the same id,
    `'p_' || md5(message_id)[1:16]`, when a rebuild derives ids in bulk.
    """
    return "p_" + hashlib.md5(f"{message_id}{salt}".encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class IdentityRow:
    """An identifier attached to a profile by an event."""

    key: IdentifierKey
    profile_id: ProfileId
    seq: int
    message_id: str


@dataclass(frozen=True, slots=True)
class MergeRow:
    """Evidence of a merge: which event, through which identifier, absorbed which profile."""

    profile_id: ProfileId
    merged_into: ProfileId
    seq: int
    message_id: str
    identifier: IdentifierKey


@dataclass(frozen=True, slots=True)
class ConflictRow:
    """An identifier an event carried that was not linked because a rule forbade it."""

    seq: int
    message_id: str
    identifier: IdentifierKey
    profile_id: ProfileId | None
    reason: str


@dataclass(slots=True)
class Changes:
    """What resolution added since the last drain, to be written in the same transaction."""

    identities: list[IdentityRow] = field(default_factory=list)
    merges: list[MergeRow] = field(default_factory=list)
    conflicts: list[ConflictRow] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.identities or self.merges or self.conflicts)


class IdentityGraph:
    """In-memory identity state with transactional updates (commit / rollback)."""

    def __init__(
        self,
        settings: IdentitySettings,
        blocks: Iterable[tuple[IdentifierKey, IdentifierKey, ProfileId | None]] = (),
        *,
        journal: bool = True,
    ) -> None:
        """`journal=False` (for one-shot rebuilds) skips the undo log: no rollback, less memory."""
        self.settings = settings
        self._limits = dict(settings.limits)
        self._default_limit = settings.default_limit
        self._owner: dict[IdentifierKey, ProfileId] = {}
        self._members: dict[ProfileId, list[IdentifierKey]] = {}
        self._kinds: dict[ProfileId, dict[str, int]] = {}
        self._created: dict[ProfileId, int] = {}
        self._parent: dict[ProfileId, ProfileId] = {}
        self._blocks: dict[IdentifierKey, set[IdentifierKey]] = {}
        self._split_origin: dict[IdentifierKey, set[ProfileId]] = {}
        self._kept_origin: dict[IdentifierKey, ProfileId] = {}
        for a, b, origin in blocks:
            self.add_block(a, b, origin)
        self.changes = Changes()
        self._journal = journal
        self._undo: list[tuple[dict, object, object]] = []

    # -- reading -----------------------------------------------------------------
    def canonical(self, profile_id: ProfileId) -> ProfileId:
        """The surviving profile of `profile_id` (itself unless it was merged)."""
        parent = self._parent
        root = profile_id
        while root in parent:
            root = parent[root]
        return root

    def profile_of(self, key: IdentifierKey) -> ProfileId | None:
        return self._owner.get(key)

    def identifiers(self, profile_id: ProfileId) -> list[IdentifierKey]:
        return list(self._members.get(self.canonical(profile_id), ()))

    def owners(self) -> dict[IdentifierKey, ProfileId]:
        """Every identifier and the profile it belongs to now."""
        return dict(self._owner)

    def profiles(self) -> dict[ProfileId, list[IdentifierKey]]:
        return {pid: list(keys) for pid, keys in self._members.items()}

    def merged(self) -> dict[ProfileId, ProfileId]:
        """Every absorbed profile id and the profile it lives on in now."""
        return {pid: self.canonical(pid) for pid in self._parent}

    def limit(self, kind: str) -> int:
        return self._limits.get(kind, self._default_limit)

    def __len__(self) -> int:
        return len(self._owner)

    # -- blocks ------------------------------------------------------------------
    def add_block(self, a: IdentifierKey, b: IdentifierKey, origin: ProfileId | None) -> None:
        """Never let `a` and `b` share a profile again (the result of a split)."""
        self._blocks.setdefault(a, set()).add(b)
        self._blocks.setdefault(b, set()).add(a)
        if origin is not None:
            self._split_origin.setdefault(a, set()).add(origin)
            self._kept_origin.setdefault(b, origin)

    # -- forgetting --------------------------------------------------------------
    def forget(self, profile_ids: Iterable[ProfileId], keys: Iterable[IdentifierKey]) -> None:
        """Remove erased people: their profiles (merged ones too), identifiers and blocks.

        The same state `load_graph` reads once their rows are deleted from the store
        (call between flushes; it is not journaled).
        """
        gone = set(profile_ids)
        erased = set(keys)
        for pid in list(gone):
            erased.update(self._members.get(pid, ()))
        for key in erased:
            owner = self._owner.pop(key, None)
            if owner is not None:
                gone.add(owner)
        for pid in gone:
            self._members.pop(pid, None)
            self._kinds.pop(pid, None)
            self._created.pop(pid, None)
        for absorbed in [p for p in self._parent if p in gone or self._parent[p] in gone]:
            del self._parent[absorbed]
        for key in erased:
            for other in self._blocks.pop(key, set()):
                peers = self._blocks.get(other)
                if peers is not None:
                    peers.discard(key)
                    if not peers:
                        del self._blocks[other]
            self._split_origin.pop(key, None)
            self._kept_origin.pop(key, None)
        for table in (self._split_origin,):
            for key, origins in list(table.items()):
                origins -= gone
                if not origins:
                    del table[key]
        for key in [k for k, origin in self._kept_origin.items() if origin in gone]:
            del self._kept_origin[key]

    # -- loading -----------------------------------------------------------------
    def load(
        self,
        identities: Iterable[tuple[IdentifierKey, ProfileId, int]],
        merges: Iterable[tuple[ProfileId, ProfileId]],
    ) -> None:
        """Restore state written earlier: identities in seq order, then merges."""
        for absorbed, survivor in merges:
            self._parent[absorbed] = survivor
        for key, pid, seq in identities:
            root = self.canonical(pid)
            self._owner[key] = root
            self._members.setdefault(root, []).append(key)
            kinds = self._kinds.setdefault(root, {})
            kind = key[: key.index(":")]
            kinds[kind] = kinds.get(kind, 0) + 1
            if pid not in self._created or seq < self._created[pid]:
                self._created[pid] = seq
        for pid in list(self._created):
            root = self.canonical(pid)
            if root != pid:
                self._created[root] = min(
                    self._created.get(root, self._created[pid]), self._created[pid]
                )
                del self._created[pid]

    # -- transactions ------------------------------------------------------------
    def _set(self, mapping: dict, key: object, value: object) -> None:
        if self._journal:
            self._undo.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def _delete(self, mapping: dict, key: object) -> None:
        old = mapping.pop(key)
        if self._journal:
            self._undo.append((mapping, key, old))

    def commit(self) -> Changes:
        """Keep everything resolved since the last commit; return what to persist."""
        self._undo.clear()
        changes, self.changes = self.changes, Changes()
        return changes

    def rollback(self) -> None:
        """Forget everything resolved since the last commit (the write failed)."""
        if not self._journal:
            raise RuntimeError("this graph was built without a journal and cannot roll back")
        for mapping, key, old in reversed(self._undo):
            if old is _MISSING:
                mapping.pop(key, None)
            else:
                mapping[key] = old
        self._undo.clear()
        self.changes = Changes()

    # -- resolution --------------------------------------------------------------
    def resolve(self, keys: Sequence[IdentifierKey], message_id: str, seq: int) -> ProfileId | None:
        """The profile this event belongs to, linking its identifiers under the merge rules.

        `keys` must be ordered most trusted first (see `IdentifierExtractor.keys`).
        """
        if not keys:
            return None
        owner = self._owner
        if len(keys) == 1:
            key = keys[0]
            pid = owner.get(key)
            if pid is not None:
                return pid
            if key not in self._blocks and key not in self._kept_origin:
                return self._found(key, message_id, seq)  # a first sighting: nothing to check
        attempt = list(keys)
        while True:
            pids, via, new = self._classify(attempt)
            if not new and len(pids) == 1:
                return pids[0]
            reason = self._violation(pids, new)
            if reason is None:
                return self._link(pids, via, new, message_id, seq)
            dropped = attempt.pop()
            self.changes.conflicts.append(
                ConflictRow(seq, message_id, dropped, owner.get(dropped), reason)
            )
            if not attempt:
                return None

    def _found(self, key: IdentifierKey, message_id: str, seq: int) -> ProfileId:
        """A new profile holding one new identifier (what `_link` does, minus its checks)."""
        pid = profile_id_for(message_id)
        self._set(self._created, pid, seq)
        self._set(self._members, pid, [key])
        self._set(self._kinds, pid, {key[: key.index(":")]: 1})
        self._set(self._owner, key, pid)
        self.changes.identities.append(IdentityRow(key, pid, seq, message_id))
        return pid

    def _classify(
        self, keys: list[IdentifierKey]
    ) -> tuple[list[ProfileId], dict[ProfileId, IdentifierKey], list[IdentifierKey]]:
        """The profiles `keys` belong to (with the key that reached each) and the new keys."""
        owner = self._owner
        pids: list[ProfileId] = []
        via: dict[ProfileId, IdentifierKey] = {}
        new: list[IdentifierKey] = []
        for key in keys:
            pid = owner.get(key)
            if pid is None:
                new.append(key)
            elif pid not in via:
                via[pid] = key
                pids.append(pid)
        return pids, via, new

    def _violation(self, pids: list[ProfileId], new: list[IdentifierKey]) -> str | None:
        """Why joining profiles `pids` and keys `new` would break a rule, if it would."""
        kinds = self._kinds
        counts: dict[str, int] = {}
        for key in new:
            kind = key[: key.index(":")]
            counts[kind] = counts.get(kind, 0) + 1
        if len(pids) > 1:
            for pid in pids:
                for kind, n in kinds[pid].items():
                    counts[kind] = counts.get(kind, 0) + n
        elif pids:
            held = kinds[pids[0]]
            for kind in counts:
                counts[kind] += held.get(kind, 0)
        limits, default = self._limits, self._default_limit
        for kind in sorted(counts):
            limit = limits.get(kind, default)
            if counts[kind] > limit:
                return f"would give one profile {counts[kind]} {kind} identifiers (limit {limit})"
        if self._blocks:
            members = self._members
            together = set(new)
            for pid in pids:
                together.update(members[pid])
            for key in sorted(together):
                blocked = self._blocks.get(key)
                if blocked and not blocked.isdisjoint(together):
                    other = sorted(blocked & together)[0]
                    return f"{key} and {other} were split apart and may not be merged again"
        return None

    def _link(
        self,
        pids: list[ProfileId],
        via: dict[ProfileId, IdentifierKey],
        new: list[IdentifierKey],
        message_id: str,
        seq: int,
    ) -> ProfileId:
        if pids:
            created = self._created
            survivor = pids[0]
            if len(pids) > 1:
                survivor = min(pids, key=lambda p: (created[p], p))
                for pid in pids:
                    if pid != survivor:
                        self._absorb(pid, survivor, seq, message_id, via[pid])
        else:
            survivor = self._new_profile_id(new, message_id)
            self._set(self._created, survivor, seq)
            self._set(self._members, survivor, [])
            self._set(self._kinds, survivor, {})
        if new:
            owner = self._owner
            members = [*self._members[survivor], *new]
            kinds = dict(self._kinds[survivor])
            identities = self.changes.identities
            for key in new:
                self._set(owner, key, survivor)
                kind = key[: key.index(":")]
                kinds[kind] = kinds.get(kind, 0) + 1
                identities.append(IdentityRow(key, survivor, seq, message_id))
            self._set(self._members, survivor, members)
            self._set(self._kinds, survivor, kinds)
        return survivor

    def _new_profile_id(self, keys: list[IdentifierKey], message_id: str) -> ProfileId:
        # After a split of profile P, the side that kept P's other identifiers keeps the
        # id P, so that lookups by it still work; the split-off side never takes it.
        for key in keys:
            origin = self._kept_origin.get(key)
            if origin is not None and origin not in self._created and origin not in self._parent:
                return origin
        pid = profile_id_for(message_id)
        for key in keys:
            if pid in self._split_origin.get(key, ()):
                return profile_id_for(message_id, f"|split|{key}")
        return pid

    def _absorb(
        self,
        absorbed: ProfileId,
        survivor: ProfileId,
        seq: int,
        message_id: str,
        via: IdentifierKey,
    ) -> None:
        moving = self._members[absorbed]
        for key in moving:
            self._set(self._owner, key, survivor)
        self._set(self._members, survivor, self._members[survivor] + moving)
        kinds = dict(self._kinds[survivor])
        for kind, n in self._kinds[absorbed].items():
            kinds[kind] = kinds.get(kind, 0) + n
        self._set(self._kinds, survivor, kinds)
        self._delete(self._members, absorbed)
        self._delete(self._kinds, absorbed)
        self._delete(self._created, absorbed)
        self._set(self._parent, absorbed, survivor)
        self.changes.merges.append(MergeRow(absorbed, survivor, seq, message_id, via))
