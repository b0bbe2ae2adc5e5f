"""The Bolt app behind Flask, in-process: real Redis, the fake Slack, signed requests."""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.jobs import DiagnoseJob
from bot.queue import DIAGNOSTICS_QUEUE, RUN_DIAGNOSIS, Enqueuer, connect
from bot.server import create_web_app
from commands.settings import Settings
from sandbox.fakeslack import FakeSlack
from sandbox.requests import signed_headers, slash_command_body

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def app_settings(fake_slack: FakeSlack, redis_url: str) -> Settings:
    return Settings(
        slack_bot_token=SecretStr("xoxb-test-123"),
        slack_signing_secret=SecretStr(SECRET),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
    )


@pytest.fixture
def client(app_settings: Settings) -> Iterator[Any]:
    web = create_web_app(app_settings)
    web.testing = True
    with web.test_client() as c:
        yield c


def _queue(redis_url: str) -> Queue:
    return Queue(DIAGNOSTICS_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer)


def _command(
    client: Any, text: str, fake_slack: FakeSlack, *, secret: str = SECRET, ts: int | None = None
) -> Any:
    body = slash_command_body(text, response_url=fake_slack.url.replace("/api/", "/response/1"))
    return client.post(
        "/slack/events", data=body, headers=signed_headers(secret, body, timestamp=ts)
    )


def test_diagnose_acks_and_enqueues_nothing_else(
    client: Any, fake_slack: FakeSlack, redis_url: str
) -> None:
    """The ack is the whole of the bot's work: the worker posts the thread root."""
    started = time.monotonic()
    response = _command(client, "diagnose db", fake_slack)
    assert response.status_code == 200
    assert (
        time.monotonic() - started < 3
    )  # Slack's hard limit; the benchmark measures the real figure
    answer = response.get_json()
    assert answer["response_type"] == "ephemeral"
    assert "Diagnosing *db* in *production*" in answer["text"]
    queue = _queue(redis_url)
    assert queue.count == 1  # queued before the ack was sent
    job = queue.jobs[0]
    assert job.func_name == RUN_DIAGNOSIS
    request = job.kwargs["job"]
    assert request == {
        "v": 1,
        "kind": "diagnose",
        "area": "db",
        "environment": "production",
        "channel": "C0INCIDENT",
        "thread_ts": None,
        "user": "U0ONCALL",
        "request_id": request["request_id"],
        "response_url": fake_slack.url.replace("/api/", "/response/1"),
    }
    time.sleep(0.2)
    assert not fake_slack.find("chat.postMessage")  # no Slack call from the bot's process


def test_explicit_environment(client: Any, fake_slack: FakeSlack, redis_url: str) -> None:
    _command(client, "diagnose ecs staging", fake_slack)
    queue = _queue(redis_url)
    fake_slack.wait_for(lambda: queue.count == 1)
    assert queue.jobs[0].kwargs["job"]["environment"] == "staging"


@pytest.mark.parametrize("text", ["", "help", "reboot everything", "diagnose kafka"])
def test_unknown_input_gets_ephemeral_help(
    client: Any, fake_slack: FakeSlack, redis_url: str, text: str
) -> None:
    response = _command(client, text, fake_slack)
    assert response.status_code == 200
    body = response.get_json()
    assert body["response_type"] == "ephemeral"
    assert "/omni diagnose" in body["text"]
    time.sleep(0.3)
    assert _queue(redis_url).count == 0
    assert not fake_slack.find("chat.postMessage")


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(
            lambda c, fs: _command(c, "diagnose db", fs, secret="wrong-secret"), id="bad-signature"
        ),
        pytest.param(
            lambda c, fs: _command(c, "diagnose db", fs, ts=int(time.time()) - 301),
            id="old-timestamp",
        ),
        pytest.param(
            lambda c, fs: c.post(
                "/slack/events",
                data=slash_command_body("diagnose db"),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            id="unsigned",
        ),
    ],
)
def test_forged_requests_get_401_and_nothing_is_enqueued(
    client: Any,
    fake_slack: FakeSlack,
    redis_url: str,
    mutate: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="omni.audit"):
        response = mutate(client, fake_slack)
    assert response.status_code == 401
    assert any("rejected slack request" in r.getMessage() for r in caplog.records)
    time.sleep(0.3)
    assert _queue(redis_url).count == 0
    assert not fake_slack.find("chat.postMessage")


def test_redis_down_gets_ephemeral_error_and_no_root(fake_slack: FakeSlack) -> None:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-test-123"),
        slack_signing_secret=SecretStr(SECRET),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr("redis://127.0.0.1:1/0"),
    )
    web = create_web_app(settings)
    with web.test_client() as c:
        started = time.monotonic()
        response = _command(c, "diagnose db", fake_slack)
        assert response.status_code == 200
        assert time.monotonic() - started < 3
        reply = response.get_json()  # said in the ack itself
        assert reply["response_type"] == "ephemeral"
        assert "Redis" in reply["text"] and "nothing was started" in reply["text"]
        assert not fake_slack.find("chat.postMessage")
        assert c.get("/readyz").status_code == 503


def test_health_endpoints(client: Any) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_enqueue_uses_json_serializer(app_settings: Settings, redis_url: str) -> None:
    enqueuer = Enqueuer(connect(app_settings), app_settings)
    job_id = enqueuer.diagnose(DiagnoseJob(area="db", channel="C1", thread_ts="1.2", user="U1"))
    raw = Redis.from_url(redis_url).hget(f"rq:job:{job_id}", "data")
    assert raw is not None
    decoded = json.loads(zlib.decompress(raw))  # RQ compresses; inside is JSON, not pickle
    assert decoded[0] == RUN_DIAGNOSIS and decoded[3]["job"]["thread_ts"] == "1.2"


def test_no_token_warning_at_start(
    app_settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot token is in the environment and in Omni's client: Bolt's "`token` will be
    unused" warning would send a responder looking for a misconfiguration that is not there."""
    assert app_settings.slack_bot_token is not None
    monkeypatch.setenv("SLACK_BOT_TOKEN", app_settings.slack_bot_token.get_secret_value())
    with caplog.at_level(logging.WARNING):
        create_web_app(app_settings)
    assert not [r for r in caplog.records if "will be unused" in r.getMessage()]
