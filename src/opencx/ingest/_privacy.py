"""Privacy at ingest: the suppression list of erased people, and fields hashed or dropped.

Both are checked by the single writer on every flush, so no path into the event log
passes them by. Both cost nothing when unused: an empty suppression list and no
configured field skip the work entirely.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import orjson

from opencx.config import PrivacySettings
from opencx.store import get_document, put_document
from opencx.types import IdentifierKey

SALT_DOCUMENT = ("privacy", "salt")
HASH_PREFIX = "sha256:"
_UNSEEN: Any = object()
_VERDICTS = 500_000


def privacy_salt(con: duckdb.DuckDBPyConnection, settings: PrivacySettings) -> bytes:
    """The configured salt, else this database's own (made on first use and kept)."""
    if settings.salt:
        return settings.salt.encode()
    doc = get_document(con, *SALT_DOCUMENT)
    if doc is None:
        put_document(con, *SALT_DOCUMENT, secrets.token_hex(32), by="opencx")
        doc = get_document(con, *SALT_DOCUMENT)
    assert doc is not None
    return doc.body.encode()


def salted_hash(salt: bytes, value: str) -> str:
    """Hex SHA-256 of salt and value: the same value always gives the same hash."""
    return hashlib.sha256(salt + b"\0" + value.encode()).hexdigest()


class SuppressionList:
    """Hashes of erased identifiers: an event carrying any of them is dropped, not stored.

    The verdict per identifier key is remembered (identifiers repeat across events), so
    a flush hashes only keys it has not seen since the list last changed.
    """

    def __init__(self, salt: bytes, hashes: Iterable[str] = ()) -> None:
        self.salt = salt
        self._hashes: set[str] = set(hashes)
        self._seed = hashlib.sha256(salt + b"\0")
        self._verdicts: dict[IdentifierKey, str | None] = {}

    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, salt: bytes) -> SuppressionList:
        rows = con.execute("SELECT identifier_hash FROM suppressions").fetchall()
        return cls(salt, (r[0] for r in rows))

    def __len__(self) -> int:
        return len(self._hashes)

    def __bool__(self) -> bool:
        return bool(self._hashes)

    def hash(self, key: IdentifierKey) -> str:
        """The suppression hash of a normalised `kind:value` key."""
        h = self._seed.copy()
        h.update(key.encode())
        return h.hexdigest()

    def add(self, hashes: Iterable[str]) -> None:
        self._hashes.update(hashes)
        self._verdicts.clear()

    def matches(self, keys: Sequence[IdentifierKey]) -> list[str]:
        """The suppressed hashes among `keys` (empty: the event may be stored)."""
        verdicts = self._verdicts
        found: list[str] = []
        for key in keys:
            hit = verdicts.get(key, _UNSEEN)
            if hit is _UNSEEN:
                digest = self.hash(key)
                hit = digest if digest in self._hashes else None
                if len(verdicts) >= _VERDICTS:
                    verdicts.clear()
                verdicts[key] = hit
            if hit is not None:
                found.append(hit)  # type: ignore[arg-type]
        return found


class FieldRedactor:
    """Hashes or drops configured dotted paths in properties, traits and context."""

    def __init__(self, salt: bytes, hash_fields: Sequence[str], drop_fields: Sequence[str]):
        self.salt = salt
        self._paths: dict[str, list[tuple[list[str], bool]]] = {}
        for path, hashed in [*((p, True) for p in hash_fields), *((p, False) for p in drop_fields)]:
            root, _, rest = path.partition(".")
            self._paths.setdefault(root, []).append((rest.split("."), hashed))

    def __bool__(self) -> bool:
        return bool(self._paths)

    def column(self, root: str, values: list[bytes | str | None]) -> list[bytes | str | None]:
        """One JSON column (`properties`, `traits` or `context`) with the rules applied."""
        paths = self._paths.get(root)
        if not paths:
            return values
        return [self._json(v, paths) for v in values]

    def payload(self, text: str) -> str:
        """A rejected message's raw payload with the rules applied, if it is a JSON object."""
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            return text
        if not isinstance(message, dict):
            return text
        changed = False
        for root, paths in self._paths.items():
            bag = message.get(root)
            if isinstance(bag, dict):
                changed = self._apply(bag, paths) or changed
        return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS).decode() if changed else text

    def _json(
        self, value: bytes | str | None, paths: list[tuple[list[str], bool]]
    ) -> bytes | str | None:
        if value is None:
            return None
        try:
            bag = orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
        if not isinstance(bag, dict) or not self._apply(bag, paths):
            return value
        return orjson.dumps(bag, option=orjson.OPT_NON_STR_KEYS)

    def _apply(self, bag: dict[str, Any], paths: list[tuple[list[str], bool]]) -> bool:
        changed = False
        for parts, hashed in paths:
            node: Any = bag
            for part in parts[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
            leaf = parts[-1]
            if not isinstance(node, dict) or leaf not in node:
                continue
            if hashed:
                value = node[leaf]
                if value is None or (isinstance(value, str) and value.startswith(HASH_PREFIX)):
                    continue
                text = value if isinstance(value, str) else orjson.dumps(value).decode()
                node[leaf] = HASH_PREFIX + salted_hash(self.salt, text)
            else:
                del node[leaf]
            changed = True
        return changed
