"""The SQL side of the db runbook (psycopg 3): read-only, short timeouts, no secrets echoed;
and the DB URL secrets it and the endpoint check read (URL or JSON)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from ...errors import CheckError

if TYPE_CHECKING:
    import psycopg

    from ...context import CheckContext

_QUERY_CHARS = 300


def diag_dsn(ctx: CheckContext) -> str | None:
    """The read-only DSN from ``OMNI_DB_DIAG_SECRET`` (URL, or RDS-managed JSON), or None."""
    secret_id = ctx.settings.db_diag_secret
    if not secret_id:
        return None
    raw = ctx.secret_string(secret_id).strip()
    if raw.startswith("{"):
        doc = json.loads(raw)
        if isinstance(doc.get("url"), str):
            return str(doc["url"])
        user = quote(str(doc.get("username", "")), safe="")
        password = quote(str(doc.get("password", "")), safe="")
        host = doc.get("host", "localhost")
        port = doc.get("port", 5432)
        db = doc.get("dbname") or doc.get("database") or "postgres"
        return f"postgresql://{user}:{password}@{host}:{port}/{db}"
    return raw


def _redact(message: str, dsn: str) -> str:
    """Remove a password from an error message, whatever form psycopg echoed it in."""
    import psycopg  # imported when a SQL check runs: 60 ms a fresh `omni diagnose` seldom needs

    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except Exception:
        password = None
    if password:
        message = message.replace(str(password), "***")
    return re.sub(r"://([^:@/]+):[^@/]+@", r"://\1:***@", message)


class SqlCheckError(CheckError):
    """Connecting to or querying the database failed (message already redacted)."""


def _connect(dsn: str) -> psycopg.Connection[Any]:
    import psycopg

    try:  # a DSN that does not parse: psycopg's message quotes it, password and all
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except Exception:
        raise SqlCheckError(
            "OMNI_DB_DIAG_SECRET does not hold a PostgreSQL URL Omni can read (not shown)"
        ) from None
    try:
        return psycopg.connect(
            dsn, connect_timeout=5, autocommit=True, options="-c statement_timeout=5000"
        )
    except Exception as exc:
        raise SqlCheckError(
            f"could not connect to {info.get('host')}:{info.get('port', 5432)} as "
            f"{info.get('user')}: {_redact(str(exc).strip(), dsn)}"
        ) from None


def max_connections(dsn: str) -> int:
    """``SHOW max_connections``: the limit the instance started with."""
    with _connect(dsn) as conn:
        row = conn.execute("SHOW max_connections").fetchone()
    return int(row[0]) if row else 0


def slow_queries(dsn: str, threshold_s: float) -> list[dict[str, Any]]:
    with _connect(dsn) as conn:
        rows = conn.execute(
            """
            SELECT pid, usename, state, query_start,
                   EXTRACT(EPOCH FROM (now() - query_start))::float AS seconds,
                   wait_event_type, left(query, %s)
            FROM pg_stat_activity
            WHERE state IS NOT NULL AND state <> 'idle'
              AND pid <> pg_backend_pid()
              AND query_start < now() - make_interval(secs => %s)
            ORDER BY query_start
            LIMIT 10
            """,
            (_QUERY_CHARS, threshold_s),
        ).fetchall()
    return [
        {
            "pid": r[0],
            "user": r[1],
            "state": r[2],
            "query_start": r[3].isoformat() if r[3] else None,
            "seconds": round(float(r[4]), 1),
            "wait_event_type": r[5],
            "query": r[6],
        }
        for r in rows
    ]


def top_statements(dsn: str) -> tuple[list[dict[str, Any]], str | None]:
    import psycopg

    with _connect(dsn) as conn:
        try:
            rows = conn.execute(
                """
                SELECT left(query, %s), calls, total_exec_time, mean_exec_time
                FROM pg_stat_statements
                ORDER BY mean_exec_time DESC
                LIMIT 10
                """,
                (_QUERY_CHARS,),
            ).fetchall()
        except (
            psycopg.errors.UndefinedTable,
            psycopg.errors.ObjectNotInPrerequisiteState,
        ) as exc:
            return [], f"pg_stat_statements is missing or not loaded ({type(exc).__name__})."
    return [
        {
            "query": r[0],
            "calls": int(r[1]),
            "total_ms": round(float(r[2]), 1),
            "mean_ms": round(float(r[3]), 1),
        }
        for r in rows
    ], None


def secret_host(secret: str) -> str | None:
    """The host a DB URL secret points at (URL or JSON, RDS-managed or hand-made)."""
    text = secret.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        if isinstance(doc, dict):
            for key in ("url", "URL", "database_url", "DATABASE_URL", "uri", "connection_string"):
                if isinstance(doc.get(key), str):
                    return secret_host(doc[key])
            host = doc.get("host") or doc.get("hostname")
            return str(host).lower() if host else None
        return None
    parsed = urlparse(text)
    return parsed.hostname.lower() if parsed.hostname else None
