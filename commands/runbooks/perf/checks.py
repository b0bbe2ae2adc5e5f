"""Performance Issues (guide §6): where the time goes (ALB, ECS, and the db load checks)."""

from __future__ import annotations

from ...context import CheckContext
from ...models import Finding, Status
from ...registry import check


@check("perf.target_response_time", title="ALB target response time")
def target_response_time(ctx: CheckContext) -> Finding:
    points = ctx.metric(
        "AWS/ApplicationELB", "TargetResponseTime", {"LoadBalancer": ctx.alb_arn_suffix()}
    )
    if not points:
        return ctx.finding(Status.SKIPPED, "No TargetResponseTime datapoints in the last hour")
    recent = points[-5:]
    avg = sum(float(p.get("Average", 0)) for p in recent) / len(recent)
    peak = max(float(p.get("Maximum", 0)) for p in points)
    evidence = {
        "recent_5min_avg_s": round(avg, 3),
        "max_1h_s": round(peak, 3),
        "latest_at": points[-1]["Timestamp"],
    }
    if avg >= 3:
        return ctx.finding(
            Status.FAIL,
            f"Responses average {avg:.1f}s",
            "Users see slow pages or timeouts. See the ECS and database findings for where the time goes.",
            evidence,
        )
    if avg >= 1 or peak >= 10:
        return ctx.finding(
            Status.WARN, f"Responses slow: {avg:.2f}s average, {peak:.1f}s max", "", evidence
        )
    return ctx.finding(Status.OK, f"Responses fast ({avg * 1000:.0f} ms average)", "", evidence)


def _scale(ctx: CheckContext) -> list:  # type: ignore[type-arg]
    desired = int(ctx.ecs_service().get("desiredCount", 1))
    return [
        ctx.propose(
            "ecs.scale_service",
            cluster=ctx.names.ecs_cluster,
            service=ctx.names.ecs_service,
            desiredCount=desired + max(1, desired // 2),
        )
    ]


@check("perf.ecs_cpu", title="ECS CPU")
def ecs_cpu(ctx: CheckContext) -> Finding:
    points = ctx.metric("AWS/ECS", "CPUUtilization", ctx.ecs_metric_dims())
    if not points:
        return ctx.finding(Status.SKIPPED, "No ECS CPUUtilization datapoints in the last hour")
    recent = points[-5:]
    avg = sum(float(p.get("Average", 0)) for p in recent) / len(recent)
    evidence = {
        "recent_5min_avg_pct": round(avg, 1),
        "max_1h_pct": round(max(float(p.get("Maximum", 0)) for p in points), 1),
    }
    if avg >= 90:
        return ctx.finding(
            Status.FAIL,
            f"ECS CPU at {avg:.0f}%",
            "The tasks are CPU-bound: scale out (or raise task CPU).",
            evidence,
            _scale(ctx),
        )
    if avg >= 75:
        return ctx.finding(Status.WARN, f"ECS CPU high ({avg:.0f}%)", "", evidence)
    return ctx.finding(Status.OK, f"ECS CPU normal ({avg:.0f}%)", "", evidence)


@check("perf.ecs_memory", title="ECS memory")
def ecs_memory(ctx: CheckContext) -> Finding:
    points = ctx.metric("AWS/ECS", "MemoryUtilization", ctx.ecs_metric_dims())
    if not points:
        return ctx.finding(Status.SKIPPED, "No ECS MemoryUtilization datapoints in the last hour")
    recent = points[-5:]
    avg = sum(float(p.get("Average", 0)) for p in recent) / len(recent)
    evidence = {"recent_5min_avg_pct": round(avg, 1)}
    if avg >= 90:
        from ..ecs.checks import increase_memory

        fix = increase_memory(ctx)
        return ctx.finding(
            Status.FAIL,
            f"ECS memory at {avg:.0f}%",
            "Tasks near their memory limit slow down, then get killed.",
            evidence,
            [fix] if fix else [],
        )
    if avg >= 75:
        return ctx.finding(Status.WARN, f"ECS memory high ({avg:.0f}%)", "", evidence)
    return ctx.finding(Status.OK, f"ECS memory normal ({avg:.0f}%)", "", evidence)
