"""The SQL checks against the real PostgreSQL, with a long query in flight."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import boto3
import psycopg
import pytest

from commands.aws import ClientPool
from commands.models import Status
from commands.runner import make_context, run_runbook
from commands.settings import Settings
from sandbox import Stack

DIAG_SECRET = "omnirapeutic/production/db-diagnostics"
PASSWORD = "diag-pw-Zq81"  # trust auth ignores it; it must never appear in a finding


def _report(settings: Settings, stack: Stack, dsn: str, **extra: Any) -> Any:
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=DIAG_SECRET, SecretString=dsn
    )
    s = settings.model_copy(update={"db_diag_secret": DIAG_SECRET, **extra})
    return run_runbook(
        "db",
        make_context(s, ClientPool(boto3.session.Session(), max_attempts=2), outputs=stack.outputs),
    )


def _finding(report: Any, check: str) -> Any:
    return next(f for f in report.findings if f.check == check)


@pytest.fixture
def sleeping_query(postgres_dsn: str) -> Any:
    conn = psycopg.connect(postgres_dsn, autocommit=True)
    pid = conn.info.backend_pid

    def sleep() -> None:
        with contextlib.suppress(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(20) /* omni-test-sleep */")

    worker = threading.Thread(target=sleep, daemon=True)
    worker.start()
    time.sleep(1.5)
    yield pid
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_cancel_backend(%s)", (pid,))
    worker.join(timeout=10)
    conn.close()


def test_slow_query_found(settings: Settings, stack: Stack, sleeping_query: int) -> None:
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/postgres"
    report = _report(settings, stack, dsn, slow_query_s=1.0)
    finding = _finding(report, "db.slow_queries")
    assert finding.status is Status.WARN, finding
    pids = [q["pid"] for q in finding.evidence["queries"]]
    assert sleeping_query in pids
    query = next(q for q in finding.evidence["queries"] if q["pid"] == sleeping_query)
    assert "pg_sleep" in query["query"] and query["seconds"] >= 1
    assert PASSWORD not in report.model_dump_json()


def test_no_slow_query(settings: Settings, stack: Stack, postgres_dsn: str) -> None:
    finding = _finding(
        _report(settings, stack, postgres_dsn, slow_query_s=3600.0), "db.slow_queries"
    )
    assert finding.status is Status.OK


def test_top_statements(settings: Settings, stack: Stack, postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        loaded = "pg_stat_statements" in str(
            conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        )  # type: ignore[index]
        installed = (
            conn.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'"
            ).fetchone()
            is not None
        )
    finding = _finding(_report(settings, stack, postgres_dsn), "db.top_statements")
    if loaded and installed:
        assert finding.status in (Status.OK, Status.WARN)
        assert isinstance(finding.evidence["statements"], list)
    else:
        assert finding.status is Status.WARN
        assert "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" in finding.detail


def test_unreachable_database_is_an_error_without_the_password(
    settings: Settings, stack: Stack
) -> None:
    report = _report(settings, stack, f"postgresql://omni:{PASSWORD}@127.0.0.1:1/omni")
    finding = _finding(report, "db.slow_queries")
    assert finding.status is Status.ERROR
    assert "could not connect to 127.0.0.1:1 as omni" in finding.detail
    assert PASSWORD not in report.model_dump_json()


def test_sql_checks_skipped_without_the_secret(settings: Settings, stack: Stack) -> None:
    report = run_runbook(
        "db",
        make_context(
            settings, ClientPool(boto3.session.Session(), max_attempts=2), outputs=stack.outputs
        ),
    )
    for check in ("db.slow_queries", "db.top_statements"):
        finding = _finding(report, check)
        assert finding.status is Status.SKIPPED and "OMNI_DB_DIAG_SECRET" in finding.detail


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://omni:{PASSWORD}@db.internal:notaport/omni",
        f"postgresql://omni:{PASSWORD}@[db.internal/omni",
        f"host=db.internal password={PASSWORD} port=",
    ],
)
def test_a_malformed_url_never_shows_its_password(
    settings: Settings, stack: Stack, dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 18 (8): psycopg's parse error quotes the DSN, password and all; no finding and
    no log line of Omni's (at its INFO level) carries it."""
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name=DIAG_SECRET, SecretString=dsn
    )
    s = settings.model_copy(update={"db_diag_secret": DIAG_SECRET})
    ctx = make_context(
        s, ClientPool(boto3.session.Session(), max_attempts=2), outputs=stack.outputs
    )
    with caplog.at_level("INFO"):
        report = run_runbook("db", ctx)
    finding = _finding(report, "db.slow_queries")
    assert finding.status is Status.ERROR and finding.detail
    assert PASSWORD not in report.model_dump_json()
    assert PASSWORD not in caplog.text
