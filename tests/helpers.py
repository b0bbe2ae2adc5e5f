"""Helpers shared by the tests: AWS error injection, free ports, process management."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"


class _Http:
    def __init__(self, status: int) -> None:
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""


def fail_call(
    session: Any,
    service_id: str,
    operation: str,
    code: str = "AccessDeniedException",
    status: int = 403,
    message: str = "User is not authorized",
    when: Callable[[dict[str, Any]], bool] | None = None,
) -> Callable[[], None]:
    """Make every ``service_id.Operation`` call made through ``session``'s clients fail (or a
    client's, given one), or only the calls whose request ``when`` picks; returns the undo.

    Registered on ``before-call``, so it short-circuits before the request is sent (no retry).
    On a session, it must be called before the pool builds the client.
    """

    def handler(params: dict[str, Any], **kwargs: Any) -> tuple[_Http, dict[str, Any]] | None:
        if when is not None and not when(params):
            return None
        return _Http(status), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "RequestId": "test"},
        }

    events = session.events if hasattr(session, "events") else session.meta.events
    event = f"before-call.{service_id}.{operation}"
    events.register(event, handler)
    return lambda: events.unregister(event, handler)


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    import requests

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up: {last}")


def clean_env(**extra: str) -> dict[str, str]:
    """A child environment with none of the developer's AWS or Slack settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "SLACK_", "OMNI_", "REDIS_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "commands.cli", *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            from tests.secret_scan import scan_file

            scan_file(log, f"process log {args[0]}")


def slack_settings(fake_slack: Any, redis_url: str, token: str, secret: str, **extra: Any) -> Any:
    """Settings for an in-process bot talking to the fake Slack and the test's Redis."""
    from pydantic import SecretStr

    from commands.settings import Settings

    return Settings(
        slack_bot_token=SecretStr(token),
        slack_signing_secret=SecretStr(secret),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        **extra,
    )


def slack_env(
    fake_slack: Any, redis_url: str, token: str, secret: str, **extra: str
) -> dict[str, str]:
    """The same, as the environment of an `omni serve` / `omni worker` process."""
    return {
        "REDIS_URL": redis_url,
        "OMNI_SLACK_API_URL": fake_slack.url,
        "SLACK_BOT_TOKEN": token,
        "SLACK_SIGNING_SECRET": secret,
        **extra,
    }


def any_plan_of(fix_id: str, **params: Any) -> Any:
    """A proposal of ``fix_id`` with made-up parameters (``propose`` would validate them): for
    tests about who may click, where the parameters do not matter."""
    from commands.fixes import catalogue
    from commands.models import Remediation

    spec = catalogue()[fix_id]
    return Remediation(
        id=fix_id,
        title=spec.title,
        risk=spec.risk,
        params=params,
        target=str(next(iter(params.values()), fix_id)),
        role=spec.role,
        call=spec.preview(params),
        terraform=spec.terraform,
    )


def plan_in_thread(store: Any, fix_id: str, **params: Any) -> Any:
    """A plan of ``fix_id`` with these (validated) parameters, as a run in thread 1.1 of C1
    proposes it."""
    from commands.fixes import propose

    return store.propose(
        propose(fix_id, **params),
        check="db.sg_ingress_from_ecs",
        finding="f",
        channel="C1",
        thread_ts="1.1",
        environment="production",
    )


def forbidden_side_effect(path: str) -> str:
    """What a forged job would run if a worker let it (tests/test_layering.py)."""
    Path(path).write_text("ran")
    return "ran"


@contextlib.contextmanager
def installed_runtime(settings: Any, redis: Any, pool: Any = None) -> Iterator[Any]:
    """The worker's runtime (real Redis, the settings' Slack) installed for the jobs a test
    calls directly; ``pool`` defaults to a fresh session with two attempts per call."""
    from bot.slack_client import make_web_client
    from commands.aws import ClientPool
    from workers.runtime import Runtime, set_runtime

    pool = pool or ClientPool(boto3.session.Session(), max_attempts=2)
    rt = Runtime.with_redis(settings, pool, make_web_client(settings), redis)
    set_runtime(rt)
    try:
        yield rt
    finally:
        set_runtime(None)
