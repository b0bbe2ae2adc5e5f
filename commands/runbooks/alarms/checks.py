"""Monitoring & Alarms (guide §8): missing notifications, muted alarms, what is firing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ...context import CheckContext
from ...errors import ResourceNotFound
from ...models import Finding, Status
from ...registry import check


def _topic(ctx: CheckContext) -> str:
    arn = ctx.output("alarms_sns_topic_arn")
    if arn:
        return str(arn)
    # No output: the topic the project's alarms notify.
    for alarm in _alarms(ctx):
        for action in alarm.get("AlarmActions", []):
            if action.startswith("arn:aws:sns:"):
                return str(action)
    raise ResourceNotFound(
        "alarms SNS topic", "(set the Terraform output alarms_sns_topic_arn)", ctx.where
    )


def _alarms(ctx: CheckContext) -> list[dict[str, Any]]:
    return list(
        ctx.aws.paginate(
            "cloudwatch", "describe_alarms", "MetricAlarms", AlarmNamePrefix=ctx.names.alarm_prefix
        )
    )


@check("alarms.sns_subscriptions", title="Alarm SNS subscriptions")
def sns_subscriptions(ctx: CheckContext) -> Finding:
    topic = _topic(ctx)
    subs = ctx.aws.paginate("sns", "list_subscriptions_by_topic", "Subscriptions", TopicArn=topic)
    rows = [
        {
            "protocol": s.get("Protocol"),
            "endpoint": s.get("Endpoint"),
            "confirmed": s.get("SubscriptionArn") not in ("PendingConfirmation", "Deleted"),
        }
        for s in subs
    ]
    pending = [r for r in rows if not r["confirmed"]]
    evidence = {"topic": topic, "subscriptions": rows}
    test = ctx.propose(
        "sns.send_test_notification",
        TopicArn=topic,
        Subject="Test Alarm",
        Message="Test alarm notification from Omni",
    )
    if not rows:
        return ctx.finding(
            Status.FAIL,
            "Nobody is subscribed to the alarm topic",
            f"{topic} has no subscription: alarms notify no one.",
            evidence,
        )
    if len(pending) == len(rows):
        return ctx.finding(
            Status.FAIL,
            "No alarm subscription is confirmed",
            f"{len(pending)} subscription(s) PendingConfirmation: click the confirmation link (email) or confirm the endpoint.",
            evidence,
        )
    if pending:
        return ctx.finding(
            Status.WARN,
            f"{len(pending)} alarm subscription(s) pending confirmation",
            ", ".join(str(p["endpoint"]) for p in pending[:3]),
            evidence,
            [test],
        )
    return ctx.finding(
        Status.OK, f"{len(rows)} confirmed subscription(s) on the alarm topic", "", evidence
    )


@check("alarms.actions_enabled", title="Alarms with actions disabled")
def actions_enabled(ctx: CheckContext) -> Finding:
    alarms = _alarms(ctx)
    muted = [a for a in alarms if not a.get("ActionsEnabled", True)]
    evidence = {
        "alarms": len(alarms),
        "muted": [
            {
                "name": a["AlarmName"],
                "state": a.get("StateValue"),
                "configuration_updated": a["AlarmConfigurationUpdatedTimestamp"].isoformat()
                if isinstance(a.get("AlarmConfigurationUpdatedTimestamp"), datetime)
                else None,
            }
            for a in muted
        ],
    }
    if not alarms:
        return ctx.finding(
            Status.WARN,
            f"No alarm named {ctx.names.alarm_prefix}*",
            "Set OMNI_ALARM_PREFIX if the alarms are named otherwise.",
            evidence,
        )
    if muted:
        return ctx.finding(
            Status.FAIL,
            f"{len(muted)} alarm(s) muted: {', '.join(a['AlarmName'] for a in muted[:3])}",
            "Their actions are disabled: they change state but notify no one.",
            evidence,
            [
                ctx.propose(
                    "cloudwatch.enable_alarm_actions", AlarmNames=[a["AlarmName"] for a in muted]
                )
            ],
            resources=[a["AlarmName"] for a in muted],
        )
    return ctx.finding(
        Status.OK, f"All {len(alarms)} alarms have their actions enabled", "", evidence
    )


@check("alarms.in_alarm", title="Alarms firing now")
def in_alarm(ctx: CheckContext) -> Finding:
    firing = [a for a in _alarms(ctx) if a.get("StateValue") == "ALARM"]
    rows = [
        {
            "name": a["AlarmName"],
            "metric": f"{a.get('Namespace')}/{a.get('MetricName')}",
            "since": a["StateUpdatedTimestamp"].isoformat()
            if isinstance(a.get("StateUpdatedTimestamp"), datetime)
            else None,
            "reason": str(a.get("StateReason", ""))[:300],
        }
        for a in firing
    ]
    evidence = {"firing": rows}
    if firing:
        names = [r["name"] for r in rows]
        return ctx.finding(
            Status.FAIL,
            f"{len(firing)} alarm(s) firing: {', '.join(names[:3])}",
            rows[0]["reason"],
            evidence,
            # offered only when nothing else explains the alarm (the analysis): a false positive
            [
                ctx.propose(
                    "cloudwatch.disable_alarm_actions",
                    AlarmNames=names[:100],
                    ReenableAfterMinutes=60,
                )
            ],
            resources=names,
        )
    return ctx.finding(Status.OK, "No alarm is firing", "", evidence)
