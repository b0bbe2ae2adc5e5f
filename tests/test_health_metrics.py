"""/metrics, the worker's health port, and `omni healthcheck`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from pydantic import SecretStr
from redis import Redis

from bot.jobs import DiagnoseJob
from bot.queue import Enqueuer, connect
from bot.server import create_web_app
from commands.settings import Settings
from sandbox.fakeslack import FakeSlack
from sandbox.requests import signed_headers, slash_command_body
from workers.health import serve_health

from .helpers import REPO, clean_env, free_port, process, wait_http

SECRET = "metrics-signing-secret"


def test_bot_metrics_count_acks_rejections_and_queue(fake_slack: FakeSlack, redis_url: str) -> None:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-m"),
        slack_signing_secret=SecretStr(SECRET),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
    )
    web = create_web_app(settings)
    with web.test_client() as client:
        body = slash_command_body(
            "diagnose db", response_url=fake_slack.url.replace("/api/", "/response/1")
        )
        assert (
            client.post(
                "/slack/events", data=body, headers=signed_headers(SECRET, body)
            ).status_code
            == 200
        )
        assert (
            client.post(
                "/slack/events", data=body, headers=signed_headers("forged", body)
            ).status_code
            == 401
        )
        fake_slack.wait_for(
            lambda: Redis.from_url(redis_url).llen("rq:queue:omni-diagnostics") == 1
        )
        page = client.get("/metrics").get_data(as_text=True)
    assert 'omni_ack_seconds_count{kind="command"}' in page
    assert 'omni_requests_rejected_total{endpoint="slack",reason="signature"}' in page
    assert 'omni_queue_depth{queue="omni-diagnostics"} 1.0' in page
    assert "omni_queue_oldest_job_age_seconds" in page


def test_worker_health_port(redis_url: str) -> None:
    port = free_port()
    server = serve_health(Redis.from_url(redis_url), port, host="127.0.0.1")
    try:
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3).json() == {
            "status": "ok"
        }
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code == 200
        Enqueuer(connect(Settings(redis_url=SecretStr(redis_url))), Settings()).diagnose(
            DiagnoseJob(area="db", channel="C", thread_ts="1.1", user="U")
        )
        time.sleep(1.1)
        page = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=3).text
        assert 'omni_queue_depth{queue="omni-diagnostics"} 1.0' in page
        age = float(
            next(
                line.split()[-1]
                for line in page.splitlines()
                if line.startswith('omni_queue_oldest_job_age_seconds{queue="omni-diagnostics"}')
            )
        )
        assert age >= 1.0
    finally:
        server.shutdown()
    down = serve_health(
        Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2),
        free_port(),
        host="127.0.0.1",
    )
    try:
        assert (
            requests.get(f"http://127.0.0.1:{down.server_address[1]}/readyz", timeout=3).status_code
            == 503
        )
    finally:
        down.shutdown()


def test_healthcheck_command_for_both_processes(
    fake_slack: FakeSlack, redis_url: str, tmp_path: Path
) -> None:
    port, health = free_port(), free_port()
    env = clean_env(
        REDIS_URL=redis_url,
        OMNI_SLACK_API_URL=fake_slack.url,
        SLACK_BOT_TOKEN="xoxb-h",
        SLACK_SIGNING_SECRET=SECRET,
        PORT=str(port),
        OMNI_HEALTH_PORT=str(health),
        AWS_ACCESS_KEY_ID="x",
        AWS_SECRET_ACCESS_KEY="y",
        AWS_DEFAULT_REGION="us-east-1",
    )

    def healthcheck() -> int:
        return subprocess.run(
            [sys.executable, "-m", "commands.cli", "healthcheck"],
            env=env,
            cwd=REPO,
            capture_output=True,
            timeout=30,
        ).returncode

    assert healthcheck() == 1  # nothing running
    with process(["worker"], env, tmp_path / "worker.log"):
        wait_http(f"http://127.0.0.1:{health}/healthz")
        assert healthcheck() == 0
    with process(
        ["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "serve.log"
    ):
        wait_http(f"http://127.0.0.1:{port}/healthz")
        assert healthcheck() == 0
        for _ in range(4):  # likely spread over both gunicorn processes
            body = slash_command_body("help")
            requests.post(
                f"http://127.0.0.1:{port}/slack/events",
                data=body,
                headers=signed_headers(SECRET, body),
                timeout=5,
            )
        page = requests.get(
            f"http://127.0.0.1:{port}/metrics", timeout=3
        ).text  # both processes, merged
        count = next(
            line
            for line in page.splitlines()
            if line.startswith('omni_ack_seconds_count{kind="command"}')
        )
        assert float(count.split()[-1]) == 4.0
    _ = Any
