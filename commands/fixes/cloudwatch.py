"""Alarm fixes: re-enable muted alarm actions; mute them for a while (re-enabled on schedule)."""

from __future__ import annotations

from pydantic import Field

from ..models import Risk
from ._registry import Call, FixContext, FixResult, FollowUp, Params, fix

_ALARMS = ("arn:aws:cloudwatch:*:*:alarm:{project}-*",)


class AlarmNames(Params):
    AlarmNames: list[str] = Field(min_length=1, max_length=100)


class MuteAlarms(AlarmNames):
    ReenableAfterMinutes: int = Field(60, ge=5, le=24 * 60)


def _actions_enabled(ctx: FixContext, names: list[str]) -> dict[str, bool]:
    alarms = ctx.call("cloudwatch", "describe_alarms", AlarmNames=names)["MetricAlarms"]
    return {a["AlarmName"]: bool(a["ActionsEnabled"]) for a in alarms}


def _names(p: AlarmNames) -> str:
    return ",".join(sorted(p.AlarmNames))


@fix(
    "cloudwatch.enable_alarm_actions",
    title="Re-enable alarm actions",
    risk=Risk.LOW,
    calls=[Call("cloudwatch:EnableAlarmActions", _ALARMS)],
    reads=("cloudwatch:DescribeAlarms",),
    target=_names,
    terraform="Make sure `actions_enabled = true` on the aws_cloudwatch_metric_alarm resources.",
)
def enable_alarm_actions(ctx: FixContext, p: AlarmNames) -> FixResult:
    before = _actions_enabled(ctx, p.AlarmNames)
    ctx.call("cloudwatch", "enable_alarm_actions", AlarmNames=p.AlarmNames)
    return FixResult(
        "Alarm actions enabled",
        {"ActionsEnabled": before},
        {"ActionsEnabled": _actions_enabled(ctx, p.AlarmNames)},
    )


@fix(
    "cloudwatch.disable_alarm_actions",
    title="Mute alarm actions for a while",
    risk=Risk.MEDIUM,
    calls=[Call("cloudwatch:DisableAlarmActions", _ALARMS)],
    reads=("cloudwatch:DescribeAlarms",),
    target=_names,
    terraform="Nothing to change for a temporary mute; to change the alarm for good, edit its "
    "threshold in modules/alarms/main.tf.",
    caveat="Re-enabled automatically when the mute ends.",
)
def disable_alarm_actions(ctx: FixContext, p: MuteAlarms) -> FixResult:
    before = _actions_enabled(ctx, p.AlarmNames)
    ctx.call("cloudwatch", "disable_alarm_actions", AlarmNames=p.AlarmNames)
    return FixResult(
        f"Alarm actions muted for {p.ReenableAfterMinutes} min",
        {"ActionsEnabled": before},
        {"ActionsEnabled": _actions_enabled(ctx, p.AlarmNames)},
        follow_up=FollowUp(
            "cloudwatch.enable_alarm_actions",
            {"AlarmNames": p.AlarmNames},
            p.ReenableAfterMinutes,
            note=f"Alarm actions will be re-enabled automatically in {p.ReenableAfterMinutes} minutes.",
        ),
    )
