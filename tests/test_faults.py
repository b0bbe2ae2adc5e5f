"""The fault suite: broken AWS, broken Slack, a killed worker, a restarted Redis.

Real parts throughout: the moto server over HTTP behind a fault-injecting proxy, the fake
Slack over HTTP, the real Redis (and a private redis-server for the restart), real
``omni worker`` processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import SecretStr
from redis import Redis
from rq import Queue, SimpleWorker
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from bot.jobs import DiagnoseJob
from bot.queue import DIAGNOSTICS_QUEUE, Enqueuer
from bot.slack_client import make_web_client
from commands.aws import ClientPool
from commands.registry import runbook_names
from commands.runner import make_context, run_runbooks
from commands.settings import Settings
from sandbox import Stack, apply_scenario
from sandbox.fakeslack import FakeSlack
from workers import jobs
from workers.runtime import Runtime, set_runtime

from .e2e import aws_env
from .faults import FaultProxy
from .helpers import clean_env, free_port, installed_runtime, process

AREAS = runbook_names()


def _statuses(reports: list[Any]) -> dict[str, str]:
    return {f.check: f.status.value for r in reports for f in r.findings}


def _run_all(stack: Stack, endpoint: str, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    settings = Settings(aws_max_attempts=5)
    pool = ClientPool(boto3.session.Session(), max_attempts=5)
    ctx = make_context(settings, pool, outputs=stack.outputs)
    return run_runbooks(AREAS, ctx, deadline_s=60)


# -- AWS ----------------------------------------------------------------------------------------
def test_every_aws_call_throttled_twice_completes_with_findings_intact(
    served_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = _statuses(_run_all(served_stack, served_stack.extra["endpoint"], monkeypatch))
    with FaultProxy(served_stack.extra["endpoint"], throttle=2) as proxy:
        throttled = _statuses(_run_all(served_stack, proxy.url, monkeypatch))
    assert throttled == clean  # every finding as without throttling: none turned into `error`
    assert "error" not in throttled.values()
    distinct = len(proxy.attempts)
    # every distinct request was refused twice, then answered (botocore's standard retries)
    assert set(proxy.attempts.values()) == {3}, proxy.attempts.most_common(3)
    assert sum(proxy.throttled.values()) == 2 * distinct and proxy.forwarded == distinct
    # every protocol's throttling error was recognised: query, EC2, JSON, CBOR
    assert {"DescribeDBClusters", "DescribeSubnets", "DescribeServices", "GetMetricStatistics"} <= (
        set(proxy.throttled)
    )
    print(
        f"\nthrottled twice: {distinct} distinct AWS requests, {sum(proxy.throttled.values())} "
        f"throttling answers, {len(throttled)} findings identical to the clean run"
    )


def test_access_denied_on_some_calls_errors_only_their_findings(
    served_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean = _statuses(_run_all(served_stack, served_stack.extra["endpoint"], monkeypatch))
    with FaultProxy(
        served_stack.extra["endpoint"], deny={"GetSecretValue", "DescribeTargetHealth"}
    ) as proxy:
        reports = _run_all(served_stack, proxy.url, monkeypatch)
    denied = {f.check: f for r in reports for f in r.findings if f.status.value == "error"}
    # the checks that need a denied call, and only those
    assert set(denied) == {"db.endpoint_config", "alb.targets_healthy", "alb.health_check_path"}
    for finding in denied.values():
        assert "access denied" in finding.title
        assert finding.evidence["failed_call"] in {
            "secretsmanager:GetSecretValue",
            "elbv2:DescribeTargetHealth",
        }
    rest = {k: v for k, v in _statuses(reports).items() if k not in denied}
    assert rest == {k: v for k, v in clean.items() if k not in denied}


# -- Slack --------------------------------------------------------------------------------------
@pytest.fixture
def runtime(
    served_stack: Stack, fake_slack: FakeSlack, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Runtime]:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-faults"),
        slack_api_url=fake_slack.url,
        terraform_outputs=served_stack.extra["outputs_file"],
        graphs=False,
    )
    with installed_runtime(settings, Redis.from_url(redis_url)) as rt:
        yield rt


def _thread_texts(fake_slack: FakeSlack, thread_ts: str) -> list[str]:
    return [
        c.all_text()
        for c in fake_slack.calls
        if c.method == "chat.postMessage" and c.thread_ts == thread_ts
    ]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_slack_429_and_5xx_messages_still_delivered_in_order(
    runtime: Runtime, fake_slack: FakeSlack, served_stack: Stack, status: int
) -> None:
    apply_scenario("outage-db-down", served_stack)  # a root cause and several reports
    request = {"area": "all", "channel": "C0INC", "user": "U1"}
    calm = runtime.slack.chat_postMessage(channel="C0INC", text="…")["ts"]
    jobs.run_diagnosis({**request, "thread_ts": calm})
    expected = _delivered(fake_slack, calm)
    assert len(expected) >= 3
    root = runtime.slack.chat_postMessage(channel="C0INC", text="…")["ts"]
    fake_slack.fail_next(times=2, status=status, retry_after=0)
    jobs.run_diagnosis({**request, "thread_ts": root})
    assert _delivered(fake_slack, root) == expected  # all of them, in the same order
    # the verdict edit comes first: it met the two refusals and was sent again
    edits = fake_slack.find("chat.update", ts=root)
    assert len(edits) == 3 and edits[0].text == edits[2].text
    assert edits[2].text.startswith("Root cause: Aurora cluster is stopped")
    [verdict] = fake_slack.roots("C0INC")[1:]
    assert verdict["text"] == edits[2].text
    posts = [c for c in fake_slack.calls if c.method == "chat.postMessage"]
    assert len(posts) == 2 + 2 * len(expected)  # two roots, then each reply once per run


def _delivered(fake_slack: FakeSlack, thread_ts: str) -> list[str]:
    """The thread's replies as Slack stored them (refused attempts are not messages)."""
    return [m["text"] for m in fake_slack.thread("C0INC", thread_ts) if m["ts"] != thread_ts]


def test_slack_unreachable_the_job_completes_and_delivery_is_retried(
    runtime: Runtime, fake_slack: FakeSlack, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    root = runtime.slack.chat_postMessage(channel="C0INC", text="…")["ts"]
    down = runtime.settings.model_copy(
        update={"slack_api_url": f"http://127.0.0.1:{free_port()}/api/"}
    )
    runtime.slack = make_web_client(down)
    with caplog.at_level("ERROR", logger="workers.jobs"):
        report = jobs.run_diagnosis({"area": "db", "channel": "C0INC", "thread_ts": root})
    assert report["runbook"] == "db" and report["findings"]  # the job completed, findings kept
    assert any("Slack unreachable" in r.getMessage() for r in caplog.records)
    queue = Queue(
        DIAGNOSTICS_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer
    )
    [job] = queue.jobs
    assert job.func_name == jobs.REDELIVER and job.retries_left == len(jobs.REDELIVERY_BACKOFF_S)
    # Slack is back: RQ runs the delivery and the findings reach the thread
    runtime.slack = make_web_client(runtime.settings)
    SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer).work(burst=True)
    texts = " ".join(_thread_texts(fake_slack, root))
    assert "db.cluster_status" in texts


def test_slack_unreachable_before_the_thread_exists(
    runtime: Runtime, fake_slack: FakeSlack, redis_url: str
) -> None:
    """The worker posts the thread root; with Slack down the runbook still runs, and the
    delivery job posts the root and then the findings under it."""
    up = runtime.slack
    down = runtime.settings.model_copy(
        update={"slack_api_url": f"http://127.0.0.1:{free_port()}/api/"}
    )
    runtime.slack = make_web_client(down)
    report = jobs.run_diagnosis(
        {"area": "db", "channel": "C0LATE", "thread_ts": None, "user": "U1"}
    )
    assert report["runbook"] == "db" and report["findings"]
    queue = Queue(
        DIAGNOSTICS_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer
    )
    [job] = queue.jobs
    assert job.func_name == jobs.REDELIVER and job.kwargs["thread_ts"] == ""
    runtime.slack = up
    SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer).work(burst=True)
    [root] = fake_slack.roots("C0LATE")
    assert "db in production" in root["text"] and "asked by <@U1>" in json.dumps(root["blocks"])
    texts = " ".join(_thread_texts(fake_slack, root["ts"]))
    assert "db.cluster_status" in texts


# -- processes ----------------------------------------------------------------------------------
class _Hang:
    """An endpoint that accepts connections and never answers: a runbook stuck on AWS."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


@pytest.mark.slow
def test_worker_killed_mid_runbook_tells_the_thread(
    fake_slack: FakeSlack, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hang = _Hang()
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-killed"),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
    )
    redis = Redis.from_url(redis_url)
    root = make_web_client(settings).chat_postMessage(channel="C0INC", text="Diagnosing db…")["ts"]
    job_id = Enqueuer(redis, settings).diagnose(
        DiagnoseJob(area="db", channel="C0INC", thread_ts=root, user="U1")
    )
    env = clean_env(
        REDIS_URL=redis_url,
        SLACK_BOT_TOKEN="xoxb-killed",
        OMNI_SLACK_API_URL=fake_slack.url,
        AWS_ENDPOINT_URL=hang.url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        OMNI_HEALTH_PORT=str(free_port()),
    )
    queue = Queue(DIAGNOSTICS_QUEUE, connection=redis, serializer=JSONSerializer)
    registry = StartedJobRegistry(queue=queue)
    try:
        with process(["worker"], env, tmp_path / "worker.log") as worker:
            fake_slack.wait_for(lambda: job_id in registry.get_job_ids(), timeout=60)
            time.sleep(0.5)  # well inside the runbook: its AWS calls are hanging
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
    finally:
        hang.close()
    assert not [c for c in fake_slack.calls if c.thread_ts == root]  # silence so far
    # RQ's maintenance (any worker, every few minutes) finds the abandoned job once its
    # heartbeat has expired; run it as of that moment rather than wait for it
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-killed")
    monkeypatch.setenv("OMNI_SLACK_API_URL", fake_slack.url)
    set_runtime(None)
    try:
        registry.cleanup(timestamp=time.time() + settings.job_timeout_s + 120)
    finally:
        set_runtime(None)
    told = [c for c in fake_slack.calls if c.thread_ts == root or c.body.get("ts") == root]
    assert told, "the thread was never told"
    assert any("the worker running it stopped (killed or crashed)" in c.text for c in told)
    assert queue.fetch_job(job_id).is_failed  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.parametrize("back", ["before the run ends", "after the run ends"])
def test_redis_restarted_mid_run(
    served_stack: Stack, fake_slack: FakeSlack, tmp_path: Path, back: str
) -> None:
    """The bot says Redis is away while it is, and both processes recover without a restart,
    whether Redis is back before the run in flight ends or only after (when RQ's work loop,
    failing its heartbeat, quits and the worker process starts it again)."""
    from bot.server import create_web_app
    from sandbox.requests import signed_headers, slash_command_body

    port = free_port()
    cmd = [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        fake_slack.wait_for(lambda: _pings(port), timeout=10)
        return proc

    url = f"redis://127.0.0.1:{port}/0"
    secret = "restart-signing-secret"
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-restart"),
        slack_signing_secret=SecretStr(secret),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(url),
        post_interval_ms=0,
        graphs=False,
    )
    web = create_web_app(settings).test_client()
    response_url = fake_slack.url.replace("/api/", "/response/1")

    said: list[str] = []

    def command(text: str) -> int:
        body = slash_command_body(text, channel="C0INC", response_url=response_url)
        response = web.post("/slack/events", data=body, headers=signed_headers(secret, body))
        said.append(str((response.get_json() or {}).get("text", "")))
        return int(response.status_code)

    env = clean_env(
        REDIS_URL=url,
        SLACK_BOT_TOKEN="xoxb-restart",
        OMNI_SLACK_API_URL=fake_slack.url,
        OMNI_GRAPHS="false",
        OMNI_HEALTH_PORT=str(free_port()),
        **aws_env(served_stack),
    )
    redis_proc = start()
    # a runbook of ~3 s, which outlasts a one-second outage; or of ~1.5 s, which Redis outlasts
    proxy = FaultProxy(served_stack.extra["endpoint"], delay_s=0.6 if back.startswith("b") else 0.3)
    env["AWS_ENDPOINT_URL"] = proxy.url
    try:
        with proxy, process(["worker"], env, tmp_path / "worker.log") as worker:
            assert command("diagnose all") == 200
            # mid-run: the runbook is waiting on AWS when Redis goes away
            fake_slack.wait_for(lambda: proxy.forwarded > 0, timeout=30)
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
            assert _verdicts(fake_slack) == 0  # the run is still in flight
            # Redis away: the user is told, clearly, and nothing pretends to have started
            assert command("diagnose db") == 200
            assert "Redis" in said[-1] and "nothing was started" in said[-1]
            assert web.get("/readyz").status_code == 503
            if back.startswith("b"):
                time.sleep(1)
                redis_proc = start()
                assert _verdicts(fake_slack) == 0  # back while the run is still in flight
                # the run in flight finishes and posts its findings
                fake_slack.wait_for(lambda: _verdicts(fake_slack) == 1, timeout=60)
            else:
                # the run posts its findings with Redis away (its timeline entries are lost)
                fake_slack.wait_for(lambda: _verdicts(fake_slack) == 1, timeout=60)
                time.sleep(1)
                redis_proc = start()
            # back: the same bot and the same worker carry on, no restart of either
            fake_slack.wait_for(lambda: web.get("/readyz").status_code == 200, timeout=15)
            assert command("diagnose db") == 200
            fake_slack.wait_for(lambda: _verdicts(fake_slack) == 2, timeout=60)
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-2000:]
            restarted = "working again once Redis answers" in (tmp_path / "worker.log").read_text()
            assert restarted is back.startswith("a")
            # and a stop asked for still stops it, cleanly, restarted or not
            os.killpg(worker.pid, signal.SIGTERM)
            assert worker.wait(timeout=20) == 0, (tmp_path / "worker.log").read_text()[-2000:]
    finally:
        redis_proc.terminate()
        redis_proc.wait(timeout=10)


def _pings(port: int) -> bool:
    try:
        return bool(Redis(port=port, socket_connect_timeout=0.2).ping())
    except Exception:
        return False


def _verdicts(fake_slack: FakeSlack) -> int:
    """Thread roots edited to their verdict (the job's last step)."""
    return sum(1 for c in fake_slack.find("chat.update") if c.text.startswith((":", "*")))
