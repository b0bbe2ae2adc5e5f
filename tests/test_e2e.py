"""End to end: ``omni serve`` and ``omni worker`` as processes, moto over HTTP, real Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests
from redis import Redis

from sandbox import Stack, apply_scenario
from sandbox.fakeslack import FakeSlack
from sandbox.requests import signed_headers, slash_command_body

from .e2e import aws_env
from .helpers import clean_env, free_port, process, wait_http

pytestmark = pytest.mark.slow
SECRET = "e2e-signing-secret-0f9d8c7b"


def _slack_env(fake_slack: FakeSlack, redis_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "OMNI_SLACK_API_URL": fake_slack.url,
        "SLACK_BOT_TOKEN": "xoxb-e2e-token",
        "SLACK_SIGNING_SECRET": SECRET,
    }


def _post_command(
    port: int, text: str, fake_slack: FakeSlack, secret: str = SECRET
) -> requests.Response:
    body = slash_command_body(text, response_url=fake_slack.url.replace("/api/", "/response/1"))
    return requests.post(
        f"http://127.0.0.1:{port}/slack/events",
        data=body,
        headers=signed_headers(secret, body),
        timeout=10,
    )


def test_slash_command_to_threaded_findings(
    served_stack: Stack, fake_slack: FakeSlack, redis_url: str, tmp_path: Path
) -> None:
    apply_scenario("aurora-stopped", served_stack)
    port = free_port()
    slack_env = _slack_env(fake_slack, redis_url)
    serve_env = clean_env(**slack_env)  # the Slack-facing process gets no AWS settings at all
    worker_env = clean_env(**slack_env, **aws_env(served_stack))
    with (
        process(["worker"], worker_env, tmp_path / "worker.log"),
        process(
            ["serve", "--host", "127.0.0.1", "--port", str(port)], serve_env, tmp_path / "serve.log"
        ),
    ):
        wait_http(f"http://127.0.0.1:{port}/healthz")

        # A forged request first: 401, nothing posted, nothing enqueued.
        forged = _post_command(port, "diagnose db", fake_slack, secret="not-the-secret")
        assert forged.status_code == 401
        time.sleep(0.5)
        assert not fake_slack.find("chat.postMessage")
        assert not Redis.from_url(redis_url).keys("rq:job:*")

        response = _post_command(port, "diagnose db", fake_slack)
        assert response.status_code == 200

        root_ts = fake_slack.wait_for(lambda: fake_slack.roots("C0INCIDENT"), timeout=15)[0]["ts"]
        update = fake_slack.wait_for(
            lambda: fake_slack.find("chat.update", ts=root_ts), timeout=60
        )[-1]
        # the verdict is edited in first and the details follow: wait for the last of them
        fake_slack.wait_for(
            lambda: [
                c
                for c in fake_slack.find("chat.postMessage")
                if c.thread_ts == root_ts and "db.cluster_status" in c.all_text()
            ],
            timeout=15,
        )
        log = (tmp_path / "worker.log").read_text()
        assert "Traceback" not in log, log

    [root] = [c for c in fake_slack.find("chat.postMessage") if not c.thread_ts]
    assert "Diagnosing *db* in *production*" in root.text
    replies = [c for c in fake_slack.find("chat.postMessage") if c.thread_ts]
    assert replies and all(c.thread_ts == root_ts and c.channel == "C0INCIDENT" for c in replies)
    thread = " ".join(c.all_text() for c in replies)
    assert "Aurora cluster is stopped" in thread and "db.cluster_status" in thread
    assert "rds:StartDBCluster" in thread and served_stack.names.aurora_cluster in thread
    assert update.text == "Root cause: Aurora cluster is stopped"
    assert ":red_circle: *Root cause:* Aurora cluster is stopped" in update.all_text()
    # structured logs: the worker's lines are JSON with the job and thread ids; no secret in them
    worker_lines = [
        json.loads(line)
        for line in (tmp_path / "worker.log").read_text().splitlines()
        if line.startswith("{")
    ]
    done = next(line for line in worker_lines if line["msg"].startswith("diagnosis done"))
    assert done["thread_ts"] == root_ts and done["job_id"].startswith("diag-")
    for log in ("worker.log", "serve.log"):
        text = (tmp_path / log).read_text()
        assert "xoxb-e2e-token" not in text and SECRET not in text
    # the worker posted with the bot token; nothing reached Slack without it
    # (response URLs and the pre-signed file upload URL take no token, as on Slack)
    assert {
        c.token for c in fake_slack.calls if not c.method.startswith(("response/", "upload"))
    } == {"xoxb-e2e-token"}


def test_failing_job_tells_its_thread(
    served_stack: Stack, fake_slack: FakeSlack, redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    slack_env = _slack_env(fake_slack, redis_url)
    worker_env = clean_env(**slack_env, **aws_env(served_stack))
    worker_env["OMNI_TERRAFORM_OUTPUTS"] = str(tmp_path / "missing-outputs.json")
    with (
        process(["worker"], worker_env, tmp_path / "worker.log"),
        process(
            ["serve", "--host", "127.0.0.1", "--port", str(port)],
            clean_env(**slack_env),
            tmp_path / "serve.log",
        ),
    ):
        wait_http(f"http://127.0.0.1:{port}/healthz")
        assert _post_command(port, "diagnose db", fake_slack).status_code == 200
        root_ts = fake_slack.wait_for(lambda: fake_slack.roots("C0INCIDENT"), timeout=15)[0]["ts"]
        told = fake_slack.wait_for(
            lambda: [c for c in fake_slack.find("chat.postMessage") if c.thread_ts == root_ts],
            timeout=60,
        )
    assert "failed" in told[0].text and "missing-outputs.json" in told[0].text
