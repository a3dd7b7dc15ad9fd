"""Secrets: generated with `secrets`, stored only as hashes, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(prefix: str) -> str:
    """A random secret with a recognisable prefix, e.g. `wk_…` for write keys."""
    return f"{prefix}_{secrets.token_urlsafe(24)}"


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (a slow KDF adds nothing for 190-bit random keys)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)


def hint(secret: str) -> str:
    """What may be shown of a secret after creation: its prefix and last four characters."""
    return f"{secret.split('_', 1)[0]}_…{secret[-4:]}"
