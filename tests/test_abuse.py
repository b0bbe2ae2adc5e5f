"""The abuse suite: forged, replayed, malformed and oversized requests, and clicks by the
wrong people.  Each is refused with the right status, counted in /metrics, and nothing is
enqueued or posted.  Real Redis, the fake Slack, the Flask app the gunicorn workers serve."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import SecretStr
from redis import Redis

from bot.plans import PlanStore, plan_key
from bot.server import create_web_app
from commands.fixes import catalogue, propose
from commands.settings import Settings
from commands.sources.cloudwatch import CertificateStore
from sandbox.fakeslack import FakeSlack
from sandbox.requests import block_actions_body, signed_headers, slash_command_body

from .helpers import FIXTURES, any_plan_of, slack_settings

SECRET = "abuse-signing-secret-77"
TOKEN = "xoxb-abuse-token"
PD_SECRET = "pd-abuse-secret-31"
SNS_SIGNED = "sns_notification_sigv1_real.aws-sdk-ruby.json"


@pytest.fixture
def settings(fake_slack: FakeSlack, redis_url: str) -> Settings:
    return slack_settings(
        fake_slack,
        redis_url,
        TOKEN,
        SECRET,
        alarm_channel="C0ALARMS",
        sns_max_age_s=0,
        sns_verify_cert_dates=False,
        pagerduty_webhook_secret=SecretStr(PD_SECRET),
        role_bindings={"viewer": ["U0VIEWER"], "operator": ["U0OP"], "admin": ["U0ADMIN"]},
    )


@pytest.fixture
def web(settings: Settings) -> Iterator[Any]:
    def no_network(url: str) -> bytes:
        raise AssertionError(f"tried to fetch {url}")

    app = create_web_app(
        settings, cert_store=CertificateStore(FIXTURES / "sns-certs", fetch=no_network)
    )
    with app.test_client() as client:
        yield client


def _rejected(web: Any) -> dict[tuple[str, str], float]:
    text = web.get("/metrics").get_data(as_text=True)
    pattern = r'omni_requests_rejected_total\{endpoint="([^"]+)",reason="([^"]+)"\} ([0-9.e+]+)'
    return {(e, r): float(v) for e, r, v in re.findall(pattern, text)}


def _slack(web: Any, body: str, headers: dict[str, str]) -> Any:
    return web.post("/slack/events", data=body, headers=headers)


def _signed(body: str, content_type: str = "application/x-www-form-urlencoded", **kw: Any) -> Any:
    return signed_headers(SECRET, body, content_type=content_type, **kw)


HELP = slash_command_body("help")


def _missing_signature(web: Any) -> Any:
    return _slack(web, HELP, {"Content-Type": "application/x-www-form-urlencoded"})


def _bad_signature(web: Any) -> Any:
    return _slack(web, HELP, signed_headers("not-the-secret", HELP))


def _old_timestamp(web: Any) -> Any:
    return _slack(web, HELP, _signed(HELP, timestamp=int(time.time()) - 6 * 60))


def _replayed(web: Any) -> Any:
    body = slash_command_body("help")
    headers = _signed(body)
    assert _slack(web, body, headers).status_code == 200  # the genuine one
    return _slack(web, body, headers)  # and the same bytes again


def _wrong_content_type(web: Any) -> Any:
    return _slack(web, HELP, _signed(HELP, content_type="text/plain"))


def _oversized(web: Any) -> Any:
    body = slash_command_body("diagnose db " + "x" * (2 * 1024 * 1024))
    return _slack(web, body, _signed(body))


def _malformed_payload(web: Any) -> Any:
    body = urlencode({"payload": '{"type": "block_actions", "actions": [{'})
    return _slack(web, body, _signed(body))


def _payload_not_an_object(web: Any) -> Any:
    body = urlencode({"payload": "[1, 2, 3]"})
    return _slack(web, body, _signed(body))


def _malformed_json_event(web: Any) -> Any:
    body = '{"type": "event_callback", "event": '
    return _slack(web, body, _signed(body, content_type="application/json"))


def _sns(web: Any, mutate: Callable[[dict[str, Any]], None]) -> Any:
    message = json.loads((FIXTURES / SNS_SIGNED).read_text())
    mutate(message)
    return web.post("/sns", data=json.dumps(message), headers={"Content-Type": "text/plain"})


def _pd_bad_hmac(web: Any) -> Any:
    body = (FIXTURES / "pagerduty_webhook_v3_incident_triggered.reconstructed.json").read_bytes()
    wrong = hmac.new(b"guessed", body, hashlib.sha256).hexdigest()
    return web.post(
        "/pagerduty",
        data=body,
        headers={"Content-Type": "application/json", "X-PagerDuty-Signature": f"v1={wrong}"},
    )


def _pd_oversized(web: Any) -> Any:
    return web.post(
        "/pagerduty",
        data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )


CASES = [
    ("slack-missing-signature", _missing_signature, 401, ("slack", "signature")),
    ("slack-bad-signature", _bad_signature, 401, ("slack", "signature")),
    ("slack-timestamp-6-min-old", _old_timestamp, 401, ("slack", "signature")),
    ("slack-replayed", _replayed, 401, ("slack", "replay")),
    ("slack-wrong-content-type", _wrong_content_type, 415, ("slack", "content_type")),
    ("slack-oversized-body", _oversized, 413, ("slack", "oversized")),
    ("slack-malformed-payload-json", _malformed_payload, 400, ("slack", "malformed")),
    ("slack-payload-not-an-object", _payload_not_an_object, 400, ("slack", "malformed")),
    ("slack-malformed-event-json", _malformed_json_event, 400, ("slack", "malformed")),
    (
        "sns-tampered-message",
        lambda w: _sns(w, lambda m: m.update(Message=m["Message"] + "!")),
        403,
        ("sns", "signature"),
    ),
    (
        "sns-cert-url-off-amazonaws",
        lambda w: _sns(
            w, lambda m: m.update(SigningCertURL="https://sns.us-east-1.evil.example/c.pem")
        ),
        403,
        ("sns", "cert_url"),
    ),
    (
        "sns-unknown-signature-version",
        lambda w: _sns(w, lambda m: m.update(SignatureVersion="7")),
        403,
        ("sns", "signature_version"),
    ),
    (
        "sns-not-json",
        lambda w: w.post("/sns", data=b"<xml/>", headers={"Content-Type": "text/plain"}),
        400,
        ("sns", "malformed"),
    ),
    ("pagerduty-bad-hmac", _pd_bad_hmac, 401, ("pagerduty", "signature")),
    ("pagerduty-oversized", _pd_oversized, 413, ("pagerduty", "oversized")),
]


@pytest.mark.parametrize(
    ("attack", "expected_status", "counted"),
    [pytest.param(fn, status, label, id=name) for name, fn, status, label in CASES],
)
def test_bad_requests_are_refused_counted_and_change_nothing(
    web: Any,
    fake_slack: FakeSlack,
    redis_url: str,
    attack: Callable[[Any], Any],
    expected_status: int,
    counted: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = _rejected(web)
    with caplog.at_level("WARNING", logger="omni.audit"):
        response = attack(web)
    assert response.status_code == expected_status, response.get_data(as_text=True)[:300]
    after = _rejected(web)
    assert after.get(counted, 0) - before.get(counted, 0) == 1, (counted, after)
    assert sum(after.values()) - sum(before.values()) == 1  # counted once, under one reason
    assert any("rejected" in r.getMessage() for r in caplog.records)  # an audit line
    time.sleep(0.2)  # give a wrongly accepted request's lazy work time to show
    assert not Redis.from_url(redis_url).keys("rq:job:*")
    assert not fake_slack.find("chat.postMessage")


@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    text=st.text(max_size=300),
    payload=st.one_of(st.none(), st.text(max_size=200), st.binary(max_size=200).map(repr)),
)
def test_signed_garbage_never_gets_a_5xx(web: Any, text: str, payload: str | None) -> None:
    """Whatever a signed request carries, Omni answers it without a server error."""
    body = (
        urlencode({"payload": payload})
        if payload is not None
        else slash_command_body("audit x " + text)
    )
    response = _slack(web, body, _signed(body))
    assert response.status_code < 500, response.get_data(as_text=True)[:300]


# -- authorisation -----------------------------------------------------------------------------
def _click(web: Any, user: str, action_id: str, value: str, **extra: Any) -> None:
    button = {"action_id": action_id, "value": value}
    body = block_actions_body(user, "C1", "5.5", "1.1", button, **extra)
    assert _slack(web, body, _signed(body)).status_code == 200


def _store(redis_url: str, settings: Settings) -> PlanStore:
    return PlanStore(Redis.from_url(redis_url), plan_key(TOKEN), settings.plan_ttl_s)


def _told(fake_slack: FakeSlack, user: str, n: int) -> list[str]:
    calls = fake_slack.wait_for(
        lambda: (
            len(fake_slack.find("chat.postEphemeral", user=user)) >= n
            and fake_slack.find("chat.postEphemeral", user=user)
        )
    )
    return [c.text for c in calls]


def test_a_viewer_is_refused_every_fix(
    web: Any, fake_slack: FakeSlack, redis_url: str, settings: Settings
) -> None:
    store = _store(redis_url, settings)
    plans = []
    for i, fix_id in enumerate(sorted(catalogue())):
        plan = store.propose(
            any_plan_of(fix_id, Target=f"t{i}"),
            check="x.y",
            finding="f",
            channel="C1",
            thread_ts="1.1",
            environment="production",
        )
        plans.append(plan)
        _click(web, "U0VIEWER", f"remediate:{fix_id}:0", store.ref(plan))
    said = _told(fake_slack, "U0VIEWER", len(catalogue()))
    assert len(said) == len(catalogue()) >= 13
    for fix_id in catalogue():
        assert any(f"`{fix_id}`" in s and "you are a viewer. Nothing was done." in s for s in said)
    assert all(store.get(p.id).state == "proposed" for p in plans)  # type: ignore[union-attr]
    assert not Redis.from_url(redis_url).keys("rq:job:*")


def test_the_payload_cannot_change_a_plan(
    web: Any, fake_slack: FakeSlack, redis_url: str, settings: Settings
) -> None:
    store = _store(redis_url, settings)
    plan = store.propose(
        propose("ecs.scale_service", cluster="c", service="s", desiredCount=3),
        check="perf.ecs_cpu",
        finding="f",
        channel="C1",
        thread_ts="1.1",
        environment="production",
    )
    ref = store.ref(plan)
    plan_id, _, signature = ref.partition(".")
    forged = [
        f"{plan_id}.{'0' * len(signature)}",  # a made-up signature
        ref[:-1] + ("0" if ref[-1] != "0" else "1"),  # one character changed
        json.dumps({"plan": plan_id, "params": {"desiredCount": 300}}),  # parameters, inline
    ]
    for value in forged:
        _click(web, "U0OP", "remediate:ecs.scale_service:0", value)
    # the genuine reference under another fix's action id
    _click(web, "U0ADMIN", "remediate:rds.start_cluster:0", ref)
    # parameters smuggled beside a genuine reference are ignored: the stored plan runs
    _click(web, "U0OP", "remediate:ecs.scale_service:0", ref, params={"desiredCount": 300})
    told = _told(fake_slack, "U0OP", 3) + _told(fake_slack, "U0ADMIN", 1)
    assert len(told) == 4
    assert all("does not match any plan Omni proposed; nothing was done" in t for t in told)
    approved = fake_slack.wait_for(
        lambda: (p := store.get(plan.id)) is not None and p.state == "approved" and p
    )
    assert approved.params == {"cluster": "c", "service": "s", "desiredCount": 3}
    assert approved.approvals == ["U0OP"]
