"""Postgres (psycopg 3): the process's connection pool, transactions, and migrations.

Connection errors inside ``connection()`` and ``transaction()`` surface as
``DependencyUnavailable`` (``drivers.unavailable_as``).
"""

import contextlib
import logging
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from chalicelib.backends import secrets
from chalicelib.backends.drivers import unavailable_as
from chalicelib.config import get_settings

log = logging.getLogger(__name__)

MIGRATION_LOCK = 7131  # pg_advisory_xact_lock: one migrator at a time


@lru_cache
def pool() -> ConnectionPool:
    """One pool per process: Lambda keeps it warm across invocations."""
    storage = get_settings().storage
    password = secrets.database_password()  # from Secrets Manager in AWS
    return ConnectionPool(
        storage.database_url,
        min_size=1,
        max_size=storage.db_pool_max,
        # Autocommit: a single statement is its own transaction, without a BEGIN and a
        # COMMIT round trip around it; ``transaction`` opens one for several.
        kwargs={
            "row_factory": dict_row,
            "autocommit": True,
            **({"password": password} if password else {}),
        },
        timeout=storage.db_pool_timeout_s,
        check=ConnectionPool.check_connection,
        open=True,
    )


@contextlib.contextmanager
def connection() -> Iterator[psycopg.Connection]:
    """A pooled autocommit connection: each statement its own transaction."""
    with unavailable_as("database"), pool().connection() as conn:
        yield conn


@contextlib.contextmanager
def transaction(pipeline: bool = False) -> Iterator[psycopg.Connection]:
    """A transaction on a pooled connection; ``pipeline``: its statements are sent without
    waiting for each answer (one round trip until a result is read)."""
    with (
        unavailable_as("database"),
        pool().connection() as conn,
        conn.pipeline() if pipeline else contextlib.nullcontext(),
        conn.transaction(),
    ):
        yield conn


@contextlib.contextmanager
def unique_violation_as(constraint: str, error: Exception) -> Iterator[None]:
    """Raise ``error`` for a unique violation of ``constraint`` (the index decides, not a read)."""
    try:
        yield
    except psycopg.errors.UniqueViolation as e:
        if e.diag.constraint_name != constraint:
            raise
        raise error from None


def close() -> None:
    """Close the pool if this process opened one (before its server goes away)."""
    if pool.cache_info().currsize:
        pool().close()
        pool.cache_clear()


def ensure_database(database_url: str) -> None:
    """Create the database named in the URL when it does not exist yet."""
    name = conninfo_to_dict(database_url).get("dbname") or "postgres"
    admin = make_conninfo(database_url, dbname="postgres")
    with unavailable_as("database"), psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            log.info("created database %s", name)


def apply_migrations(database_url: str, folder: Path) -> list[str]:
    """Apply the ``*.sql`` files of ``folder`` not applied yet, in name order; safe to run
    concurrently. Returns what it applied."""
    ensure_database(database_url)
    applied = []
    with unavailable_as("database"), psycopg.connect(database_url) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
        for path in sorted(folder.glob("*.sql")):
            if path.stem in done:
                continue
            conn.execute(path.read_text())
            conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (path.stem,))
            applied.append(path.stem)
        conn.commit()
    for version in applied:
        log.info("applied migration %s", version)
    return applied
