"""Monitoring & Alarms (guide §8)."""

from __future__ import annotations

from ..moto_ext import backend
from ..stack import Stack
from . import scenario


@scenario(
    "alarms-pending-subscription",
    "The alarm topic's only subscription was never confirmed (guide: Missing Alarm Notifications).",
    area="alarms",
)
def alarms_pending(stack: Stack) -> None:
    sub = backend("sns", stack).subscriptions[stack.extra["subscription_arn"]]
    sub.arn = "PendingConfirmation"
    sub.attributes["PendingConfirmation"] = "true"


@scenario(
    "alarms-muted",
    "An alarm was muted during an incident and never re-enabled (guide: temporarily disable alarm).",
    area="alarms",
)
def alarms_muted(stack: Stack) -> None:
    stack.client("cloudwatch").disable_alarm_actions(
        AlarmNames=[f"{stack.names.alarm_prefix}ecs-cpu-high"]
    )


def firing(stack: Stack, suffix: str, reason: str) -> None:
    stack.client("cloudwatch").set_alarm_state(
        AlarmName=f"{stack.names.alarm_prefix}{suffix}", StateValue="ALARM", StateReason=reason
    )


@scenario(
    "alarms-false-positive",
    "The 5XX alarm fires with nothing behind it: its threshold is too tight (guide: False "
    "Positive Alarms).",
    area="alarms",
    alarm="alb-5xx-high",
)
def alarms_firing(stack: Stack) -> None:
    firing(
        stack,
        "alb-5xx-high",
        "Threshold Crossed: 1 out of the last 1 datapoints [12.0] was greater than the threshold (10.0).",
    )
