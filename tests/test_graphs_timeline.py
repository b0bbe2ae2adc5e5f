"""Metric graphs in threads and the incident timeline (real Redis, moto, the fake Slack)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from PIL import Image
from pydantic import SecretStr
from redis import Redis

from bot import timeline
from bot.slack_client import make_web_client
from commands import graphs
from commands.alarm import Alarm
from commands.aws import AwsCaller, ClientPool
from commands.cli import main
from commands.runner import make_context
from commands.settings import Settings
from sandbox import Stack, apply_scenario
from sandbox.demo import run_demo
from sandbox.fakeslack import FakeSlack
from sandbox.metrics import put_metrics
from workers import jobs, record
from workers.runtime import Runtime, set_runtime

RED = (0xD6, 0x27, 0x28)


def _image(graph: graphs.Graph) -> Image.Image:
    image = Image.open(io.BytesIO(graph.png))
    assert image.format == "PNG"
    return image.convert("RGB")


def _red_share(image: Image.Image, row: int, x0: float, x1: float) -> float:
    """Share of the plot's columns whose pixel at ``row`` is the threshold's red."""
    columns = range(int(x0) + 2, int(x1) - 2)
    red = sum(
        1
        for x in columns
        if all(abs(a - b) <= 40 for a, b in zip(image.getpixel((x, row)), RED, strict=True))  # type: ignore[arg-type]
    )
    return red / len(columns)


def _threshold_drawn(graph: graphs.Graph, panel: int) -> None:
    image = _image(graph)
    row = round(graph.threshold_rows[panel])
    x0, x1 = graph.plot_columns[panel]
    best = max(_red_share(image, r, x0, x1) for r in (row - 1, row, row + 1))
    assert best > 0.6, f"no threshold line at row {row}: {best:.0%} red"
    # a line, not a red area: well above and below it the plot is not red
    assert _red_share(image, row - 12, x0, x1) < 0.1
    assert _red_share(image, row + 12, x0, x1) < 0.1


def test_db_graph_is_a_real_png_with_the_max_acu_line(stack: Stack, settings: Settings) -> None:
    apply_scenario("db-capacity-pinned", stack)
    ctx = make_context(settings, stack.pool, outputs=stack.outputs)
    spec = graphs.runbook_graph("db", ctx)
    assert spec is not None
    graph = graphs.build(spec, ctx.aws, 60)
    assert graph is not None
    assert graph.size == (700, 660) and _image(graph).size == (700, 660)  # 3 panels, phone-wide
    assert len(graph.png) < 150 * 1024
    # the plotted data is what CloudWatch holds: pinned at 4 ACU for the last 20 minutes
    acu = graph.data["p0s0"].values
    assert acu[-20:] == [4.0] * 20 and set(acu[:-20]) == {1.5}
    assert {0, 1, 2} == set(graph.threshold_rows)
    _threshold_drawn(graph, 0)  # max ACU, 4
    _threshold_drawn(graph, 1)  # CPU 90%
    assert "ACU now 4, min 1.5, max 4; max ACU 4 (4)" in graph.alt_text


def test_alarm_graph_draws_its_threshold_and_marks_the_state_change(
    stack: Stack, settings: Settings
) -> None:
    dims = {"ClusterName": stack.names.ecs_cluster, "ServiceName": stack.names.ecs_service}
    alarm = Alarm(
        source="cloudwatch",
        name="ecs-cpu-high",
        state="ALARM",
        namespace="AWS/ECS",
        metric="CPUUtilization",
        dimensions=dims,
        threshold=80.0,
        statistic="Average",
        changed_at=(datetime.now(UTC) - timedelta(minutes=10)).isoformat(),
    )
    spec = graphs.alarm_graph(alarm)
    assert spec is not None and spec.marker is not None
    graph = graphs.build(spec, AwsCaller(stack.pool, stack.region), 60)
    assert graph is not None and graph.size == (700, 220)
    _threshold_drawn(graph, 0)
    assert "threshold 80 (80)" in graph.alt_text
    assert f"ALARM at {spec.marker:%H:%M} UTC" in graph.alt_text


def test_no_metric_no_graph(stack: Stack) -> None:
    assert graphs.alarm_graph(Alarm(source="slack", name="x", state="ALARM")) is None
    empty = graphs.alarm_graph(
        Alarm(source="slack", name="x", state="ALARM", namespace="AWS/Nope", metric="Nothing")
    )
    assert empty is not None
    assert graphs.build(empty, AwsCaller(stack.pool, stack.region), 60) is None


@pytest.fixture
def runtime(
    stack: Stack, fake_slack: FakeSlack, redis_url: str, tmp_path: Path
) -> Iterator[Runtime]:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({k: {"value": v} for k, v in stack.outputs.items()}))
    s = Settings(
        slack_bot_token=SecretStr("xoxb-graphs"),
        slack_api_url=fake_slack.url,
        terraform_outputs=str(outputs),
        graph_window_min=30,
    )
    redis = Redis.from_url(redis_url)
    rt = Runtime.with_redis(
        s, ClientPool(boto3.session.Session(), max_attempts=2), make_web_client(s), redis
    )
    set_runtime(rt)
    yield rt
    set_runtime(None)


def test_triage_posts_findings_first_then_the_graph_in_the_thread(
    runtime: Runtime, stack: Stack, fake_slack: FakeSlack
) -> None:
    db = {"DBClusterIdentifier": stack.names.aurora_cluster}
    put_metrics(stack.pool, stack, "AWS/RDS", "CPUUtilization", db, [40.0] * 50 + [95.0] * 10)
    alarm = Alarm(
        source="cloudwatch",
        name=f"{stack.names.alarm_prefix}rds-cpu-high",
        state="ALARM",
        namespace="AWS/RDS",
        metric="CPUUtilization",
        dimensions=db,
        threshold=90.0,
    )
    jobs.run_triage(
        {
            "alarm": alarm.model_dump(mode="json"),
            "runbooks": ["db"],
            "channel": "C0INC",
            "thread_ts": "1700000000.000200",
            "reply_ts": None,
        }
    )
    [shared] = fake_slack.files
    assert (shared["channel"], shared["thread_ts"]) == ("C0INC", "1700000000.000200")
    assert shared["data"][:8] == b"\x89PNG\r\n\x1a\n" and shared["name"].startswith("omni-alarm-")
    assert Image.open(io.BytesIO(shared["data"])).size == (700, 220)
    assert "last 30 minutes" in shared["alt_txt"] and "threshold 90 (90)" in shared["alt_txt"]
    methods = [c.method for c in fake_slack.calls]
    findings = max(
        i
        for i, c in enumerate(fake_slack.calls)
        if c.method == "chat.postMessage" and "db.cluster_status" in c.all_text()
    )
    assert findings < methods.index("files.getUploadURLExternal") < methods.index("upload")
    assert methods.index("upload") < methods.index("files.completeUploadExternal")


def test_no_data_means_a_note_and_no_upload(runtime: Runtime, fake_slack: FakeSlack) -> None:
    alarm = Alarm(
        source="slack", name="q-depth", state="ALARM", namespace="AWS/SQS", metric="Depth"
    )
    ctx = make_context(runtime.settings, runtime.pool)
    record.post_graph(runtime, "C0INC", "1.1", lambda: graphs.alarm_graph(alarm), ctx)
    [note] = fake_slack.find("chat.postMessage")
    assert note.thread_ts == "1.1" and "No data for q-depth in the last 30 minutes" in note.text
    assert not fake_slack.find("files.getUploadURLExternal") and not fake_slack.files


def test_a_failing_graph_never_fails_the_job(runtime: Runtime, fake_slack: FakeSlack) -> None:
    def broken() -> graphs.GraphSpec:
        raise RuntimeError("boom")

    ctx = make_context(runtime.settings, runtime.pool)
    record.post_graph(runtime, "C0INC", "1.1", broken, ctx)
    [note] = fake_slack.find("chat.postMessage")
    assert "No graph for this thread: RuntimeError" in note.text


# -- the timeline of a whole run ---------------------------------------------------------------
def _events(redis_url: str, thread_ts: str) -> list[tuple[str, str]]:
    entries = timeline.read(Redis.from_url(redis_url), "C0INCIDENT", thread_ts)
    return [(e["event"], e["user"]) for e in entries]


def test_timeline_of_alarm_triage_fix_verify(
    redis_url: str, fake_slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    out = io.StringIO()
    assert run_demo("outage-db-down", out, redis=Redis.from_url(redis_url), slack=fake_slack) == 0
    thread = fake_slack.find("chat.postMessage")[0].thread_ts  # the alarm post's, dated now
    assert thread
    events = _events(redis_url, thread)
    findings = [e for e in events if e[0] == "finding"]
    # the write that caused it, and who made it, right after the findings it explains
    changes = [e for e in events if e[0] == "change"]
    assert changes == [("change", "role/finops-scheduler (session nightly-stop)")]
    assert events == [
        ("alarm", "alarm post"),
        ("started", "Omni"),
        *findings,
        *changes,
        ("finished", "Omni"),
        ("proposed", "Omni"),
        ("approved", "U0ONCALL"),
        ("executed", "U0ONCALL"),
        ("verified", "U0ONCALL"),
    ]
    assert findings and {who for _, who in findings} == {"Omni"}
    # the Timeline button posted it as a Markdown file in the alarm's thread
    [posted] = [f for f in fake_slack.files if f["name"] == f"timeline-{thread}.md"]
    assert posted["thread_ts"] == thread and posted["channel"] == "C0INCIDENT"
    md = posted["data"].decode()
    rows = [line for line in md.splitlines() if line.startswith("| 20")]
    assert len(rows) == len(events)
    assert "Alarm *omnirapeutic-production-alb-elb-5xx-high* ALARM received" in rows[0]
    assert any("`db.cluster_status` fail: Aurora cluster is stopped" in row for row in rows)
    assert "followed upstream:" in md  # the healthy checks followed upstream, on one line
    assert "root cause `db.cluster_status`" in rows[len(findings) + len(changes) + 2]
    assert any("StopDBCluster by role/finops-scheduler" in row for row in rows)
    assert "| <@U0ONCALL> | Executed `rds.start_cluster`" in rows[-2]
    assert 'before {"Status":"stopped"} → after {"Status":"available"}' in rows[-2]
    assert "is now *ok*" in rows[-1]
    # and `omni timeline` prints the same table from Redis
    monkeypatch.setenv("REDIS_URL", redis_url)
    capsys.readouterr()
    assert main(["timeline", "C0INCIDENT", thread]) == 0
    assert capsys.readouterr().out == md
    assert main(["timeline", "C0INCIDENT", thread, "--format", "json"]) == 0
    assert [e["event"] for e in json.loads(capsys.readouterr().out)][-1] == "verified"
    assert main(["timeline", "C0INCIDENT", "1.1"]) == 1


def test_timeline_names_both_people_of_a_two_person_fix(
    redis_url: str, fake_slack: FakeSlack
) -> None:
    run_demo("deploy-state-lock", io.StringIO(), redis=Redis.from_url(redis_url), slack=fake_slack)
    [root] = fake_slack.roots("C0INCIDENT")
    events = _events(redis_url, root["ts"])
    findings = [e for e in events if e[0] == "finding"]
    assert events == [
        ("requested", "U0ONCALL"),
        ("started", "Omni"),
        *findings,
        ("finished", "Omni"),
        ("proposed", "Omni"),
        ("approved", "U0ONCALL"),  # first approval
        ("approved", "U0TEAMMATE"),  # the second person
        ("executed", "U0TEAMMATE"),
        ("verified", "U0TEAMMATE"),
    ]


def test_timeline_records_refusals_and_the_recovery(redis_url: str, fake_slack: FakeSlack) -> None:
    from bot.audit import Audit
    from bot.plans import PlanStore, plan_key
    from bot.queue import Enqueuer
    from bot.triage import Triage
    from commands.fixes import propose

    s = Settings(
        slack_bot_token=SecretStr("xoxb-tl"),
        slack_api_url=fake_slack.url,
        redis_url=SecretStr(redis_url),
        post_interval_ms=0,
    )
    redis = Redis.from_url(redis_url)
    client = make_web_client(s)
    triage = Triage(s, redis, Enqueuer(redis, s), client)
    name = "omnirapeutic-production-rds-cpu-high"
    firing = Alarm(source="cloudwatch", name=name, state="ALARM", metric="CPUUtilization")
    assert triage.handle(firing, "C0TL", "1700000500.000100").action == "triage"
    plan = PlanStore(redis, plan_key("xoxb-tl"), 60).propose(
        propose("rds.start_cluster", DBClusterIdentifier="c"),
        check="db.cluster_status",
        finding="f",
        channel="C0TL",
        thread_ts="1700000500.000100",
        environment="production",
    )
    Audit(redis).record("refused", user="U0VIEWER", plan=plan, outcome="role viewer < operator")
    ok = firing.model_copy(update={"state": "OK"})
    assert triage.handle(ok, "C0TL", "1700000600.000100").action == "recovered"
    entries = timeline.read(redis, "C0TL", "1700000500.000100")
    assert [(e["event"], e["user"]) for e in entries] == [
        ("alarm", "CloudWatch"),
        ("refused", "U0VIEWER"),
        ("recovered", "CloudWatch"),
    ]
    assert "role viewer < operator" in entries[1]["text"]
    assert f"Alarm *{name}* recovered (OK)" in entries[2]["text"]
