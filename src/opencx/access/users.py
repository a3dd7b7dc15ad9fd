"""People who sign in to the web app: roles, passwords hashed with scrypt, sessions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb

from opencx.access._secrets import secret_hash
from opencx.errors import Conflict, InvalidInput, NotFound
from opencx.types import ROLES

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
SESSION_DAYS = 7
# scrypt parameters (RFC 7914): 16 MiB of memory per hash, about 50 ms here.
_N, _R, _P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    """A person with a role in the web app."""

    email: str
    role: str
    created_at: datetime
    disabled_at: datetime | None = None


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    encode = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${encode(salt).decode()}${encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
            dklen=len(expected),
        )  # fmt: skip
    except (ValueError, TypeError):
        return False
    return scheme == "scrypt" and hmac.compare_digest(got, expected)


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def add_user(con: duckdb.DuckDBPyConnection, email: str, role: str, password: str) -> User:
    """Create a user; the password is stored only as a scrypt hash."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise InvalidInput(f"email {email!r} is not an email address")
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password must be at least {MIN_PASSWORD} characters")
    if con.execute("SELECT 1 FROM users WHERE email = ?", [email]).fetchall():
        raise Conflict(f"a user {email!r} exists already")
    con.execute(
        "INSERT INTO users (email, role, password_hash) VALUES (?, ?, ?)",
        [email, role, hash_password(password)],
    )
    return get_user(con, email)


def get_user(con: duckdb.DuckDBPyConnection, email: str) -> User:
    rows = con.execute(
        "SELECT email, role, created_at, disabled_at FROM users WHERE email = ?",
        [email.strip().lower()],
    ).fetchall()
    if not rows:
        raise NotFound(f"no user {email!r} (see `opencx users list`)")
    return User(*rows[0])


def list_users(con: duckdb.DuckDBPyConnection) -> list[User]:
    rows = con.execute(
        "SELECT email, role, created_at, disabled_at FROM users ORDER BY email"
    ).fetchall()
    return [User(*row) for row in rows]


def disable_user(con: duckdb.DuckDBPyConnection, email: str) -> None:
    """Stop a user from signing in, and end their sessions."""
    user = get_user(con, email)
    con.execute("UPDATE users SET disabled_at = now() WHERE email = ?", [user.email])
    con.execute("DELETE FROM sessions WHERE email = ?", [user.email])


def authenticate(con: duckdb.DuckDBPyConnection, email: str, password: str) -> User | None:
    """The active user with these credentials, or None (same work either way)."""
    rows = con.execute(
        "SELECT email, role, created_at, disabled_at, password_hash FROM users WHERE email = ?",
        [email.strip().lower()],
    ).fetchall()
    stored = rows[0][4] if rows else _DUMMY_HASH
    ok = verify_password(password, stored)
    if not rows or not ok or rows[0][3] is not None:
        return None
    return User(*rows[0][:4])


def start_session(con: duckdb.DuckDBPyConnection, user: User) -> tuple[str, str]:
    """A new session for `user`: (cookie secret, CSRF token). Only a hash is stored."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = datetime.now(UTC) + timedelta(days=SESSION_DAYS)
    con.execute(
        "INSERT INTO sessions (id_hash, email, csrf, expires_at) VALUES (?, ?, ?, ?)",
        [secret_hash(secret), user.email, csrf, expires],
    )
    return secret, csrf


def session_user(con: duckdb.DuckDBPyConnection, secret: str) -> tuple[User, str] | None:
    """The signed-in user and the session's CSRF token, or None if the session is not valid."""
    rows = con.execute(
        "SELECT u.email, u.role, u.created_at, u.disabled_at, s.csrf FROM sessions s "
        "JOIN users u ON u.email = s.email "
        "WHERE s.id_hash = ? AND s.expires_at > now() AND u.disabled_at IS NULL",
        [secret_hash(secret)],
    ).fetchall()
    if not rows:
        return None
    return User(*rows[0][:4]), rows[0][4]


def end_session(con: duckdb.DuckDBPyConnection, secret: str) -> None:
    con.execute("DELETE FROM sessions WHERE id_hash = ?", [secret_hash(secret)])
