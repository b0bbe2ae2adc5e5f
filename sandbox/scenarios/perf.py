"""Performance Issues (guide §6)."""

from __future__ import annotations

from ..metrics import replace_metric
from ..stack import Stack
from . import scenario
from ._faults import ecs_metric


@scenario(
    "perf-slow-responses",
    "Responses take seconds; the tasks are CPU-bound (guide: High Response Times).",
    area="perf",
    alarm="alb-response-time-high",
)
def perf_slow(stack: Stack) -> None:
    replace_metric(
        stack,
        "AWS/ApplicationELB",
        "TargetResponseTime",
        {"LoadBalancer": stack.outputs["alb_arn_suffix"]},
        [0.2] * 50 + [4.5] * 10,
        "Seconds",
    )
    ecs_metric(stack, "CPUUtilization", [40.0] * 50 + [96.0] * 10)
