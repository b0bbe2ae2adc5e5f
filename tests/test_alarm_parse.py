"""Every fixture in tests/fixtures read; the alarm parser never raises."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.alarm import Alarm
from commands.routing import Route, route
from commands.sources import parse_any
from commands.sources.slack import from_event as from_slack_event

from .helpers import FIXTURES, REPO, clean_env

# fixture → (source, name, state, region, account, metric, runbooks)
EXPECT: dict[str, tuple[Any, ...]] = {
    "aws_chatbot_cloudwatch_alarm_message_event.reconstructed.json": (
        "slack",
        "prod-api-5xx-high",
        "ALARM",
        "us-east-1",
        "123456789012",
        None,
        ["alb", "ecs"],
    ),
    "cloudwatch_alarm_message_metric_math.aws-lambda-go.json": (
        "cloudwatch",
        "EXAMPLE",
        "ALARM",
        None,
        None,
        "NetworkOut",
        [],
    ),
    "cloudwatch_alarm_message_minimal.terraform-aws-notify-slack.json": (
        "cloudwatch",
        "Example",
        "ALARM",
        "eu-west-1",
        "000000000000",
        None,
        [],
    ),
    "cloudwatch_alarm_message_single_metric.aws-lambda-go.json": (
        "cloudwatch",
        "EXAMPLE",
        "ALARM",
        None,
        "123456789012",
        "NetworkOut",
        [],
    ),
    "cloudwatch_alarm_sns_notification.reconstructed.json": (
        "cloudwatch",
        "prod-api-5xx-high",
        "ALARM",
        "us-east-1",
        "123456789012",
        "HTTPCode_Target_5XX_Count",
        ["alb", "ecs"],
    ),
    "cloudwatch_alarm_via_sns_lambda_event.terraform-aws-notify-slack.json": (
        "cloudwatch",
        "DBMigrationRequired",
        "OK",
        "us-east-1",
        "735598076380",
        "DBMigrationRequired",
        [],
    ),
    "cloudwatch_alarm_via_sns_lambda_event_metric_math.aws-lambda-go.json": (
        "cloudwatch",
        "EXAMPLE",
        "ALARM",
        None,
        None,
        "NetworkOut",
        [],
    ),
    "cloudwatch_alarm_via_sns_lambda_event_single_metric.aws-lambda-go.json": (
        "cloudwatch",
        "EXAMPLE",
        "ALARM",
        None,
        "123456789012",
        "NetworkOut",
        [],
    ),
    "cloudwatch_alarm_state_change_eventbridge.reconstructed.json": (
        "cloudwatch",
        "shop-prod-rds-freeable-memory",
        "ALARM",
        "eu-central-2",
        "210987654321",
        "FreeableMemory",
        ["db"],
    ),
    "pagerduty_slack_incident_message_event.reconstructed.json": (
        "slack",
        "The server is on fire.",
        "TRIGGERED",
        None,
        None,
        None,
        [],
    ),
    "pagerduty_webhook_v3_incident_priority_updated.pagerduty_docs.json": (
        "pagerduty",
        "A little bump in the road",
        "TRIGGERED",
        None,
        None,
        None,
        [],
    ),
    "pagerduty_webhook_v3_incident_priority_updated.signed_body.go-pagerduty.json": (
        "pagerduty",
        "A little bump in the road",
        "TRIGGERED",
        None,
        None,
        None,
        [],
    ),
    "pagerduty_webhook_v3_incident_triggered.reconstructed.json": (
        "pagerduty",
        "A little bump in the road",
        "TRIGGERED",
        None,
        None,
        None,
        [],
    ),
}
NOT_ALARMS = [
    "slack_event_message_user.bolt_tests.json",
    "slack_event_message_subtype_bot_message.bolt_tests.json",
    "slack_event_message_from_app_bot_no_subtype.bolt_tests.json",
    "sns_notification.aws_docs.json",
    "sns_notification_sigv1_real.aws-sdk-ruby.json",
    "sns_subscription_confirmation.aws_docs.json",
    "slack_block_actions.bolt_tests.json",
    "slack_events_url_verification.bolt_tests.json",
]


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_fixture_alarm(name: str) -> None:
    source, alarm_name, state, region, account, metric, runbooks = EXPECT[name]
    doc = _load(name)
    alarm = parse_any(doc)
    assert alarm is not None
    assert (alarm.source, alarm.name, alarm.state, alarm.region, alarm.account, alarm.metric) == (
        source,
        alarm_name,
        state,
        region,
        account,
        metric,
    )
    assert route(alarm) == runbooks


@pytest.mark.parametrize("name", NOT_ALARMS)
def test_not_alarms(name: str) -> None:
    assert parse_any(_load(name)) is None


def test_every_json_fixture_is_handled() -> None:
    read = 0
    for path in FIXTURES.glob("*.json"):
        alarm = parse_any(json.loads(path.read_text()))  # never raises
        assert alarm is None or (alarm.identity and alarm.state), path.name
        read += alarm is not None
    assert read == len(EXPECT)


def test_region_comes_from_the_arn_not_the_display_name() -> None:
    doc = _load("cloudwatch_alarm_sns_notification.reconstructed.json")
    inner = json.loads(doc["Message"])
    inner["Region"] = "EU (Ireland)"  # display name disagrees; the ARN wins
    inner["AlarmArn"] = "arn:aws:cloudwatch:ap-south-1:222222222222:alarm:prod-api-5xx-high"
    doc["Message"] = json.dumps(inner)
    alarm = parse_any(doc)
    assert alarm is not None and (alarm.region, alarm.account) == ("ap-south-1", "222222222222")


@pytest.mark.parametrize("subtype", [None, "bot_message"])
def test_chatbot_post_in_both_shapes_and_known_names(subtype: str | None) -> None:
    event = _load("aws_chatbot_cloudwatch_alarm_message_event.reconstructed.json")["event"]
    if subtype:
        event["subtype"] = subtype
    else:
        event.pop("subtype", None)
    event["attachments"][0]["blocks"][0]["text"]["text"] = (
        "A new alarm fired, see details"  # layouts change
    )
    alarm = from_slack_event(event, known_names=["prod-api-5xx-high", "prod-api-5xx"])
    assert alarm is not None and alarm.name == "prod-api-5xx-high" and alarm.state == "ALARM"


def test_user_rules_come_first() -> None:
    alarm = parse_any(_load("cloudwatch_alarm_message_single_metric.aws-lambda-go.json"))
    assert alarm is not None
    assert route(
        alarm, [Route(namespace="AWS/EC2", metric="NetworkOut", runbooks=["network"])]
    ) == ["network"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "event",
        "type",
        "text",
        "attachments",
        "blocks",
        "fields",
        "Records",
        "Sns",
        "Message",
        "Type",
        "AlarmName",
        "Trigger",
        "AlarmArn",
        "NewStateValue",
        "event_type",
        "data",
    ]
)


@given(
    st.dictionaries(keys, json_values | st.dictionaries(keys, json_values, max_size=5), max_size=6)
)
@settings(max_examples=400, deadline=None)
def test_parser_never_raises(doc: dict[str, Any]) -> None:
    for payload in (doc, {"type": "message", "text": json.dumps(doc)}):
        alarm = parse_any(payload)
        assert alarm is None or alarm.source in ("cloudwatch", "pagerduty", "slack")


def test_explain_cli_json() -> None:
    path = FIXTURES / "cloudwatch_alarm_sns_notification.reconstructed.json"
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "alarm", "explain", str(path), "--format", "json"],
        env=clean_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc == {
        "source": "cloudwatch",
        "alarm": {
            "name": "prod-api-5xx-high",
            "state": "ALARM",
            "namespace": "AWS/ApplicationELB",
            "metric": "HTTPCode_Target_5XX_Count",
            "dimensions": {"LoadBalancer": "app/prod-api/0123456789abcdef"},
            "region": "us-east-1",
            "account": "123456789012",
        },
        "runbooks": ["alb", "ecs"],
        "environment": "production",
        "environment_reason": "the only environment",
    }
    user = FIXTURES / "slack_event_message_user.bolt_tests.json"
    out = subprocess.run(
        [sys.executable, "-m", "commands.cli", "alarm", "explain", str(user), "--format", "json"],
        env=clean_env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1 and json.loads(out.stdout)["alarm"]["name"] is None


@pytest.mark.parametrize(
    ("namespace", "metric", "name", "runbooks"),
    [
        # any metric of a service Omni diagnoses reaches that service's runbooks
        ("AWS/RDS", "FreeableMemory", "x", ["db"]),
        ("AWS/RDS", "AuroraReplicaLag", "x", ["db"]),
        ("AWS/ApplicationELB", "RejectedConnectionCount", "x", ["alb", "ecs"]),
        ("AWS/ApplicationELB", "TargetResponseTime", "x", ["perf", "alb"]),
        ("AWS/ECS", "CPUUtilization", "x", ["perf", "ecs"]),
        ("ECS/ContainerInsights", "RunningTaskCount", "x", ["ecs", "perf"]),
        ("ECS/ContainerInsights", "MemoryUtilized", "x", ["perf", "ecs"]),
        ("AWS/WAFV2", "CountedRequests", "x", ["waf"]),
        ("AWS/SNS", "NumberOfNotificationsFailed", "x", ["alarms"]),
        ("AWS/NATGateway", "ErrorPortAllocation", "x", ["network"]),
        # a post without its metric: the name's words
        (None, None, "prod-aurora-replica-lag", ["db"]),
        (None, None, "prod_postgres_freeable_memory", ["db"]),
        (None, None, "api-running-tasks-low", ["ecs"]),
        (None, None, "cards-service-cpu-high", ["perf", "ecs"]),  # "rds" inside a word is not RDS
        (None, None, "omnirapeutic-production-rds-cpu-high-2", ["db"]),
        (None, None, "checkout-api-5xx", ["alb", "ecs"]),
        (None, None, "billing-batch-finished", []),
    ],
)
def test_every_metric_of_a_diagnosed_service_routes(
    namespace: str | None, metric: str | None, name: str, runbooks: list[str]
) -> None:
    alarm = Alarm(source="cloudwatch", name=name, namespace=namespace, metric=metric)
    assert route(alarm) == runbooks


def test_every_region_botocore_knows_has_its_display_name() -> None:
    """An alarm message without an ARN names its region only by display name: every region of
    the commercial, China and GovCloud partitions is known by it, old "EU (…)" forms too."""
    import botocore.loaders

    from commands.sources._scan import REGION_NAMES

    endpoints = botocore.loaders.Loader().load_data("endpoints")
    known = {
        code: info["description"]
        for partition in endpoints["partitions"]
        if partition["partition"] in {"aws", "aws-cn", "aws-us-gov"}
        for code, info in partition["regions"].items()
    }
    assert len(known) >= 30
    missing = {c: d for c, d in known.items() if REGION_NAMES.get(d.lower()) != c}
    assert not missing, f"add to commands/sources/_scan.py _REGIONS: {missing}"
    assert REGION_NAMES["eu (ireland)"] == "eu-west-1"
    assert REGION_NAMES["asia pacific (seoul)"] == "ap-northeast-2"


def test_region_from_the_display_name_when_there_is_no_arn() -> None:
    doc = _load("cloudwatch_alarm_sns_notification.reconstructed.json")
    inner = json.loads(doc["Message"])
    inner.pop("AlarmArn", None)
    inner["Region"] = "Asia Pacific (Seoul)"
    doc["Message"] = json.dumps(inner)
    alarm = parse_any(doc)
    assert alarm is not None and alarm.region == "ap-northeast-2"


def test_eventbridge_alarm_events_bare_through_sns_metric_math_and_composite() -> None:
    """An EventBridge rule on CloudWatch alarm state changes, with an SNS target, delivers the
    event as the notification's message: the same alarm as the bare event."""
    event = _load("cloudwatch_alarm_state_change_eventbridge.reconstructed.json")
    bare = parse_any(event)
    assert bare is not None
    assert (bare.threshold, bare.statistic, bare.dimensions) == (
        2e8,
        "Minimum",
        {"DBInstanceIdentifier": "shop-prod-writer"},
    )
    assert bare.changed_at == "2026-03-04T05:06:07.125+0000" and "less than" in (bare.reason or "")
    envelope = _load("sns_notification.aws_docs.json")
    envelope["Message"] = json.dumps(event)
    assert parse_any(envelope) == bare
    # metric math: an expression first, then its metrics
    math = copy.deepcopy(event)
    metric = math["detail"]["configuration"]["metrics"][0]
    math["detail"]["configuration"]["metrics"] = [
        {"id": "e1", "expression": "m1 / 1024", "returnData": True},
        {**metric, "id": "m1", "returnData": False},
    ]
    assert (parse_any(math) or bare).metric == "FreeableMemory"
    # composite: a rule over other alarms and no metric; routed by its name
    composite = copy.deepcopy(event)
    composite["detail"]["alarmName"] = "shop-prod-database-degraded"
    composite["detail"]["configuration"] = {"alarmRule": "ALARM(a) OR ALARM(b)"}
    alarm = parse_any(composite)
    assert alarm is not None and alarm.metric is None and alarm.state == "ALARM"
    assert route(alarm) == ["db"]
