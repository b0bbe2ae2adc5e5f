"""ECS Service Issues (guide §1): tasks failing to start, tasks restarting frequently.

The start-up checks (image, execution role, IPs, health check settings) are in ``_start``; how a
stopped task is judged is ``_stops``.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from ...context import CheckContext
from ...errors import AwsCallError, ResourceNotFound
from ...fargate import next_size
from ...models import Finding, Remediation, Status
from ...registry import check
from . import _start  # noqa: F401  (registers the start-up checks)
from ._stops import LABELS, classify

BENIGN_FOR_CHURN = {"deployment_sigkill"}  # a deployment replaced it: not churn

_STEADY = re.compile(r"\bhas reached a steady state\b", re.I)
_BAD_EVENT = {
    "unable to place": re.compile(r"\bunable to place a task\b", re.I),
    "failed to launch": re.compile(
        r"\bfailed to launch a task\b|\bunable to consistently start tasks\b", re.I
    ),
    "unhealthy": re.compile(r"\bis unhealthy in\b|\bfailed (ELB|container) health checks\b", re.I),
    "image pull": re.compile(r"\bCannotPullContainerError\b", re.I),
    "secrets": re.compile(r"\bResourceInitializationError\b", re.I),
}
# ECS does not repeat an identical event for hours: a failure reported this long ago, with no
# steady state since, is still current
EVENT_HORIZON = timedelta(hours=6)
# What an application's error line says about where it failed (counted as words)
_MENTIONS = {
    "database": re.compile(
        r"\b(postgres(ql)?|database|:5432|too many connections|connection terminated|"
        r"could not connect to server|read-only transaction|Sequelize\w*Error|PG\w*Error|"
        r"rds\.amazonaws\.com)\b",
        re.I,
    ),
    "timeout": re.compile(r"\b(ETIMEDOUT|timed? ?out|deadline exceeded)\b", re.I),
    "memory": re.compile(r"\b(heap out of memory|OutOfMemory\w*|ENOMEM|allocation failed)\b", re.I),
}
_HOST_PORT = re.compile(r"\b([a-z0-9][a-z0-9.-]{2,253}\.[a-z]{2,}):(\d{2,5})\b", re.I)


def _ts(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _iso(value: Any) -> str | None:
    ts = _ts(value)
    return ts.isoformat() if ts else (str(value) if value else None)


def service_ref(ctx: CheckContext) -> dict[str, str]:
    return {"cluster": ctx.names.ecs_cluster, "service": ctx.names.ecs_service}


@check("ecs.service_running", title="ECS tasks running vs desired")
def service_running(ctx: CheckContext) -> Finding:
    try:
        svc = ctx.ecs_service()
    except ResourceNotFound as exc:
        return ctx.finding(
            Status.FAIL,
            f"ECS service {exc.name} not found",
            f"Looked for service {exc.name} in {exc.where}. If it has another name, set "
            "OMNI_ECS_CLUSTER / OMNI_ECS_SERVICE.",
            {"looked_for": exc.name, "where": exc.where},
        )
    running, desired, pending = (
        svc.get("runningCount", 0),
        svc.get("desiredCount", 0),
        svc.get("pendingCount", 0),
    )
    evidence = {
        "service": svc.get("serviceName"),
        "running": running,
        "desired": desired,
        "pending": pending,
        "status": svc.get("status"),
    }
    resources = [ctx.names.ecs_service]
    if desired == 0:
        return ctx.finding(
            Status.WARN,
            "ECS service is scaled to zero",
            f"{ctx.names.ecs_service} has desiredCount 0: nothing serves traffic.",
            evidence,
            [
                ctx.propose(
                    "ecs.scale_service",
                    **service_ref(ctx),
                    desiredCount=max(1, len(ctx.private_app_subnet_ids()) or 1),
                )
            ],
            resources=resources,
        )
    if running >= desired:
        return ctx.finding(
            Status.OK, f"ECS service running {running}/{desired} tasks", "", evidence
        )
    return ctx.finding(
        Status.FAIL,
        f"ECS service running {running}/{desired} tasks",
        f"{desired - running} task(s) missing ({pending} pending). See the stopped tasks and the "
        "service events for why.",
        evidence,
        [ctx.propose("ecs.force_new_deployment", **service_ref(ctx))],
        resources=resources,
    )


@check("ecs.service_events", title="ECS service events")
def service_events(ctx: CheckContext) -> Finding:
    """The failures ECS reported since the service last reached a steady state.

    ECS does not repeat an identical event for hours: a failure that started an hour ago may
    have only that one, hour-old event.  So the events that count are those newer than the
    last "has reached a steady state" (within :data:`EVENT_HORIZON`), whatever their age.
    """
    svc = ctx.ecs_service()
    events = sorted(
        svc.get("events", [])[:100],
        key=lambda e: _ts(e.get("createdAt")) or ctx.now,
        reverse=True,
    )
    since = ctx.now - EVENT_HORIZON
    current, steady_at = [], None
    for event in events:
        at = _ts(event.get("createdAt")) or ctx.now
        if _STEADY.search(str(event.get("message", ""))):
            steady_at = at
            break
        if at < since:
            break
        current.append(event)
    bad: list[dict[str, Any]] = []
    for event in current:
        kinds = [k for k, rx in _BAD_EVENT.items() if rx.search(str(event.get("message", "")))]
        if kinds:
            bad.append(
                {
                    "at": _iso(event.get("createdAt")),
                    "kind": kinds[0],
                    "message": str(event.get("message", ""))[:400],
                }
            )
    evidence = {
        "last_steady_state": _iso(steady_at),
        "events_since": len(current),
        "problems": bad[:8],
    }
    if not bad:
        latest = events[0].get("message") if events else None
        return ctx.finding(
            Status.OK,
            "No failure reported since the last steady state",
            "",
            {**evidence, "latest": latest},
        )
    counts = Counter(b["kind"] for b in bad)
    summary = ", ".join(f"{k} ×{n}" for k, n in counts.most_common())
    oldest = bad[-1]["at"]
    detail = bad[0]["message"]
    first_at = _ts(current[-1].get("createdAt"))
    if oldest and first_at and ctx.now - first_at > timedelta(minutes=30):
        detail += (
            f" (first reported {oldest}; ECS does not repeat an identical event, and the "
            "service has not reached a steady state since)"
        )
    return ctx.finding(
        Status.FAIL,
        f"ECS service events report problems: {summary}",
        detail,
        evidence,
        resources=[ctx.names.ecs_service],
    )


def stopped_tasks_of_service(ctx: CheckContext) -> list[dict[str, Any]]:
    """The service's stopped tasks (ECS keeps them for about an hour), every page."""
    arns = ctx.aws.paginate(
        "ecs",
        "list_tasks",
        "taskArns",
        cluster=ctx.names.ecs_cluster,
        serviceName=ctx.names.ecs_service,
        desiredStatus="STOPPED",
    )
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), 100):
        tasks += ctx.aws.call(
            "ecs", "describe_tasks", cluster=ctx.names.ecs_cluster, tasks=arns[start : start + 100]
        ).get("tasks", [])
    group = f"service:{ctx.names.ecs_service}"
    return [t for t in tasks if t.get("group", group) == group]


def increase_memory(ctx: CheckContext) -> Remediation | None:
    td = ctx.task_definition()
    try:
        cpu, memory = int(td.get("cpu") or 0), int(td.get("memory") or 0)
    except ValueError:
        return None
    bigger = next_size(cpu, memory) if cpu and memory else None
    if bigger is None:
        return None
    return ctx.propose(
        "ecs.increase_task_memory",
        **service_ref(ctx),
        taskDefinition=f"{td['family']}:{td['revision']}",
        cpu=str(bigger[0]),
        memory=str(bigger[1]),
    )


def _revision(arn: Any) -> str:
    return str(arn or "").rsplit("/", 1)[-1]


@check("ecs.stopped_tasks", title="Stopped tasks")
def stopped_tasks(ctx: CheckContext) -> Finding:
    rows = []
    tasks = stopped_tasks_of_service(ctx)
    for task in sorted(tasks, key=lambda t: _ts(t.get("stoppedAt")) or ctx.now, reverse=True):
        stop = classify(task)
        container = (task.get("containers") or [{}])[0]
        rows.append(
            {
                "task": str(task.get("taskArn", "")).rsplit("/", 1)[-1],
                "category": stop.category,
                "failure": stop.failure,
                "why": stop.why,
                "stopCode": task.get("stopCode"),
                "stoppedReason": (task.get("stoppedReason") or "")[:300],
                "exitCode": container.get("exitCode"),
                "containerReason": (container.get("reason") or "")[:300],
                "taskDefinition": _revision(task.get("taskDefinitionArn")),
                "stoppedAt": _iso(task.get("stoppedAt")),
            }
        )
    problems = [r for r in rows if r["failure"]]
    by_cause = Counter(r["category"] for r in problems)
    evidence: dict[str, Any] = {
        "stopped_tasks": len(rows),
        "by_cause": dict(by_cause),
        "benign": dict(Counter(r["category"] for r in rows if not r["failure"])),
        "task_definitions": sorted({r["taskDefinition"] for r in problems}),
        "newest": problems[:5],
    }
    resources = [ctx.names.ecs_service, *evidence["task_definitions"]]
    if not problems:
        return ctx.finding(Status.OK, "No task stopped because of a failure", "", evidence)
    real = Counter({k: n for k, n in by_cause.items() if k != "deployment_sigkill"})
    if not real:  # only deployment stops that ignored SIGTERM: worth knowing, not a failure
        return ctx.finding(
            Status.WARN,
            f"{by_cause['deployment_sigkill']} task(s) ignored SIGTERM during a deployment",
            "They were killed after stopTimeout (exit 137): requests in flight were cut. "
            "Handle SIGTERM in the application (or raise stopTimeout).",
            evidence,
            resources=resources,
        )
    top, n = real.most_common(1)[0]
    remediations = []
    if top == "out_of_memory":
        fix = increase_memory(ctx)
        remediations = [fix] if fix else []
    first = next(r for r in problems if r["category"] == top)
    extra = first["containerReason"]
    return ctx.finding(
        Status.FAIL,
        f"{n} task(s) stopped: {LABELS[top]}",
        f"Newest: {first['why']}" + (f" — {extra}" if extra and extra not in first["why"] else ""),
        evidence,
        remediations,
        resources=resources,
    )


def _mentions(lines: list[str]) -> dict[str, int]:
    return {k: sum(1 for line in lines if rx.search(line)) for k, rx in _MENTIONS.items()}


# The guide reads `--filter-pattern "ERROR"`; an app that logs JSON says `"level":"error"` (or
# pino's 50) and never ERROR, so a JSON pattern is read beside it, at the same time.  Should
# CloudWatch refuse that pattern, the plain reading stands alone (noted in the evidence).
JSON_ERRORS = (
    '{ ($.level = "error") || ($.level = "ERROR") || ($.level = "fatal") || ($.level = "FATAL")'
    ' || ($.level = 50) || ($.level = 60) || ($.severity = "error") || ($.severity = "ERROR")'
    ' || ($.levelname = "ERROR") }'
)
_JSON_LEVEL = re.compile(
    r'"(?:level|severity|levelname)"\s{0,4}:\s{0,4}(?:"(?:error|fatal|critical)"|(?:50|60)\b)',
    re.I,
)


def is_error_line(message: str) -> bool:
    """An ERROR line as the guide greps it, or a JSON log line at level error or worse."""
    return "ERROR" in message or bool(_JSON_LEVEL.search(message[:4000]))


@check("ecs.container_errors", title="ERROR lines in the service's logs")
def container_errors(ctx: CheckContext) -> Finding:
    groups = ctx.log_groups()
    group = ", ".join(groups)
    start = int((ctx.now - timedelta(minutes=30)).timestamp() * 1000)

    refused: list[str] = []

    def read(name: str, pattern: str) -> list[dict[str, Any]] | None:
        try:
            return ctx.aws.paginate(
                "logs",
                "filter_log_events",
                "events",
                logGroupName=name,
                startTime=start,
                filterPattern=pattern,
                PaginationConfig={"MaxItems": 1000},
            )
        except AwsCallError as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            if pattern == JSON_ERRORS and not exc.access_denied:
                refused.append(exc.code)  # the plain reading stands alone
                return []
            raise

    steps = [
        (lambda name=name, pattern=pattern: read(name, pattern))
        for name in groups
        for pattern in ("ERROR", JSON_ERRORS)
    ]
    found = ctx.gather(*steps)
    if all(f is None for f in found[0::2]):  # each group's plain reading: the group is missing
        return ctx.finding(
            Status.FAIL,
            f"Log group {group} not found",
            f"Looked in {ctx.where}; the tasks' logs go nowhere Omni can read "
            "(set OMNI_LOG_GROUP if they go elsewhere).",
            {"log_group": group},
        )
    # an event both readings returned counts once (its stream, time and id: moto numbers ids
    # per stream, AWS uniquely)
    unique = {
        (e.get("logStreamName"), e.get("timestamp"), e.get("eventId"), e.get("message")): e
        for f in found
        for e in f or []
    }
    events = [e for e in unique.values() if is_error_line(str(e.get("message", "")))]
    lines = [str(e.get("message", ""))[:1000] for e in events]
    newest = sorted(events, key=lambda e: e.get("timestamp", 0), reverse=True)[:5]
    samples = [
        {
            "at": datetime.fromtimestamp(e["timestamp"] / 1000, tz=ctx.now.tzinfo).isoformat(),
            "stream": e.get("logStreamName"),
            "message": str(e.get("message", ""))[:300],
        }
        for e in newest
    ]
    hosts = Counter(f"{h.lower()}:{p}" for line in lines for h, p in _HOST_PORT.findall(line))
    mentions = _mentions(lines)
    evidence: dict[str, Any] = {
        "log_group": group,
        **({"json_levels": f"not read ({', '.join(sorted(set(refused)))})"} if refused else {}),
        "error_lines_30min": len(events),
        "mentions": mentions,
        "hosts": dict(hosts.most_common(5)),
        "newest": samples,
    }
    if not events:
        return ctx.finding(Status.OK, "No ERROR lines in the last 30 minutes", "", evidence)
    status = Status.FAIL if len(events) >= 20 else Status.WARN
    about = max(mentions.items(), key=lambda kv: kv[1])
    title = f"{len(events)} ERROR line(s) in the last 30 minutes"
    if about[1] >= len(events) / 2:
        title += (
            f", mostly about the {about[0]}" if about[0] == "database" else f", mostly {about[0]}s"
        )
    return ctx.finding(status, title, samples[0]["message"], evidence, resources=[group, *hosts])


@check("ecs.memory_utilization", title="ECS memory utilisation (max, last hour)")
def memory_utilization(ctx: CheckContext) -> Finding:
    points = ctx.metric("AWS/ECS", "MemoryUtilization", ctx.ecs_metric_dims())
    if not points:
        return ctx.finding(Status.SKIPPED, "No MemoryUtilization datapoints in the last hour")
    peak = max(float(p.get("Maximum", 0)) for p in points)
    evidence = {
        "max_pct_1h": round(peak, 1),
        "latest_avg_pct": round(float(points[-1].get("Average", 0)), 1),
    }
    if peak >= 95:
        fix = increase_memory(ctx)
        return ctx.finding(
            Status.FAIL,
            f"ECS memory peaked at {peak:.0f}%",
            "Tasks at their memory limit are killed (OutOfMemoryError, exit 137).",
            evidence,
            [fix] if fix else [],
            resources=[ctx.names.ecs_service],
        )
    if peak >= 85:
        return ctx.finding(Status.WARN, f"ECS memory high (peak {peak:.0f}%)", "", evidence)
    return ctx.finding(Status.OK, f"ECS memory fine (peak {peak:.0f}%)", "", evidence)


@check("ecs.task_churn", title="Task churn")
def task_churn(ctx: CheckContext) -> Finding:
    since = ctx.now - timedelta(hours=1)
    churned = [
        t
        for t in stopped_tasks_of_service(ctx)
        if classify(t).category not in BENIGN_FOR_CHURN
        and classify(t).failure
        and (_ts(t.get("stoppedAt")) or ctx.now) >= since
    ]
    failed_in_rollout = sum(
        int(d.get("failedTasks", 0)) for d in ctx.ecs_service().get("deployments", [])
    )
    evidence = {
        "failed_stops_last_hour": len(churned),
        "deployment_failed_tasks": failed_in_rollout,
    }
    n = max(len(churned), failed_in_rollout)
    if n >= 3:
        return ctx.finding(
            Status.FAIL,
            f"High task churn: {n} tasks stopped in the last hour",
            "Tasks are repeatedly stopping and starting; see the stopped tasks for why.",
            evidence,
            resources=[ctx.names.ecs_service],
        )
    if n:
        return ctx.finding(Status.WARN, f"{n} task(s) stopped in the last hour", "", evidence)
    return ctx.finding(Status.OK, "No task churn in the last hour", "", evidence)
