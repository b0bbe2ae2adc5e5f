"""Deployment Failures (guide §7): a stale Terraform state lock, a failed ECS rollout."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from ...context import CheckContext
from ...errors import AwsCallError
from ...models import Finding, Status
from ...registry import check

STALE_AFTER = timedelta(minutes=15)


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")[:32].rstrip())
    except ValueError:
        try:  # Terraform writes nanoseconds: 2024-05-01T10:00:00.123456789Z
            head, _, frac = value.rstrip("Z").partition(".")
            return datetime.fromisoformat(f"{head}.{frac[:6] or '0'}+00:00")
        except ValueError:
            return None


@check("deploy.state_lock", title="Terraform state lock")
def state_lock(ctx: CheckContext) -> Finding:
    table = ctx.settings.lock_table
    try:
        items = ctx.aws.paginate(
            "dynamodb", "scan", "Items", TableName=table, PaginationConfig={"MaxItems": 500}
        )
    except AwsCallError as exc:
        if exc.code == "ResourceNotFoundException":
            if ctx.settings.lock_table_explicit:
                return ctx.finding(
                    Status.FAIL,
                    f"Terraform lock table {table} not found",
                    f"Looked in {ctx.where}.",
                    {"table": table},
                )
            return ctx.finding(
                Status.SKIPPED,
                f"No Terraform lock table {table}",
                "Set OMNI_TERRAFORM_LOCK_TABLE if the backend uses another.",
                {"table": table},
            )
        raise
    locks = []
    for item in items:
        info_raw = item.get("Info", {}).get("S")
        if not info_raw:
            continue  # digest items (LockID ending in -md5) carry no Info
        try:
            info: dict[str, Any] = json.loads(info_raw)
        except ValueError:
            info = {}
        created = _parse_time(str(info.get("Created", "")))
        age = (ctx.now - created) if created else None
        locks.append(
            {
                "LockID": item["LockID"]["S"],
                "ID": info.get("ID"),
                "Operation": info.get("Operation"),
                "Who": info.get("Who"),
                "Created": info.get("Created"),
                "Path": info.get("Path"),
                "age_minutes": round(age.total_seconds() / 60) if age else None,
                "_info": info_raw,
            }
        )
    public = [{k: v for k, v in lock.items() if k != "_info"} for lock in locks]
    evidence = {"table": table, "locks": public}
    if not locks:
        return ctx.finding(Status.OK, "No Terraform state lock held", "", evidence)
    stale = [
        lock
        for lock in locks
        if lock["age_minutes"] is None or lock["age_minutes"] >= STALE_AFTER.total_seconds() / 60
    ]
    if stale:
        s = stale[0]
        return ctx.finding(
            Status.FAIL,
            f"Stale Terraform state lock held by {s['Who']} for {s['age_minutes']} min",
            f"{s['Operation']} on {s['Path']} since {s['Created']} (lock ID {s['ID']}). If no terraform process is running: terraform force-unlock {s['ID']}.",
            evidence,
            [
                ctx.propose(
                    "terraform.release_state_lock",
                    TableName=table,
                    LockID=s["LockID"],
                    Info=s["_info"],
                )
            ],
        )
    s = locks[0]
    return ctx.finding(
        Status.WARN,
        f"Terraform is running now ({s['Operation']} by {s['Who']}, {s['age_minutes']} min)",
        "",
        evidence,
    )


def _older_than(value: Any, ctx: CheckContext, age: timedelta) -> bool:
    created = _parse_time(value) if isinstance(value, str) else None
    return created is not None and ctx.now - created > age


@check("deploy.ecs_rollout", title="ECS deployment rollout")
def ecs_rollout(ctx: CheckContext) -> Finding:
    svc = ctx.ecs_service()
    deployments = svc.get("deployments", [])
    rows = [
        {
            "id": d.get("id"),
            "status": d.get("status"),
            "rolloutState": d.get("rolloutState"),
            "reason": d.get("rolloutStateReason"),
            "taskDefinition": str(d.get("taskDefinition", "")).rsplit("/", 1)[-1],
            "failedTasks": d.get("failedTasks", 0),
            "createdAt": d["createdAt"].isoformat()
            if isinstance(d.get("createdAt"), datetime)
            else d.get("createdAt"),
        }
        for d in deployments
    ]
    breaker = (svc.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker", {})
    evidence = {"deployments": rows, "circuit_breaker": breaker}
    failed = [
        r
        for r in rows
        if r["rolloutState"] == "FAILED" or "circuit breaker" in str(r["reason"] or "").lower()
    ]
    if failed:
        f = failed[0]
        return ctx.finding(
            Status.FAIL,
            f"ECS rollout of {f['taskDefinition']} FAILED",
            f"{f['reason'] or ''} ({f['failedTasks']} failed tasks).".strip(),
            evidence,
        )
    slow = [
        r
        for r in rows
        if r["rolloutState"] == "IN_PROGRESS"
        and _older_than(r["createdAt"], ctx, timedelta(minutes=30))
    ]
    if slow:
        return ctx.finding(
            Status.WARN,
            f"ECS rollout of {slow[0]['taskDefinition']} in progress for over 30 minutes",
            "",
            evidence,
        )
    return ctx.finding(Status.OK, "ECS rollout completed", "", evidence)
