"""``POST /sns`` and ``POST /pagerduty`` through the real Flask + Bolt app, real Redis, fake Slack.

The real signed SNS messages in the fixtures were signed years ago with certificates that have
since expired: these tests verify the signature and deliberately not the certificate dates
(``sns_verify_cert_dates=False``, ``OMNI_SNS_MAX_AGE_S=0``), a test-only choice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.queue import DIAGNOSTICS_QUEUE
from bot.server import create_web_app
from commands.settings import Settings
from commands.sources.cloudwatch import CertificateStore
from sandbox.fakeslack import FakeSlack

from .helpers import FIXTURES

PD_SECRET = "pd-test-secret-4b1d"
SUBSCRIPTION = "sns_subscription_confirmation_real_sigv1.django-sns-view.json"
REAL_SIGNED = [
    "sns_notification_sigv1_real.aws-sdk-ruby.json",
    "sns_notification_sigv2_real.aws-sdk-ruby.json",
    "sns_notification_real_sigv1_with_subject_and_attributes.django-sns-view.json",
    "sns_notification_real_sigv1_message_attributes.ahonnecke-SnsPublisher.json",
]


def _no_network(url: str) -> bytes:
    raise AssertionError(f"tried to fetch {url}")


@pytest.fixture
def visited() -> list[str]:
    return []


@pytest.fixture
def web(fake_slack: FakeSlack, redis_url: str, visited: list[str]) -> Iterator[Any]:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-test"),
        slack_signing_secret=SecretStr("s3cret-signing"),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        alarm_channel="C0ALARMS",
        sns_topics=[_fixture(n)["TopicArn"] for n in (*REAL_SIGNED, SUBSCRIPTION)],
        sns_max_age_s=0,
        sns_verify_cert_dates=False,
        pagerduty_webhook_secret=SecretStr(PD_SECRET),
    )
    app = create_web_app(
        settings,
        cert_store=CertificateStore(FIXTURES / "sns-certs", fetch=_no_network),
        fetch_subscribe_url=visited.append,
    )
    with app.test_client() as client:
        yield client


def _post_sns(web: Any, message: dict[str, Any]) -> Any:
    return web.post(
        "/sns",
        data=json.dumps(message),
        headers={
            "Content-Type": "text/plain; charset=UTF-8",
            "x-amz-sns-message-type": message.get("Type", ""),
        },
    )


def _fixture(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text()))


@pytest.mark.parametrize("name", REAL_SIGNED)
def test_real_signed_messages_are_accepted(web: Any, name: str) -> None:
    response = _post_sns(web, _fixture(name))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"ignored": "not an alarm Omni reads from cloudwatch"}


def _settings(fake_slack: FakeSlack, redis_url: str, **extra: Any) -> Settings:
    return Settings(
        slack_bot_token=SecretStr("xoxb-test"),
        slack_signing_secret=SecretStr("s3cret-signing"),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        sns_max_age_s=0,
        sns_verify_cert_dates=False,
        **extra,
    )


@pytest.mark.parametrize("topics", [[], ["arn:aws:sns:us-east-1:111111111111:ours"]])
def test_a_message_signed_by_sns_for_another_topic_is_refused(
    fake_slack: FakeSlack, redis_url: str, topics: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """SNS's signature does not cover the destination: anybody's topic, subscribed to our URL,
    would be signed by SNS too.  Only the topics configured are accepted, for every type."""
    app = create_web_app(
        _settings(fake_slack, redis_url, sns_topics=topics),
        cert_store=CertificateStore(FIXTURES / "sns-certs", fetch=_no_network),
    )
    with app.test_client() as web, caplog.at_level("WARNING", logger="omni.audit"):
        for name in (*REAL_SIGNED, SUBSCRIPTION):
            response = _post_sns(web, _fixture(name))
            assert response.status_code == 403, name
            assert "OMNI_SNS_TOPICS" in response.get_json()["error"]
    assert sum("reason=topic" in r.getMessage() for r in caplog.records) == len(REAL_SIGNED) + 1
    queue = Queue(
        DIAGNOSTICS_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer
    )
    assert queue.count == 0 and not fake_slack.find("chat.postMessage")


@pytest.mark.parametrize("name", REAL_SIGNED)
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda m: m.update(Message=m["Message"] + " "), id="message"),
        pytest.param(lambda m: m.update(Timestamp="2030-01-01T00:00:00.000Z"), id="timestamp"),
        pytest.param(
            lambda m: m.update(SigningCertURL="https://sns.us-east-1.amazonaws.evil.com/x.pem"),
            id="foreign-cert-url",
        ),
        pytest.param(
            lambda m: m.update(
                SigningCertURL="http://sns.us-east-1.amazonaws.com/"
                + m["SigningCertURL"].rsplit("/", 1)[1]
            ),
            id="http-cert-url",
        ),
        pytest.param(lambda m: m.update(SignatureVersion="3"), id="unknown-version"),
        pytest.param(lambda m: m.update(Signature="AAAA"), id="bad-signature"),
    ],
)
def test_tampered_messages_get_403_and_post_nothing(
    web: Any, fake_slack: FakeSlack, name: str, tamper: Any
) -> None:
    message = _fixture(name)
    tamper(message)
    response = _post_sns(web, message)
    assert response.status_code == 403
    assert not fake_slack.find("chat.postMessage")


def test_message_older_than_max_age_is_refused(fake_slack: FakeSlack, redis_url: str) -> None:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-test"),
        slack_signing_secret=SecretStr("s3cret-signing"),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        sns_max_age_s=3600,
        sns_verify_cert_dates=False,
    )
    app = create_web_app(
        settings, cert_store=CertificateStore(FIXTURES / "sns-certs", fetch=_no_network)
    )
    with app.test_client() as web:
        response = _post_sns(web, _fixture(REAL_SIGNED[0]))
    assert response.status_code == 403 and "old" in response.get_json()["error"]


def test_expired_certificate_refused_when_dates_are_checked(
    fake_slack: FakeSlack, redis_url: str
) -> None:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-test"),
        slack_signing_secret=SecretStr("s3cret-signing"),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        sns_max_age_s=0,
    )
    app = create_web_app(
        settings, cert_store=CertificateStore(FIXTURES / "sns-certs", fetch=_no_network)
    )
    with app.test_client() as web:
        response = _post_sns(web, _fixture(REAL_SIGNED[0]))
    assert response.status_code == 403 and "not valid now" in response.get_json()["error"]


def test_subscription_confirmed_only_for_allowed_topics(web: Any, visited: list[str]) -> None:
    message = _fixture(SUBSCRIPTION)
    assert _post_sns(web, message).status_code == 200
    assert visited == [message["SubscribeURL"]]


def test_subscription_to_other_topics_refused(
    fake_slack: FakeSlack, redis_url: str, visited: list[str]
) -> None:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-test"),
        slack_signing_secret=SecretStr("s3cret-signing"),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        sns_max_age_s=0,
        sns_verify_cert_dates=False,
        sns_topics=["arn:aws:sns:us-east-1:1:other"],
    )
    app = create_web_app(
        settings,
        cert_store=CertificateStore(FIXTURES / "sns-certs", fetch=_no_network),
        fetch_subscribe_url=visited.append,
    )
    with app.test_client() as web:
        response = _post_sns(
            web, _fixture("sns_subscription_confirmation_real_sigv1.django-sns-view.json")
        )
    assert response.status_code == 403 and visited == []


def _pd(web: Any, body: bytes, signature: str | None, webhook_id: str = "wh-1") -> Any:
    headers = {"Content-Type": "application/json", "X-Webhook-Id": webhook_id}
    if signature:
        headers["X-PagerDuty-Signature"] = signature
    return web.post("/pagerduty", data=body, headers=headers)


def _sign(body: bytes, secret: str = PD_SECRET) -> str:
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_pagerduty_signature_vector_from_go_pagerduty() -> None:
    from commands.sources.pagerduty import signature_ok

    lines = dict(
        line.split("=", 1)
        for line in (
            FIXTURES
            / "pagerduty_webhook_v3_incident_priority_updated.signature_vector.go-pagerduty.txt"
        )
        .read_text()
        .splitlines()
        if line and not line.startswith(("#", "X-", "mismatch"))
    )
    body = (
        FIXTURES / "pagerduty_webhook_v3_incident_priority_updated.signed_body.go-pagerduty.json"
    ).read_bytes()
    good = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
    bad = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"
    assert signature_ok(lines["secret"], body, good)
    assert not signature_ok(lines["secret"], body, bad)
    assert signature_ok(lines["secret"], body, f"{bad}, {good}")  # rotation: any of several


def _work_alarm_jobs(redis_url: str, fake_slack: FakeSlack) -> list[dict[str, Any]]:
    """What ``omni worker`` does with the alarms the endpoints enqueued (the triage jobs they
    lead to stay queued: they would run the runbooks)."""
    from bot.jobs import RECEIVE_ALARM
    from bot.slack_client import make_web_client
    from commands.aws import ClientPool
    from workers import jobs
    from workers.runtime import Runtime, set_runtime

    redis = Redis.from_url(redis_url)
    settings = _settings(fake_slack, redis_url, alarm_channel="C0ALARMS", post_interval_ms=0)
    set_runtime(Runtime.with_redis(settings, ClientPool(), make_web_client(settings), redis))
    queue = Queue(DIAGNOSTICS_QUEUE, connection=redis, serializer=JSONSerializer)
    done = []
    try:
        for job in queue.jobs:
            if job.func_name == RECEIVE_ALARM:
                done.append(jobs.receive_alarm(job.kwargs["job"]))
                job.delete()
    finally:
        set_runtime(None)
    return done


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_pagerduty_triggered_then_resolved(web: Any, fake_slack: FakeSlack, redis_url: str) -> None:
    doc = _fixture("pagerduty_webhook_v3_incident_triggered.reconstructed.json")
    doc["event"]["data"]["title"] = "ALARM: omnirapeutic-production-rds-cpu-high"
    doc["event"]["occurred_at"] = _now_iso()
    body = json.dumps(doc).encode()
    response = _pd(web, body, f"v1={'0' * 64}, {_sign(body)}")
    assert response.status_code == 202
    assert not fake_slack.find("chat.postMessage")  # the worker posts, not the web process
    _work_alarm_jobs(redis_url, fake_slack)
    root = fake_slack.wait_for(lambda: fake_slack.roots("C0ALARMS"))[0]
    assert "PagerDuty incident" in root["text"] and "rds-cpu-high" in root["text"]
    reply = fake_slack.wait_for(
        lambda: [c for c in fake_slack.find("chat.postMessage") if c.thread_ts == root["ts"]]
    )[0]
    assert "Triaging" in reply.text and "db" in reply.text
    queue = Queue(
        DIAGNOSTICS_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer
    )
    assert [j.kwargs["job"]["runbooks"] for j in queue.jobs] == [["db"]]
    # the same signed delivery again, even under a new X-Webhook-Id (a replay): nothing new
    event_id = doc["event"]["id"]
    assert _pd(web, body, _sign(body), webhook_id="wh-9").get_json() == {"duplicate": event_id}
    # resolved → a note in the same thread
    doc["event"].update(event_type="incident.resolved", id="01RESOLVED", occurred_at=_now_iso())
    body2 = json.dumps(doc).encode()
    assert _pd(web, body2, _sign(body2), webhook_id="wh-2").status_code == 202
    _work_alarm_jobs(redis_url, fake_slack)
    note = fake_slack.wait_for(
        lambda: [
            c
            for c in fake_slack.find("chat.postMessage")
            if c.thread_ts == root["ts"] and "recovered" in c.text
        ]
    )
    assert "RESOLVED" in note[0].text


@pytest.mark.parametrize(
    "signature", [None, "v1=" + "ab" * 32, "v0=whatever", _sign(b"other body")]
)
def test_pagerduty_bad_signature_401(
    web: Any, fake_slack: FakeSlack, signature: str | None
) -> None:
    body = (FIXTURES / "pagerduty_webhook_v3_incident_triggered.reconstructed.json").read_bytes()
    assert _pd(web, body, signature).status_code == 401
    assert not fake_slack.find("chat.postMessage")


def test_pagerduty_event_older_than_the_window_is_refused(
    web: Any, fake_slack: FakeSlack, redis_url: str
) -> None:
    doc = _fixture("pagerduty_webhook_v3_incident_triggered.reconstructed.json")
    doc["event"]["occurred_at"] = "2020-10-02T18:45:22.169Z"
    body = json.dumps(doc).encode()
    response = _pd(web, body, _sign(body))
    assert response.status_code == 403 and "occurred" in response.get_json()["error"]
    queue = Queue(
        DIAGNOSTICS_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer
    )
    assert queue.count == 0
