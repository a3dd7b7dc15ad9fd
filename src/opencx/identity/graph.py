"""The identity graph: identifiers are nodes, events link them, profiles are components.

Resolution is one deterministic function applied to events in log order, so the
incremental state kept by the server and a full rebuild from the log are the same by
construction. Merge rules (a limit per identifier kind, blocked pairs from splits) are
checked on the would-be merged profile; on a conflict the event's lowest-priority
identifier is dropped and matching is retried, and every refusal is logged.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from opencx.config import IdentitySettings
from opencx.types import IdentifierKey, ProfileId

_MISSING = object()


def profile_id_for(message_id: str, salt: str = "") -> ProfileId:
    """Deterministic profile id of the profile an event creates."""
    digest = hashlib.blake2b(f"{message_id}{salt}".encode(), digest_size=8).hexdigest()
    return f"p_{digest}"


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
    ) -> None:
        self.settings = settings
        self._limits = dict(settings.limits)
        self._default_limit = settings.default_limit
        self._owner: dict[IdentifierKey, ProfileId] = {}
        self._members: dict[ProfileId, list[IdentifierKey]] = {}
        self._created: dict[ProfileId, int] = {}
        self._parent: dict[ProfileId, ProfileId] = {}
        self._blocks: dict[IdentifierKey, set[IdentifierKey]] = {}
        self._split_origin: dict[IdentifierKey, set[ProfileId]] = {}
        self._kept_origin: dict[IdentifierKey, ProfileId] = {}
        for a, b, origin in blocks:
            self.add_block(a, b, origin)
        self.changes = Changes()
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
            if pid not in self._created or seq < self._created[pid]:
                self._created[pid] = seq
        for pid in list(self._created):
            root = self.canonical(pid)
            if root != pid:
                self._created[root] = min(self._created.get(root, self._created[pid]), self._created[pid])
                del self._created[pid]

    # -- transactions ------------------------------------------------------------
    def _set(self, mapping: dict, key: object, value: object) -> None:
        self._undo.append((mapping, key, mapping.get(key, _MISSING)))
        mapping[key] = value

    def _delete(self, mapping: dict, key: object) -> None:
        self._undo.append((mapping, key, mapping.pop(key)))

    def commit(self) -> Changes:
        """Keep everything resolved since the last commit; return what to persist."""
        self._undo.clear()
        changes, self.changes = self.changes, Changes()
        return changes

    def rollback(self) -> None:
        """Forget everything resolved since the last commit (the write failed)."""
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
        owner = self._owner
        if not keys:
            return None
        if len(keys) == 1:
            pid = owner.get(keys[0])
            if pid is not None:
                return pid
        else:
            first = owner.get(keys[0])
            if first is not None and all(owner.get(k) == first for k in keys[1:]):
                return first
        attempt = list(keys)
        while attempt:
            reason = self._violation(attempt)
            if reason is None:
                return self._link(attempt, message_id, seq)
            dropped = attempt.pop()
            self.changes.conflicts.append(
                ConflictRow(seq, message_id, dropped, owner.get(dropped), reason)
            )
        return None

    def _violation(self, keys: list[IdentifierKey]) -> str | None:
        """Why linking `keys` (and the profiles they belong to) would break a rule, if it would."""
        owner, members = self._owner, self._members
        pids: list[ProfileId] = []
        combined: list[IdentifierKey] = []
        for key in keys:
            pid = owner.get(key)
            if pid is None:
                combined.append(key)
            elif pid not in pids:
                pids.append(pid)
                combined.extend(members[pid])
        if len(pids) == 1 and len(combined) == len(members[pids[0]]):
            return None
        kinds = Counter(key.partition(":")[0] for key in combined)
        for kind, count in kinds.items():
            if count > self.limit(kind):
                return f"would give one profile {count} {kind} identifiers (limit {self.limit(kind)})"
        if self._blocks:
            together = set(combined)
            for key in combined:
                blocked = self._blocks.get(key)
                if blocked and not blocked.isdisjoint(together):
                    other = sorted(blocked & together)[0]
                    return f"{key} and {other} were split apart and may not be merged again"
        return None

    def _link(self, keys: list[IdentifierKey], message_id: str, seq: int) -> ProfileId:
        owner = self._owner
        pids: list[ProfileId] = []
        via: dict[ProfileId, IdentifierKey] = {}
        new: list[IdentifierKey] = []
        for key in keys:
            pid = owner.get(key)
            if pid is None:
                new.append(key)
            elif pid not in via:
                pids.append(pid)
                via[pid] = key
        if pids:
            survivor = min(pids, key=lambda p: (self._created[p], p))
        else:
            survivor = self._new_profile_id(new, message_id)
            self._set(self._created, survivor, seq)
            self._set(self._members, survivor, [])
        for pid in pids:
            if pid != survivor:
                self._absorb(pid, survivor, seq, message_id, via[pid])
        if new:
            members = list(self._members[survivor])
            for key in new:
                self._set(owner, key, survivor)
                members.append(key)
                self.changes.identities.append(IdentityRow(key, survivor, seq, message_id))
            self._set(self._members, survivor, members)
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
        self, absorbed: ProfileId, survivor: ProfileId, seq: int, message_id: str, via: IdentifierKey
    ) -> None:
        moving = self._members[absorbed]
        for key in moving:
            self._set(self._owner, key, survivor)
        self._set(self._members, survivor, self._members[survivor] + moving)
        self._delete(self._members, absorbed)
        self._delete(self._created, absorbed)
        self._set(self._parent, absorbed, survivor)
        self.changes.merges.append(MergeRow(absorbed, survivor, seq, message_id, via))
