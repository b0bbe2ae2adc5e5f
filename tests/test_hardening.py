"""Issue 18: nobody gets in, nothing is lost.  Each test here failed before its fix; the
attack or fault and what Omni does are listed in docs/reliability.md."""

from __future__ import annotations

import json
import re
import re._constants as sre_constants  # the parser re itself uses (3.11+)
import re._parser as sre_parse
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from pydantic import SecretStr
from redis import Redis

from bot import render
from bot.audit import Audit, read
from bot.plans import Plan, params_hash, plan_key, signing_key
from bot.server import create_web_app
from bot.slack_client import make_web_client
from bot.timeline import markdown
from bot.triage import _first_reply, _unrouted_text
from commands import iam
from commands.alarm import Alarm
from commands.analysis import Offer, analyse
from commands.models import Finding, Remediation, Report, Risk, Status
from commands.settings import Settings
from commands.sources import _scan, classes
from sandbox import Stack
from sandbox.fakeslack import FakeSlack
from sandbox.requests import block_actions_body, signed_headers, slash_command_body
from workers import fixes as fix_jobs
from workers.post import publish
from workers.runtime import Runtime

from .helpers import (
    FIXTURES,
    REPO,
    clean_env,
    free_port,
    installed_runtime,
    plan_in_thread,
    process,
    wait_http,
)

SECRET = "hardening-signing-secret"
TOKEN = "xoxb-hardening"
HOSTILE = "<!channel> <@U0EVIL> <https://evil.example/approve|Approve the fix here> & co"
LIVE = ("<!channel>", "<@U0EVIL>", "<https://evil.example")


@pytest.fixture
def settings(fake_slack: FakeSlack, redis_url: str) -> Settings:
    return Settings(
        slack_bot_token=SecretStr(TOKEN),
        slack_signing_secret=SecretStr(SECRET),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        role_bindings={"operator": ["U0OP1", "U0OP2"], "admin": ["U0ADMIN"]},
        command_rate_per_min=6,
        command_burst=3,
    )


@pytest.fixture
def web(settings: Settings) -> Iterator[Any]:
    with create_web_app(settings).test_client() as client:
        yield client


def _post(web: Any, body: str, **headers: str) -> Any:
    return web.post("/slack/events", data=body, headers={**signed_headers(SECRET, body), **headers})


def _inert(text: str) -> None:
    """None of the hostile text's controls is live; the text itself is still there."""
    assert not any(live in text for live in LIVE), text
    assert "&lt;!channel&gt;" in text, text


# -- 1. /sns with no topics ------------------------------------------------------------------
def test_sns_refuses_every_message_when_no_topic_is_configured(
    fake_slack: FakeSlack, redis_url: str
) -> None:
    """A genuine SNS signature is not enough: with no topic listed, nothing is let in."""
    from commands.sources.cloudwatch import CertificateStore

    settings = Settings(
        slack_bot_token=SecretStr(TOKEN),
        slack_signing_secret=SecretStr(SECRET),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        sns_topics=[],
        sns_max_age_s=0,
        sns_verify_cert_dates=False,  # the fixtures' certificates have expired since
    )
    store = CertificateStore(FIXTURES / "sns-certs", fetch=lambda url: b"")
    with create_web_app(settings, cert_store=store).test_client() as web:
        for name in (
            "sns_notification_sigv1_real.aws-sdk-ruby.json",
            "sns_subscription_confirmation_real_sigv1.django-sns-view.json",
        ):
            response = web.post("/sns", data=(FIXTURES / name).read_bytes())
            assert response.status_code == 403
            assert response.get_json()["error"].startswith("topic:")
    assert not Redis.from_url(redis_url).keys("rq:job:*")


# -- 2. untrusted text in mrkdwn --------------------------------------------------------------
def test_untrusted_text_is_inert_in_every_renderer(redis_url: str, fake_slack: FakeSlack) -> None:
    alarm = Alarm(source="slack", name=HOSTILE, state="ALARM", reason=HOSTILE)
    _inert(_first_reply(alarm, ["db"], ["db"]))
    _inert(_unrouted_text(alarm))
    for cls in classes().values():
        _inert(cls().headline(alarm, {"event": {"data": {"title": HOSTILE}}}))
    finding = Finding(
        check="db.cluster_status",
        status=Status.FAIL,
        title=HOSTILE,
        detail=HOSTILE,
        evidence={"log": HOSTILE},
        remediations=[
            Remediation(
                id="rds.start_cluster",
                title=HOSTILE,
                params={"DBClusterIdentifier": HOSTILE},
                call=f"rds:StartDBCluster {{'DBClusterIdentifier': '{HOSTILE}'}}",
                terraform=HOSTILE,
                risk=Risk.LOW,
                role="operator",
                target=HOSTILE,
            )
        ],
    )
    report = Report(
        runbook="db",
        environment="production",
        region="us-east-1",
        duration_ms=1,
        findings=[finding],
    )
    for _, blocks in render.report_messages(report, analyse([report])):
        _inert(json.dumps(blocks))
    # the audit mirror, and /omni audit's listing of it
    slack = make_web_client(
        Settings(slack_bot_token=SecretStr(TOKEN), slack_api_url=fake_slack.url)
    )
    redis = Redis.from_url(redis_url)
    Audit(redis, slack, "C0AUDIT").record("refused", user=None, outcome=HOSTILE)
    [mirror] = fake_slack.find("chat.postMessage", channel="C0AUDIT")
    _inert(mirror.text)
    assert " by Omni:" in mirror.text and "<@->" not in mirror.text  # no user: "Omni"
    # the incident timeline file
    md = markdown([{"time": "2026-11-29 10:00:00", "user": "-", "text": HOSTILE}], "C1", "1.1")
    assert not any(live in md for live in LIVE)


def test_audit_listing_in_slack_escapes_and_names_omni(web: Any, redis_url: str) -> None:
    Audit(Redis.from_url(redis_url)).record("refused", user=None, outcome=HOSTILE)
    response = _post(web, slash_command_body("audit", user="U0OP1"))
    text = response.get_json()["text"]
    _inert(text)
    assert "by Omni" in text


# -- 3. the plan's seal -----------------------------------------------------------------------
@pytest.fixture
def runtime(settings: Settings, redis_url: str, stack: Stack) -> Iterator[Runtime]:
    with installed_runtime(settings, Redis.from_url(redis_url)) as rt:
        yield rt


def _desired(stack: Stack) -> int:
    svc = boto3.client("ecs", region_name="us-east-1").describe_services(
        cluster=stack.names.ecs_cluster, services=[stack.names.ecs_service]
    )["services"][0]
    return int(svc["desiredCount"])


def test_a_plan_written_in_redis_without_the_key_never_runs(
    runtime: Runtime, stack: Stack, fake_slack: FakeSlack, web: Any
) -> None:
    """Someone who reaches Redis writes an approved plan (or edits a genuine one) and enqueues
    its fix: the worker checks the seal, refuses, and tells the thread; AWS is untouched."""
    assert runtime.plans is not None and runtime.redis is not None
    store, redis = runtime.plans, runtime.redis
    genuine = plan_in_thread(
        store,
        "ecs.scale_service",
        cluster=stack.names.ecs_cluster,
        service=stack.names.ecs_service,
        desiredCount=3,
    )
    ref = store.ref(genuine)
    before = _desired(stack)
    # (a) edited in Redis: more tasks, approved, its parameter hash recomputed to match
    doc = json.loads(redis.get(f"omni:plan:{genuine.id}") or b"{}")
    doc["params"]["desiredCount"] = 40
    doc.update(state="approved", approvals=["U0OP1"])
    doc["params_hash"] = params_hash(doc["params"])
    redis.set(f"omni:plan:{genuine.id}", json.dumps(doc))
    # (b) written from scratch, sealed with a key guessed from nothing
    forged = Plan(**{**doc, "id": "f" * 24, "seal": "0" * 64})
    redis.set(f"omni:plan:{forged.id}", forged.model_dump_json())
    for plan_id in (genuine.id, forged.id):
        result = fix_jobs.run_fix({"plan_id": plan_id, "approver": "U0OP1"})
        assert result["ran"] is False and "seal" in result["refused"]
    assert _desired(stack) == before
    told = [c.text for c in fake_slack.find("chat.postMessage") if c.thread_ts == "1.1"]
    assert sum("does not carry Omni's seal" in t for t in told) == 2
    refused = [r for r in read(redis, 60) if r["event"] == "refused"]
    assert {r["plan"] for r in refused} == {genuine.id, forged.id}
    # the bot resolves no button to the edited plan either, and cannot move it
    assert store.resolve(ref) is None
    assert store.transition(genuine.id, {"approved"}, "running") is None


def test_a_sealed_plan_needs_its_approvals(runtime: Runtime, stack: Stack) -> None:
    assert runtime.plans is not None
    store = runtime.plans
    plan = plan_in_thread(
        store,
        "ec2.allow_ecs_to_aurora",
        GroupId=stack.outputs["aurora_security_group_id"],
        SourceSecurityGroupId=stack.outputs["ecs_security_group_id"],
        Port=5432,
    )
    assert plan.risk is Risk.HIGH
    store.transition(plan.id, {"proposed"}, "approved", approvals=["U0ADMIN"])
    result = fix_jobs.run_fix({"plan_id": plan.id, "approver": "U0ADMIN"})
    assert result["ran"] is False and result["refused"] == "the plan has 1 of 2 approvals"


def test_the_plan_key_setting_is_the_key(settings: Settings) -> None:
    assert signing_key(settings) == plan_key(TOKEN)
    keyed = settings.model_copy(update={"plan_key": SecretStr("k" * 32)})
    assert signing_key(keyed) == plan_key("k" * 32) != plan_key(TOKEN)


# -- 5. a click is bound to its message -------------------------------------------------------
def test_a_click_from_another_channel_or_message_is_refused(
    web: Any, runtime: Runtime, fake_slack: FakeSlack, stack: Stack
) -> None:
    """Buttons are posted by a real run; the same button value sent with another channel, or
    another message of the same channel, approves nothing."""
    from sandbox import apply_scenario
    from workers import jobs

    apply_scenario("aurora-stopped", stack)
    root = str(runtime.slack.chat_postMessage(channel="C0INC", text="Diagnosing db…")["ts"])
    jobs.run_diagnosis({"area": "db", "channel": "C0INC", "thread_ts": root, "user": "U0OP1"})
    [update] = fake_slack.find("chat.update", ts=root)
    button = next(
        e
        for b in update.body["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].startswith("remediate:rds.start_cluster")
    )
    assert runtime.plans is not None
    plan = runtime.plans.resolve(button["value"])
    assert plan is not None and plan.messages == [root]

    def click(channel: str, message_ts: str, thread_ts: str | None) -> None:
        body = block_actions_body("U0OP1", channel, message_ts, thread_ts, button)
        assert _post(web, body).status_code == 200

    click("C0OTHER", root, None)  # the operator's click, sent with another channel
    click("C0INC", "1700000000.999999", root)  # another message in the same thread
    told = fake_slack.wait_for(
        lambda: (
            len(fake_slack.find("chat.postEphemeral", user="U0OP1")) >= 2
            and fake_slack.find("chat.postEphemeral", user="U0OP1")
        )
    )
    assert all("was not posted here" in c.text for c in told)
    assert runtime.plans.get(plan.id).state == "proposed"  # type: ignore[union-attr]
    click("C0INC", root, None)  # the message it was posted in
    fake_slack.wait_for(lambda: runtime.plans.get(plan.id).state == "approved")  # type: ignore[union-attr]


# -- 6. smaller holes ---------------------------------------------------------------------------
def test_a_non_ascii_signature_is_401_not_500(web: Any) -> None:
    body = slash_command_body("diagnose db")
    headers = signed_headers(SECRET, body)
    headers["X-Slack-Signature"] = "v0=" + "é" * 64
    response = web.post("/slack/events", data=body.encode(), headers=headers)
    assert response.status_code == 401


def test_omni_has_a_per_user_token_bucket(web: Any, redis_url: str) -> None:
    """Burst 3 at 6 a minute: the fourth command in a row is refused with when to come back;
    another user is not affected; nothing more is enqueued."""
    answers = [
        _post(web, slash_command_body("diagnose db", user="U0FLOOD", trigger_id=f"t{i}"))
        for i in range(5)
    ]
    texts = [a.get_json()["text"] for a in answers]
    assert all(":mag: Diagnosing *db*" in t for t in texts[:3])
    assert all("Try again in" in t for t in texts[3:]), texts
    wait = int(re.search(r"Try again in (\d+) s", texts[3]).group(1))  # type: ignore[union-attr]
    assert 1 <= wait <= 10
    other = _post(web, slash_command_body("diagnose db", user="U0CALM")).get_json()["text"]
    assert ":mag: Diagnosing" in other
    assert len(Redis.from_url(redis_url).lrange("rq:queue:omni-diagnostics", 0, -1)) == 4


def test_audit_is_trimmed_by_age_and_exact_inside_the_retention(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    now_ms = int(time.time() * 1000)
    for days in (400, 380, 200, 10):  # older records, written when they happened
        redis.xadd(
            "omni:audit", {"event": "old", "at": str(days)}, id=f"{now_ms - days * 86400000}-0"
        )
    audit = Audit(redis, retention_days=365)
    for i in range(3):
        audit.record("proposed", user="U1", outcome=f"now {i}")
    ats = [r["at"] for r in read(redis, 400 * 86400)]
    assert "400" not in ats and "380" not in ats  # older than a year: trimmed on write
    assert ats[:2] == ["200", "10"] and len(ats) == 5  # everything inside the year, in order
    assert [r["outcome"] for r in read(redis, 3600)] == ["now 0", "now 1", "now 2"]


def test_policies_scope_the_state_and_the_ingress_changes() -> None:
    policy = iam.diagnostics_policy(
        iam.recorded_actions(), "acme", ("s3://acme-tfstate-1/prod/terraform.tfstate",)
    )
    [get] = [st for st in policy["Statement"] if "s3:GetObject" in st["Action"]]
    assert get["Resource"] == ["arn:aws:s3:::acme-tfstate-1/prod/terraform.tfstate"]
    unknown = iam.diagnostics_policy(iam.recorded_actions(), "acme")
    [get] = [st for st in unknown["Statement"] if "s3:GetObject" in st["Action"]]
    assert get["Resource"] == ["arn:aws:s3:::acme-*/*.tfstate"]
    fixes = iam.fixes_policy("acme")["Statement"]
    [ingress] = [st for st in fixes if "ec2:AuthorizeSecurityGroupIngress" in st["Action"]]
    assert ingress["Resource"] == ["arn:aws:ec2:*:*:security-group/*"]
    assert ingress["Condition"] == {"StringEquals": {"aws:ResourceTag/Project": "acme"}}
    assert "*" not in json.dumps(ingress["Condition"])


# -- 7. no pattern backtracks ------------------------------------------------------------------
def _unbounded(pattern: re.Pattern[str]) -> list[str]:
    """The repetitions in a pattern without an upper bound."""
    found: list[str] = []

    def walk(items: Any) -> None:
        for op, arg in items:
            if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
                lo, hi, sub = arg
                if hi == sre_constants.MAXREPEAT:
                    found.append(f"{{{lo},}}")
                walk(sub)
            elif op in (sre_constants.SUBPATTERN,):
                walk(arg[-1])
            elif op == sre_constants.BRANCH:
                for branch in arg[1]:
                    walk(branch)

    walk(sre_parse.parse(pattern.pattern, pattern.flags))
    return found


def test_every_alarm_pattern_is_bounded() -> None:
    patterns = [v for v in vars(_scan).values() if isinstance(v, re.Pattern)]
    patterns += list(_scan._DIMENSION.values())
    assert len(patterns) >= 20
    assert {p.pattern: _unbounded(p) for p in patterns if _unbounded(p)} == {}


ADVERSARIAL = [
    "State" + " " * 3000 + "x",  # the old state-field pattern: 58 s at 400 spaces, O(n^4)
    "Alarm Name" + " " * 3000,
    "*LoadBalancer*" + " \t" * 1500 + "\n" + " " * 500,
    "CloudWatch Alarm | " + "a " * 1500,
    ("State: " * 400) + "x",
]


def test_adversarial_alarm_posts_are_read_at_once() -> None:
    """Posts that took minutes (hours, at 3 KB) with the earlier patterns, through
    ``omni alarm explain`` in a child process: a generous guard, not a benchmark."""
    script = (
        "import json,sys\n"
        "from commands.sources import parse_any\n"
        "for text in json.load(sys.stdin):\n"
        "    parse_any({'type': 'message', 'subtype': 'bot_message', 'bot_id': 'B1', 'text': text})\n"
        "print('done')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(ADVERSARIAL * 4),
        env=clean_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.stdout.strip() == "done", out.stderr


# -- 9. serve without Slack -------------------------------------------------------------------
def test_serve_starts_and_queues_alarms_while_slack_is_unreachable(
    redis_url: str, tmp_path: Path
) -> None:
    port, dead = free_port(), free_port()
    pd_secret = "pd-hardening"
    env = clean_env(
        REDIS_URL=redis_url,
        OMNI_SLACK_API_URL=f"http://127.0.0.1:{dead}/api/",
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        OMNI_PAGERDUTY_WEBHOOK_SECRET=pd_secret,
        OMNI_ALARM_CHANNEL="C0ALARMS",
    )
    log = tmp_path / "serve.log"
    with process(["serve", "--host", "127.0.0.1", "--port", str(port)], env, log):
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["slack"] in ("unchecked", "unreachable")
        body = (
            REPO
            / "tests"
            / "fixtures"
            / "pagerduty_webhook_v3_incident_triggered.reconstructed.json"
        ).read_bytes()
        doc = json.loads(body)
        doc["event"]["occurred_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body = json.dumps(doc).encode()
        import hashlib
        import hmac

        signature = "v1=" + hmac.new(pd_secret.encode(), body, hashlib.sha256).hexdigest()
        answer = requests.post(
            f"http://127.0.0.1:{port}/pagerduty",
            data=body,
            headers={"X-PagerDuty-Signature": signature, "Content-Type": "application/json"},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        assert Redis.from_url(redis_url).llen("rq:queue:omni-diagnostics") == 1
        deadline = time.monotonic() + 30  # the client's own retries first, then the backoff
        while "token checked again" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
    text = log.read_text()
    assert "serving anyway, token checked again" in text
    assert "OMNI_SNS_TOPICS is empty" in text  # said at start: /sns refuses everything
    assert "Traceback" not in text


# -- 11. Slack's size limit ---------------------------------------------------------------------
def test_a_message_slack_refuses_as_too_long_is_sent_smaller(
    runtime: Runtime, fake_slack: FakeSlack, stack: Stack
) -> None:
    fake_slack.block_text_limit = 2500  # every detail message of this run is over it
    findings = [
        Finding(
            check=f"db.check_{i}",
            status=Status.FAIL,
            title=f"finding {i}",
            detail="x" * 900,
            evidence={"lines": ["ü" * 120] * 4},
        )
        for i in range(6)
    ]
    report = Report(
        runbook="db", environment="production", region="us-east-1", duration_ms=1, findings=findings
    )
    header = render.Header(
        kind="diagnose", environment="production", region="us-east-1", asked=["db"]
    )
    root = str(runtime.slack.chat_postMessage(channel="C1", text="Diagnosing db…")["ts"])
    result = publish(
        runtime.slack,
        channel="C1",
        thread_ts=root,
        verdict_ts=root,
        header=header,
        reports=[report],
        analysis=analyse([report]),
        make_plan=None,
    )
    refused = [
        c
        for c in fake_slack.calls
        if c.method == "chat.postMessage" and c.body.get("thread_ts") == root
    ]
    posted = [
        m for (c, _), m in fake_slack.messages.items() if c == "C1" and m.get("thread_ts") == root
    ]
    assert len(refused) > len(posted) >= 2  # refused first, then sent in parts
    text = " ".join(json.dumps(m["blocks"], ensure_ascii=False) for m in posted)
    assert all(f"finding {i}" in text for i in range(6))  # nothing dropped
    assert "ü" * 20 in text and "\\u00fc" not in text  # non-ASCII evidence as it is
    assert result["messages"] == len(posted)


# -- 12. readability ------------------------------------------------------------------------------
def test_hints_and_confirm_dialogs_read_right() -> None:
    r = Remediation(
        id="ec2.allow_ecs_to_aurora",
        title="Allow ECS to reach Aurora",
        params={"GroupId": "sg-0abc"},
        call="ec2:AuthorizeSecurityGroupIngress {'GroupId': 'sg-0abc', 'IpPermissions': [{'x': 1}]}",
        terraform="terraform force-unlock <LOCK_ID>",
        risk=Risk.HIGH,
        role="admin",
        target="sg-0abc",
    )
    finding = Finding(check="db.sg", status=Status.FAIL, title="t", remediations=[r])
    report = Report(
        runbook="db",
        environment="production",
        region="us-east-1",
        duration_ms=1,
        findings=[finding],
    )
    blocks = render.finding_blocks(finding, analyse([report]), lambda _r: None, "production")
    text = json.dumps([b.to_dict() for b in blocks])
    assert "&lt;LOCK_ID&gt;" in text  # shown, not swallowed as a Slack control
    offer = Offer(check="db.sg", finding="t", remediation=r)
    confirm = render.fix_button(offer, "ref", 0, "production").to_dict()["elements"][0]["confirm"]
    said = confirm["text"]["text"]
    assert "`sg-0abc`" in said and "`ec2:AuthorizeSecurityGroupIngress`" in said
    assert "{" not in said and "production" in said


def test_a_webhook_username_is_not_an_identity() -> None:
    from commands.sources.slack import is_alarm_source

    spoof = {"subtype": "bot_message", "username": "AWS Chatbot", "bot_id": "B0WEBHOOK"}
    assert not is_alarm_source(spoof, ["B0CHATBOT"])
    assert is_alarm_source({**spoof, "bot_id": "B0CHATBOT"}, ["B0CHATBOT"])
