"""ECS Service Issues (guide §1): tasks failing to start, tasks restarting frequently."""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from ...context import CheckContext
from ...errors import AwsCallError, ResourceNotFound
from ...fargate import next_size
from ...models import Finding, Remediation, Status
from ...registry import check
from ._iam import allows, role_documents

_BAD_EVENT = {
    "unable to place": re.compile(r"unable to place a task", re.I),
    "failed to launch": re.compile(r"failed to launch|unable to consistently start tasks", re.I),
    "unhealthy": re.compile(r"unhealthy|failed (elb|container) health checks", re.I),
    "image pull": re.compile(r"CannotPullContainerError", re.I),
}
_ECR_ACTIONS = ("ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")


def _ts(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


def _iso(value: Any) -> str | None:
    ts = _ts(value)
    return ts.isoformat() if ts else (str(value) if value else None)


def _service_ref(ctx: CheckContext) -> dict[str, str]:
    return {"cluster": ctx.names.ecs_cluster, "service": ctx.names.ecs_service}


@check("ecs.service_running", title="ECS tasks running vs desired")
def service_running(ctx: CheckContext) -> Finding:
    try:
        svc = ctx.ecs_service()
    except ResourceNotFound as exc:
        return ctx.finding(
            Status.FAIL,
            f"ECS service {exc.name} not found",
            f"Looked for service {exc.name} in {exc.where}. If it has another name, set OMNI_ECS_CLUSTER / OMNI_ECS_SERVICE.",
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
    if desired == 0:
        return ctx.finding(
            Status.WARN,
            "ECS service is scaled to zero",
            f"{ctx.names.ecs_service} has desiredCount 0: nothing serves traffic.",
            evidence,
            [
                ctx.propose(
                    "ecs.scale_service",
                    **_service_ref(ctx),
                    desiredCount=max(1, len(ctx.private_app_subnet_ids()) or 1),
                )
            ],
        )
    if running >= desired:
        return ctx.finding(
            Status.OK, f"ECS service running {running}/{desired} tasks", "", evidence
        )
    return ctx.finding(
        Status.FAIL,
        f"ECS service running {running}/{desired} tasks",
        f"{desired - running} task(s) missing ({pending} pending). See the stopped tasks and the service events for why.",
        evidence,
        [ctx.propose("ecs.force_new_deployment", **_service_ref(ctx))],
    )


@check("ecs.service_events", title="ECS service events")
def service_events(ctx: CheckContext) -> Finding:
    svc = ctx.ecs_service()
    since = ctx.now - timedelta(minutes=30)
    recent = [
        e for e in svc.get("events", [])[:50] if (_ts(e.get("createdAt")) or ctx.now) >= since
    ]
    bad: list[dict[str, Any]] = []
    for event in recent:
        kinds = [k for k, rx in _BAD_EVENT.items() if rx.search(event.get("message", ""))]
        if kinds:
            bad.append(
                {
                    "at": _iso(event.get("createdAt")),
                    "kind": kinds[0],
                    "message": event.get("message", "")[:400],
                }
            )
    evidence = {"events_last_30_min": len(recent), "problems": bad[:8]}
    if not bad:
        latest = svc.get("events", [{}])[0].get("message") if svc.get("events") else None
        return ctx.finding(
            Status.OK,
            "No failure in the service events of the last 30 minutes",
            "",
            {**evidence, "latest": latest},
        )
    counts = Counter(b["kind"] for b in bad)
    summary = ", ".join(f"{k} ×{n}" for k, n in counts.most_common())
    return ctx.finding(
        Status.FAIL, f"ECS service events report problems: {summary}", bad[0]["message"], evidence
    )


def classify_stop(task: dict[str, Any]) -> tuple[str, str]:
    """(category, one-line reason) for a stopped task, following the guide's common causes."""
    reason = str(task.get("stoppedReason") or "")
    code = str(task.get("stopCode") or "")
    containers = task.get("containers") or []
    texts = " ".join([reason] + [str(c.get("reason") or "") for c in containers])
    exit_codes = [c.get("exitCode") for c in containers if c.get("exitCode") is not None]
    if re.search(
        r"scaling activity|deployment .* (completed|replaced)|service .* deregistered|stopped by user|Task stopped by user",
        reason,
        re.I,
    ) and not any(exit_codes):
        return "scaling", reason or code
    if 137 in exit_codes or re.search(r"OutOfMemory|OOM", texts, re.I):
        return (
            "out_of_memory",
            f"out of memory (exit {137 if 137 in exit_codes else exit_codes[0] if exit_codes else '?'})",
        )
    if re.search(r"CannotPullContainer|pull image|manifest .* not found|ECR", texts, re.I):
        return "image_pull", texts.strip()[:200]
    if re.search(
        r"ENI|insufficient free addresses|free IP|Unable to assign|ResourceInitializationError.*(network|subnet)",
        texts,
        re.I,
    ):
        return "eni_ip_exhaustion", texts.strip()[:200]
    if re.search(r"health check", texts, re.I):
        return "health_check", texts.strip()[:200]
    if code == "TaskFailedToStart":
        return "failed_to_start", texts.strip()[:200]
    nonzero = [c for c in exit_codes if c not in (0, None)]
    if nonzero or re.search(r"Essential container in task exited", reason, re.I):
        return (
            "app_crash",
            f"application exited with code {nonzero[0] if nonzero else exit_codes[0] if exit_codes else '?'}",
        )
    return "other", (reason or code or "unknown")[:200]


def _stopped_tasks(ctx: CheckContext) -> list[dict[str, Any]]:
    arns = ctx.aws.call(
        "ecs",
        "list_tasks",
        cluster=ctx.names.ecs_cluster,
        serviceName=ctx.names.ecs_service,
        desiredStatus="STOPPED",
    ).get("taskArns", [])[:100]
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), 100):
        tasks += ctx.aws.call(
            "ecs", "describe_tasks", cluster=ctx.names.ecs_cluster, tasks=arns[start : start + 100]
        ).get("tasks", [])
    group = f"service:{ctx.names.ecs_service}"
    return [t for t in tasks if t.get("group", group) == group]


def _increase_memory(ctx: CheckContext) -> Remediation | None:
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
        **_service_ref(ctx),
        taskDefinition=f"{td['family']}:{td['revision']}",
        cpu=str(bigger[0]),
        memory=str(bigger[1]),
    )


@check("ecs.stopped_tasks", title="Stopped tasks")
def stopped_tasks(ctx: CheckContext) -> Finding:
    tasks = _stopped_tasks(ctx)
    rows = []
    for task in sorted(tasks, key=lambda t: _ts(t.get("stoppedAt")) or ctx.now, reverse=True):
        category, why = classify_stop(task)
        container = (task.get("containers") or [{}])[0]
        rows.append(
            {
                "task": str(task.get("taskArn", "")).rsplit("/", 1)[-1],
                "category": category,
                "why": why,
                "stopCode": task.get("stopCode"),
                "stoppedReason": (task.get("stoppedReason") or "")[:300],
                "exitCode": container.get("exitCode"),
                "containerReason": (container.get("reason") or "")[:300],
                "stoppedAt": _iso(task.get("stoppedAt")),
            }
        )
    problems = [r for r in rows if r["category"] != "scaling"]
    evidence: dict[str, Any] = {
        "stopped_tasks": len(rows),
        "by_cause": dict(Counter(r["category"] for r in problems)),
        "newest": problems[:5],
    }
    if not problems:
        return ctx.finding(Status.OK, "No task stopped because of a failure", "", evidence)
    top, n = Counter(r["category"] for r in problems).most_common(1)[0]
    labels = {
        "out_of_memory": "out of memory (OOM, exit 137)",
        "image_pull": "the image could not be pulled",
        "eni_ip_exhaustion": "no free IP / ENI in the subnets",
        "health_check": "failed container health checks",
        "app_crash": "the application crashed",
        "failed_to_start": "failed to start",
        "other": "other reasons",
    }
    remediations = []
    if top == "out_of_memory":
        fix = _increase_memory(ctx)
        remediations = [fix] if fix else []
    first = next(r for r in problems if r["category"] == top)
    return ctx.finding(
        Status.FAIL,
        f"{n} task(s) stopped: {labels[top]}",
        f"Newest: {first['why']}"
        + (
            f" — {first['containerReason']}"
            if first["containerReason"] and first["containerReason"] not in first["why"]
            else ""
        ),
        evidence,
        remediations,
    )


@check("ecs.container_errors", title="ERROR lines in the service's logs")
def container_errors(ctx: CheckContext) -> Finding:
    group = ctx.names.log_group
    start = int((ctx.now - timedelta(minutes=30)).timestamp() * 1000)
    try:
        events = ctx.aws.paginate(
            "logs",
            "filter_log_events",
            "events",
            logGroupName=group,
            startTime=start,
            filterPattern="ERROR",
            PaginationConfig={"MaxItems": 1000},
        )
    except AwsCallError as exc:
        if exc.code == "ResourceNotFoundException":
            return ctx.finding(
                Status.FAIL,
                f"Log group {group} not found",
                f"Looked in {ctx.where}; the tasks' logs go nowhere Omni can read.",
                {"log_group": group},
            )
        raise
    events = [e for e in events if "ERROR" in str(e.get("message", ""))]
    newest = sorted(events, key=lambda e: e.get("timestamp", 0), reverse=True)[:5]
    samples = [
        {
            "at": datetime.fromtimestamp(e["timestamp"] / 1000, tz=ctx.now.tzinfo).isoformat(),
            "stream": e.get("logStreamName"),
            "message": str(e.get("message", ""))[:300],
        }
        for e in newest
    ]
    evidence = {"log_group": group, "error_lines_30min": len(events), "newest": samples}
    if not events:
        return ctx.finding(Status.OK, "No ERROR lines in the last 30 minutes", "", evidence)
    status = Status.FAIL if len(events) >= 20 else Status.WARN
    return ctx.finding(
        status,
        f"{len(events)} ERROR line(s) in the last 30 minutes",
        samples[0]["message"],
        evidence,
    )


def _images(ctx: CheckContext) -> list[str]:
    return [str(c.get("image", "")) for c in ctx.task_definition().get("containerDefinitions", [])]


@check("ecs.image_repository", title="ECR repository and image")
def image_repository(ctx: CheckContext) -> Finding:
    images = _images(ctx)
    ecr = [i for i in images if ".dkr.ecr." in i]
    if not ecr:
        return ctx.finding(
            Status.SKIPPED, "The task's images are not in ECR", "", {"images": images}
        )

    def look(image: str) -> dict[str, Any]:
        repo_part = image.split("/", 1)[1]
        repo, _, tag = repo_part.partition("@")[0].partition(":")
        digest = repo_part.partition("@")[2]
        image_id = {"imageDigest": digest} if digest else {"imageTag": tag or "latest"}
        try:  # one call answers both questions: is the repository there, and the image in it?
            found = ctx.aws.call("ecr", "describe_images", repositoryName=repo, imageIds=[image_id])
        except AwsCallError as exc:
            if exc.code == "RepositoryNotFoundException":
                return {"image": image, "problem": f"repository {repo} not found"}
            if exc.code == "ImageNotFoundException":
                return {"image": image, "problem": f"{next(iter(image_id.values()))} not in {repo}"}
            raise
        detail = (found.get("imageDetails") or [{}])[0]
        pushed = detail.get("imagePushedAt")
        return {
            "image": image,
            "repository": repo,
            "digest": detail.get("imageDigest"),
            "pushed_at": _iso(pushed),
        }

    results = ctx.gather(*[(lambda i=i: look(i)) for i in ecr])
    problems = [r for r in results if "problem" in r]
    evidence = {"ok": [r for r in results if "problem" not in r], "problems": problems}
    if problems:
        return ctx.finding(
            Status.FAIL,
            f"Image not pullable: {problems[0]['problem']}",
            "Tasks fail with CannotPullContainerError until the image exists.",
            evidence,
        )
    return ctx.finding(Status.OK, "ECR repository and image exist", "", evidence)


@check("ecs.execution_role_ecr", title="Task execution role can pull from ECR")
def execution_role_ecr(ctx: CheckContext) -> Finding:
    conventional = ctx.names.task_execution_role

    def speculative() -> dict[str, dict[str, Any]] | None:
        """The conventional role's policies, read while the task definition is being found:
        it is the role in use nearly always, and this takes two calls off the critical path."""
        try:
            return role_documents(ctx, conventional)
        except AwsCallError:
            return None

    # its own thread, not the shared pool: the guess itself fans out on the shared pool
    guesser = ThreadPoolExecutor(max_workers=1, thread_name_prefix="omni-guess")
    try:
        guess = guesser.submit(speculative)
        arn = ctx.task_definition().get("executionRoleArn")
        role = str(arn).rsplit("/", 1)[-1] if arn else conventional
        if not arn and not any(".dkr.ecr." in i for i in _images(ctx)):
            return ctx.finding(Status.SKIPPED, "No execution role and no ECR image", "")
        guessed = guess.result() if role == conventional else None
    finally:
        guesser.shutdown(wait=False)
    try:
        docs = guessed if guessed is not None else role_documents(ctx, role)
    except AwsCallError as exc:
        if exc.code == "NoSuchEntity":
            return ctx.finding(
                Status.FAIL,
                f"Task execution role {role} does not exist",
                "Fargate cannot pull the image or write logs.",
                {"role": role},
            )
        raise
    missing = [a for a in _ECR_ACTIONS if not any(allows(d, a) for d in docs.values())]
    evidence = {"role": role, "policies": sorted(docs), "missing_actions": missing}
    if missing:
        return ctx.finding(
            Status.FAIL,
            f"Execution role {role} cannot pull from ECR",
            f"Missing: {', '.join(missing)} (guide: ECSTaskExecutionPolicy).",
            evidence,
        )
    return ctx.finding(Status.OK, f"Execution role {role} can pull from ECR", "", evidence)


@check("ecs.subnet_ips", title="Free IPs in the private app subnets")
def subnet_ips(ctx: CheckContext) -> Finding:
    subnet_ids = ctx.private_app_subnet_ids()
    if not subnet_ids:
        return ctx.finding(
            Status.SKIPPED,
            "Private app subnets unknown",
            "Set the Terraform output private_app_subnet_ids.",
        )
    subnets = ctx.aws.call("ec2", "describe_subnets", SubnetIds=subnet_ids).get("Subnets", [])
    free = {s["SubnetId"]: max(0, int(s.get("AvailableIpAddressCount", 0))) for s in subnets}
    desired = 1
    with contextlib.suppress(ResourceNotFound):
        desired = max(1, int(ctx.ecs_service().get("desiredCount", 1)))
    evidence = {"available_ips": free, "desired_tasks": desired}
    total = sum(free.values())
    empty = [s for s, n in free.items() if n == 0]
    if total < desired or (empty and len(empty) == len(free)):
        return ctx.finding(
            Status.FAIL,
            "Private app subnets are out of IP addresses",
            f"{total} free IPs for {desired} tasks (each Fargate task needs one). Expand the CIDR or add subnets.",
            evidence,
        )
    if empty or min(free.values()) < 2 * desired:
        return ctx.finding(
            Status.WARN,
            f"Few free IPs in the private app subnets ({total} free)",
            f"Subnets with no free IP: {', '.join(empty) or 'none'}.",
            evidence,
        )
    return ctx.finding(Status.OK, f"{total} free IPs in the private app subnets", "", evidence)


@check("ecs.health_check", title="Container health check settings")
def health_check(ctx: CheckContext) -> Finding:
    containers = ctx.task_definition().get("containerDefinitions", [])
    configs = {c["name"]: c.get("healthCheck") for c in containers if c.get("essential", True)}
    configured = {n: hc for n, hc in configs.items() if hc}
    if not configured:
        return ctx.finding(
            Status.OK,
            "No container health check (the target group's health check decides)",
            "",
            {"containers": sorted(configs)},
        )
    issues = []
    for name, hc in configured.items():
        interval, timeout = hc.get("interval", 30), hc.get("timeout", 5)
        retries, start = hc.get("retries", 3), hc.get("startPeriod", 0)
        if timeout >= interval:
            issues.append(f"{name}: timeout {timeout}s ≥ interval {interval}s")
        if retries < 2:
            issues.append(f"{name}: retries {retries} (one slow answer kills the task)")
        if not start:
            issues.append(f"{name}: no startPeriod (tasks are judged while still booting)")
    evidence = {"health_checks": configured, "issues": issues}
    if issues:
        return ctx.finding(
            Status.WARN,
            "Container health check is strict",
            "; ".join(issues) + ". Guide: adjust timeout, retries, startPeriod.",
            evidence,
        )
    return ctx.finding(Status.OK, "Container health check settings are reasonable", "", evidence)


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
        fix = _increase_memory(ctx)
        return ctx.finding(
            Status.FAIL,
            f"ECS memory peaked at {peak:.0f}%",
            "Tasks at their memory limit are killed (exit 137).",
            evidence,
            [fix] if fix else [],
        )
    if peak >= 85:
        return ctx.finding(Status.WARN, f"ECS memory high (peak {peak:.0f}%)", "", evidence)
    return ctx.finding(Status.OK, f"ECS memory fine (peak {peak:.0f}%)", "", evidence)


@check("ecs.task_churn", title="Task churn")
def task_churn(ctx: CheckContext) -> Finding:
    tasks = _stopped_tasks(ctx)
    since = ctx.now - timedelta(hours=1)
    churned = [
        t
        for t in tasks
        if classify_stop(t)[0] != "scaling" and (_ts(t.get("stoppedAt")) or ctx.now) >= since
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
        )
    if n:
        return ctx.finding(Status.WARN, f"{n} task(s) stopped in the last hour", "", evidence)
    return ctx.finding(Status.OK, "No task churn in the last hour", "", evidence)
