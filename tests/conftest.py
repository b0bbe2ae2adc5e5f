from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from commands.aws import ClientPool
from commands.changes import forget as forget_changes
from commands.names import Names
from commands.settings import Settings, get_settings
from sandbox import Stack, seed
from sandbox.fakeslack import FakeSlack

pytest_plugins = ["tests.e2e", "tests.secret_scan"]
# one empty database per test; with pytest-xdist, one database per worker (gw0 → 15, gw1 → 14)
TEST_REDIS_DB = 15 - int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No developer settings leak into tests; fake AWS credentials for moto."""
    for key in list(os.environ):
        if key.startswith(("OMNI_", "SLACK_", "AWS_", "REDIS_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    get_settings.cache_clear()
    forget_changes()  # each test's AWS is a new world: no CloudTrail read carried over
    yield
    get_settings.cache_clear()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The real Redis, an empty database per test."""
    url = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"
    client = Redis.from_url(url)
    try:
        client.ping()
    except Exception as exc:  # pragma: no cover - CI starts Redis
        pytest.fail(f"real Redis is not running on 127.0.0.1:6379: {exc}")
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as slack:
        yield slack


@pytest.fixture
def aws() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def settings() -> Settings:
    return Settings(region="us-east-1")


_POOLS: dict[str, ClientPool] = {}


def shared_pool(purpose: str = "checks") -> ClientPool:
    """boto3 clients cost about 90 ms each to build, and a run builds a dozen: tests that only
    talk to the in-process moto share one pool per purpose for the whole worker (moto intercepts
    clients built before its context as well as after)."""
    import boto3

    pool = _POOLS.get(purpose)
    if pool is None:
        pool = _POOLS[purpose] = ClientPool(boto3.session.Session(), max_attempts=2)
    return pool


@pytest.fixture
def stack(aws: Any, settings: Settings) -> Stack:
    """The guide's stack, healthy, in an in-process moto."""
    return seed(shared_pool("seed"), Names.from_settings(settings), settings.region)


@pytest.fixture
def postgres_dsn() -> str:
    dsn = "postgresql://postgres@127.0.0.1:5432/postgres"
    import psycopg

    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except Exception as exc:  # pragma: no cover - CI starts PostgreSQL
        pytest.fail(f"real PostgreSQL is not running on 127.0.0.1:5432: {exc}")
    return dsn


def pytest_report_header(config: Any) -> list[str]:
    psql = shutil.which("psql")
    out = subprocess.run([psql, "--version"], capture_output=True, text=True) if psql else None
    version = out.stdout.strip() if out else "missing"
    return [f"redis-server: {shutil.which('redis-server')}", f"psql: {version}"]
