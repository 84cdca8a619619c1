"""API keys: ``Authorization: Bearer oe_1a2b3c4d_<43 random characters>``.

A key is 256 random bits from ``secrets``, shown once when created. Only its SHA-256 is
stored, with the public prefix (``oe_1a2b3c4d``) that names it in listings and revocation.
SHA-256 and not bcrypt: bcrypt's cost protects guessable passwords, but nobody can search
a 256-bit random space whatever the hash, and a fast unsalted hash lets every request find
its key by one indexed lookup instead of paying ~100 ms of bcrypt.

``python -m chalicelib keys create NAME | list | revoke PREFIX`` (``make key NAME=...``).
"""

import hashlib
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

from cachetools import TTLCache

from chalicelib.backends import postgres
from chalicelib.config import get_settings

KEY_RE = re.compile(r"(oe_[0-9a-f]{8})_[A-Za-z0-9_-]{43}", re.ASCII)
BEARER_RE = re.compile(r"Bearer ([!-~]+)", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class NewKey:
    prefix: str
    key: str  # the only time the whole key exists outside its holder
    client_id: uuid.UUID


@dataclass(frozen=True)
class KeyInfo:
    prefix: str
    client: str
    created_at: datetime
    revoked_at: datetime | None


def _hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def create(client_name: str) -> NewKey:
    """A new key for the client of that name (created when new)."""
    prefix = f"oe_{secrets.token_hex(4)}"
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    with postgres.transaction() as conn:
        conn.execute(
            "INSERT INTO clients (id, name) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
            (uuid.uuid4(), client_name),
        )
        client_id = conn.execute(
            "SELECT id FROM clients WHERE name = %s", (client_name,)
        ).fetchone()["id"]
        conn.execute(
            "INSERT INTO api_keys (prefix, client_id, key_hash) VALUES (%s, %s, %s)",
            (prefix, client_id, _hash(key)),
        )
    return NewKey(prefix, key, client_id)


def list_keys() -> list[KeyInfo]:
    with postgres.transaction() as conn:
        rows = conn.execute(
            "SELECT k.prefix, c.name AS client, k.created_at, k.revoked_at"
            " FROM api_keys k JOIN clients c ON c.id = k.client_id ORDER BY k.created_at"
        ).fetchall()
    return [KeyInfo(**r) for r in rows]


def revoke(prefix: str) -> bool:
    """Revoke the key; False when no active key has that prefix."""
    with postgres.transaction() as conn:
        row = conn.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE prefix = %s AND revoked_at IS NULL"
            " RETURNING prefix",
            (prefix,),
        ).fetchone()
    return row is not None


def client_of(key: str | None) -> uuid.UUID | None:
    """The client an active key belongs to; None for anything else (no database call for
    what is not shaped like a key)."""
    if key is None or not KEY_RE.fullmatch(key):
        return None
    with postgres.transaction() as conn:
        row = conn.execute(
            "SELECT client_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
            (_hash(key),),
        ).fetchone()
    return None if row is None else row["client_id"]


def prefix_of(key: str | None) -> str | None:
    """The public prefix naming a key shaped like one."""
    match = KEY_RE.fullmatch(key) if key else None
    return match.group(1) if match else None


@cache
def _active_answers() -> TTLCache:
    return TTLCache(maxsize=10_000, ttl=get_settings().access.auth_cache_ttl_s)


_active_lock = threading.Lock()


def active(prefix: str) -> bool:
    """Whether the key of that prefix is still not revoked. Asked by long-lived connections
    before each subscribe; cached per environment for ``auth_cache_ttl_s``, like the
    authorizer's answers, so a revoked key loses its sockets within the same period."""
    ttl = get_settings().access.auth_cache_ttl_s
    if ttl:
        with _active_lock:
            if prefix in _active_answers():
                return _active_answers()[prefix]
    with postgres.transaction() as conn:
        row = conn.execute(
            "SELECT 1 FROM api_keys WHERE prefix = %s AND revoked_at IS NULL", (prefix,)
        ).fetchone()
    if ttl:
        with _active_lock:
            _active_answers()[prefix] = row is not None
    return row is not None


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    match = BEARER_RE.fullmatch(header.strip()) if header else None
    return match.group(1) if match else None


def dev_key(path: Path, client_name: str = "dev") -> tuple[str, bool]:
    """The development key kept at ``path``, created on first use; (key, created).
    A kept key that no longer works (revoked, another database) is replaced."""
    if path.exists():
        key = path.read_text().strip()
        if client_of(key) is not None:
            return key, False
    new = create(client_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new.key + "\n")
    path.chmod(0o600)
    return new.key, True
