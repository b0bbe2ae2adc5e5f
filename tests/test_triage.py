"""The triage pipeline against the real Redis and the fake Slack."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from pydantic import SecretStr
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot.pacing import Pacer
from bot.queue import DIAGNOSTICS_QUEUE, Enqueuer
from bot.slack_client import make_web_client
from bot.triage import Triage
from commands.alarm import Alarm
from commands.settings import Settings
from sandbox.fakeslack import FakeSlack


@pytest.fixture
def triage(fake_slack: FakeSlack, redis_url: str) -> Triage:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-t"),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        post_interval_ms=50,
        storm_threshold=3,
    )
    redis = Redis.from_url(redis_url)
    return Triage(
        settings, redis, Enqueuer(redis, settings), make_web_client(settings, redis=redis)
    )


def _alarm(
    name: str, state: str = "ALARM", metric: str | None = None, namespace: str | None = None
) -> Alarm:
    return Alarm(
        source="slack",
        name=name,
        state=state,
        metric=metric,
        namespace=namespace,
        arn=f"arn:aws:cloudwatch:us-east-1:111111111111:alarm:{name}",
    )


def _jobs(redis_url: str) -> list[dict[str, Any]]:
    return [
        j.kwargs["job"]
        for j in Queue(
            DIAGNOSTICS_QUEUE, connection=Redis.from_url(redis_url), serializer=JSONSerializer
        ).jobs
    ]


def test_first_reply_then_one_run(triage: Triage, fake_slack: FakeSlack, redis_url: str) -> None:
    outcome = triage.handle(
        _alarm("prod-rds-cpu-high", metric="CPUUtilization", namespace="AWS/RDS"), "C1", "100.1"
    )
    assert (outcome.action, outcome.runbooks) == ("triage", ["db"])
    [reply] = fake_slack.find("chat.postMessage")
    assert reply.thread_ts == "100.1" and "Triaging *prod-rds-cpu-high* (ALARM): db" in reply.text
    [job] = _jobs(redis_url)
    assert job["runbooks"] == ["db"] and job["thread_ts"] == "100.1" and job["reply_ts"]


def test_same_alarm_again_is_not_triaged_twice(
    triage: Triage, fake_slack: FakeSlack, redis_url: str
) -> None:
    triage.handle(_alarm("prod-api-5xx-high"), "C1", "100.1")
    again = triage.handle(_alarm("prod-api-5xx-high"), "C1", "100.2")
    assert again.action == "duplicate"
    assert len(_jobs(redis_url)) == 1 and len(fake_slack.find("chat.postMessage")) == 1


def test_each_runbook_runs_once_per_window(triage: Triage, redis_url: str) -> None:
    triage.handle(_alarm("prod-api-5xx-high"), "C1", "1.1")  # alb, ecs
    second = triage.handle(_alarm("prod-ecs-cpu-high"), "C1", "1.2")  # perf, ecs
    assert second.runbooks == ["perf"]  # ecs already running for the first alarm
    assert sorted(rb for job in _jobs(redis_url) for rb in job["runbooks"]) == [
        "alb",
        "ecs",
        "perf",
    ]


def test_unrouted_alarm_gets_one_short_reply(
    triage: Triage, fake_slack: FakeSlack, redis_url: str
) -> None:
    outcome = triage.handle(
        _alarm("billing-export-stale", metric="Age", namespace="Custom/Billing"), "C1", "5.5"
    )
    assert outcome.action == "unrouted"
    [reply] = fake_slack.find("chat.postMessage")
    assert (
        reply.thread_ts == "5.5"
        and "no routing rule matches" in reply.text
        and "OMNI_ALARM_ROUTES" in reply.text
    )
    assert "name=billing-export-stale" in reply.text and "metric=Age" in reply.text
    assert _jobs(redis_url) == []


def test_recovery_is_noted_in_the_original_thread(triage: Triage, fake_slack: FakeSlack) -> None:
    triage.handle(_alarm("prod-api-5xx-high"), "C1", "7.7")
    outcome = triage.handle(_alarm("prod-api-5xx-high", state="OK"), "C1", "9.9")
    assert outcome.action == "recovered"
    note = [c for c in fake_slack.find("chat.postMessage") if "recovered" in c.text]
    assert len(note) == 1 and note[0].thread_ts == "7.7"
    assert any("recovered" in c.text for c in fake_slack.find("chat.update"))
    # the alarm may fire again after recovering: a new triage
    assert triage.handle(_alarm("prod-api-5xx-high"), "C1", "11.1").action == "triage"


def test_recovery_survives_a_restart(triage: Triage, fake_slack: FakeSlack, redis_url: str) -> None:
    triage.handle(_alarm("prod-api-5xx-high"), "C1", "7.7")
    fresh = Triage(
        triage.settings, Redis.from_url(redis_url), triage.enqueuer, triage.client
    )  # a new process
    assert fresh.handle(_alarm("prod-api-5xx-high", state="OK"), "C1", "8.8").action == "recovered"


def test_storm_is_coalesced(triage: Triage, fake_slack: FakeSlack, redis_url: str) -> None:
    names = [
        f"prod-{kind}-{i}"
        for i in range(10)
        for kind in ("api-5xx-high", "ecs-cpu-high", "rds-cpu-high")
    ]
    outcomes = [
        triage.handle(
            _alarm(n, metric="CPUUtilization", namespace="AWS/RDS") if "rds" in n else _alarm(n),
            "C1",
            f"{i}.0",
        )
        for i, n in enumerate(names)
    ]
    assert [o.action for o in outcomes].count("storm") == len(names) - 3
    summaries = [c for c in fake_slack.find("chat.postMessage") if "Alarm storm" in c.text]
    assert len(summaries) == 1 and summaries[0].thread_ts is None
    assert len(fake_slack.find("chat.postMessage")) == 3 + 1  # three first replies, one summary
    runbooks = sorted(rb for job in _jobs(redis_url) for rb in job["runbooks"])
    assert runbooks == [
        "alb",
        "db",
        "ecs",
        "perf",
    ]  # each runbook once, whatever the number of alarms


def test_a_storm_across_a_minute_boundary_keeps_one_thread(
    triage: Triage, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    import bot.triage

    clock = [60 * 29_000_000 + 58.0]  # two seconds before a minute turns
    fake = types.SimpleNamespace(
        **{n: getattr(time, n) for n in ("monotonic", "sleep", "strftime", "gmtime")}
    )
    fake.time = lambda: clock[0]
    monkeypatch.setattr(bot.triage, "time", fake)
    before = [triage.handle(_alarm(f"prod-api-5xx-high-{i}"), "C1", f"{i}.0") for i in range(6)]
    clock[0] += 4.0  # the next minute: its alarm count starts again at one
    after = [triage.handle(_alarm(f"prod-ecs-cpu-high-{i}"), "C1", f"{i}.5") for i in range(3)]
    assert [o.action for o in before].count("storm") == 3
    assert [o.action for o in after] == ["storm"] * 3  # still the storm, not three new threads
    summaries = [c for c in fake_slack.find("chat.postMessage") if "Alarm storm" in c.text]
    assert len(summaries) == 1


def test_a_storm_whose_thread_is_not_posted_yet_still_runs_its_runbooks(
    triage: Triage, fake_slack: FakeSlack, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storm post waits for its turn in the channel (one post a second) or Slack refuses
    it: an alarm that claimed a runbook meanwhile still gets that runbook run, in its own
    thread, not silently dropped."""
    monkeypatch.setattr(Triage, "_wait_for", lambda self, key, timeout_s=5.0: None)
    for i in range(3):
        triage.handle(_alarm(f"prod-api-5xx-high-{i}"), "C1", f"{i}.0")
    outcome = triage.handle(
        _alarm("prod-rds-cpu-high-9", metric="CPUUtilization", namespace="AWS/RDS"), "C1", "9.0"
    )
    assert outcome.action == "storm" and outcome.runbooks == ["db"]
    [db_job] = [j for j in _jobs(redis_url) if j["runbooks"] == ["db"]]
    assert db_job["thread_ts"] == "9.0"


def test_keys_are_namespaced_and_expire(triage: Triage, redis_url: str) -> None:
    triage.handle(_alarm("prod-api-5xx-high"), "C1", "1.1")
    redis = Redis.from_url(redis_url)
    for key in redis.scan_iter("omni:*"):
        assert redis.ttl(key) > 0, key


def test_posts_are_paced_per_channel(redis_url: str, fake_slack: FakeSlack) -> None:
    settings = Settings(
        slack_bot_token=SecretStr("xoxb-t"), slack_api_url=fake_slack.url, post_interval_ms=200
    )
    client = make_web_client(settings, redis=Redis.from_url(redis_url))
    for i in range(5):
        client.chat_postMessage(channel="C1", text=f"m{i}")
        client.chat_postMessage(channel="C2", text=f"n{i}")
    for channel in ("C1", "C2"):
        times = [c.at for c in fake_slack.find("chat.postMessage", channel=channel)]
        assert [c.text for c in fake_slack.find("chat.postMessage", channel=channel)] == [
            f"{'m' if channel == 'C1' else 'n'}{i}" for i in range(5)
        ]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.18, gaps  # never faster than the interval; order kept


def test_pacer_shares_slots_across_processes(redis_url: str) -> None:
    a, b = Pacer(Redis.from_url(redis_url), 1000), Pacer(Redis.from_url(redis_url), 1000)
    waits = [a.reserve("C9"), b.reserve("C9"), a.reserve("C9")]
    assert waits[0] < 0.05 and 0.9 < waits[1] < 1.05 and 1.9 < waits[2] < 2.05


def test_pacer_gate_holds_a_late_waker_to_the_interval(redis_url: str) -> None:
    """A thread that wakes late for its slot must not leave together with the next one: the
    gate before each post counts from the channel's last post that actually left."""
    pacer = Pacer(Redis.from_url(redis_url), 1000)
    assert pacer.admit("C7")[0]  # a post leaves
    admitted, wait = pacer.admit("C7")  # a late waker right behind it
    assert not admitted and 0.9 < wait <= 1.0
    time.sleep(wait)
    assert pacer.admit("C7")[0]
    # an admitted post pushes the channel's next free slot behind it
    assert 0.9 < pacer.reserve("C7") <= 1.0
    assert pacer.admit("C8")[0]  # channels are paced apart
