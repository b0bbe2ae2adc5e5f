"""Load: 500 slash commands and 1,000 alarm events mixed with 50 clicks on one fix button,
against `omni serve` (gunicorn) and two `omni worker` processes: no 5xx, no lost job, one fix."""

from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from rq.serializers import JSONSerializer

from bot.queue import DIAGNOSTICS_QUEUE, FIXES_QUEUE
from sandbox import Stack, apply_scenario
from sandbox.fakeslack import FakeSlack
from sandbox.requests import chatbot_alarm_event, signed_headers, slash_command_body

from .e2e import aws_env
from .helpers import clean_env, free_port, process, slack_env, wait_http
from .test_fix_e2e import CHANNEL, _button, _status, click

pytestmark = pytest.mark.slow
SECRET = "fix-e2e-signing-secret"  # test_fix_e2e's click() signs with it
COMMANDS, EVENTS, CLICKS = 500, 1000, 50
LOAD_CHANNELS = [f"C0LOAD{i:02d}" for i in range(25)]


def test_mixed_load_no_5xx_no_lost_job_one_fix(
    served_stack: Stack, fake_slack: FakeSlack, redis_url: str, tmp_path: Path
) -> None:
    apply_scenario("aurora-stopped", served_stack)
    port = free_port()
    slack = slack_env(
        fake_slack,
        redis_url,
        "xoxb-load",
        SECRET,
        OMNI_ROLE_BINDINGS=json.dumps({"operator": ["U0OP1", "U0OP2"]}),
        OMNI_POST_INTERVAL_MS="0",  # pacing has its own tests; here it would only add time
        OMNI_COMMAND_RATE_PER_MIN="0",  # the per-user limit has its own test
        OMNI_GRAPHS="false",
    )
    worker_env = clean_env(**slack, **aws_env(served_stack))
    url = f"http://127.0.0.1:{port}/slack/events"
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_connections=32, pool_maxsize=32))

    def post(body: str, content_type: str = "application/x-www-form-urlencoded") -> int:
        headers = signed_headers(SECRET, body, content_type=content_type)
        return int(session.post(url, data=body, headers=headers, timeout=30).status_code)

    with (
        process(["worker"], {**worker_env, "OMNI_HEALTH_PORT": "0"}, tmp_path / "w1.log"),
        process(["worker"], {**worker_env, "OMNI_HEALTH_PORT": "0"}, tmp_path / "w2.log"),
        process(
            ["serve", "--host", "127.0.0.1", "--port", str(port)],
            clean_env(**slack),
            tmp_path / "serve.log",
        ),
    ):
        wait_http(f"http://127.0.0.1:{port}/healthz")
        # the fix button everyone will press
        first = slash_command_body(
            "diagnose db", channel=CHANNEL, response_url=fake_slack.url.replace("/api/", "/r/0")
        )
        assert post(first) == 200
        root_ts = fake_slack.wait_for(lambda: fake_slack.roots(CHANNEL), timeout=30)[0]["ts"]
        fake_slack.wait_for(lambda: fake_slack.find("chat.update", ts=root_ts), timeout=60)
        button, message_ts = _button(fake_slack, "rds.start_cluster")

        work: list[tuple[str, Any]] = []
        for i in range(COMMANDS):
            channel = LOAD_CHANNELS[i % len(LOAD_CHANNELS)]
            body = slash_command_body(
                "diagnose alarms",
                channel=channel,
                user=f"U0LOAD{i % 7}",
                response_url=fake_slack.url.replace("/api/", f"/r/{i}"),
            )
            work.append(("command", body))
        for i in range(EVENTS):
            name = f"omnirapeutic-production-rds-cpu-high-{i % 100}"
            event = chatbot_alarm_event(
                name, "ALARM", f"17100{i:05d}.000100", "C0ALARMS", f"EvLoad{i}"
            )
            work.append(("event", json.dumps(event)))
        work += [("click", f"U0OP{1 + i % 2}") for i in range(CLICKS)]
        random.Random(8).shuffle(work)

        def send(item: tuple[str, Any]) -> tuple[str, int]:
            kind, what = item
            if kind == "click":
                return kind, click(port, what, button, message_ts, root_ts)
            return kind, post(
                what, "application/json" if kind == "event" else "application/x-www-form-urlencoded"
            )

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=24) as pool:
            results = list(pool.map(send, work))
        sent_in = time.monotonic() - started
        statuses = {s for _, s in results}
        assert statuses == {200}, {s: sum(1 for _, x in results if x == s) for s in statuses}

        redis = Redis.from_url(redis_url)
        diagnostics = Queue(DIAGNOSTICS_QUEUE, connection=redis, serializer=JSONSerializer)
        fixes = Queue(FIXES_QUEUE, connection=redis, serializer=JSONSerializer)

        def verdicts() -> int:
            return sum(
                1
                for c in fake_slack.find("chat.update")
                if c.channel in LOAD_CHANNELS and "alarms" in c.text
            )

        fake_slack.wait_for(lambda: verdicts() >= COMMANDS, timeout=240)
        fake_slack.wait_for(lambda: diagnostics.count == 0 and fixes.count == 0, timeout=60)
        time.sleep(1)
        drained_in = time.monotonic() - started

    # no lost job: every command has its root, its job finished, its verdict
    roots = sum(len(fake_slack.roots(c)) for c in LOAD_CHANNELS)
    assert roots == COMMANDS and verdicts() == COMMANDS
    finished = FinishedJobRegistry(queue=diagnostics)
    assert not FailedJobRegistry(queue=diagnostics).get_job_ids()
    assert not FailedJobRegistry(queue=fixes).get_job_ids()
    diag_ids = [j for j in finished.get_job_ids() if j.startswith("diag-")]
    assert len(diag_ids) == COMMANDS + 1  # the 500 and the first
    # the alarms: every event answered, each distinct alarm absorbed once
    assert len(list(redis.scan_iter("omni:alarm-seen:*"))) == 100
    # one fix, whatever the number of clicks
    executed = [
        fields for _, fields in redis.xrange("omni:audit") if fields[b"event"] == b"executed"
    ]
    assert len(executed) == 1 and executed[0][b"outcome"] == b"succeeded"
    assert _status(served_stack) == "available"
    started_posts = [
        c
        for c in fake_slack.find("chat.postMessage")
        if c.thread_ts == root_ts and "Started" in c.text
    ]
    assert len(started_posts) == 1
    print(
        f"\nload: {len(work)} requests ({COMMANDS} commands, {EVENTS} alarm events, {CLICKS} clicks) "
        f"sent in {sent_in:.1f}s, all 200; {COMMANDS} diagnoses finished in {drained_in:.1f}s; "
        f"1 fix executed"
    )
