"""Deployment Failures (guide §7): a stale Terraform state lock, a failing ECS rollout.

Terraform state locks, as the S3 backend writes them (notes/aws-real-shapes.md): one DynamoDB
table can hold the locks of many states (``LockID`` is ``<bucket>/<key>``, ``<bucket>/<key>-md5``
for the digest), so only this environment's state is judged (``OMNI_TERRAFORM_STATE``, or the
outputs' ``s3://`` state); Terraform ≥ 1.10 may lock with an S3 object instead
(``<key>.tflock``); a long apply (an Aurora or NAT change) holds a live lock for tens of minutes,
so a lock is stale only after ``OMNI_TERRAFORM_LOCK_STALE_MIN`` (default 120).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from ...context import CheckContext
from ...errors import AwsCallError
from ...models import Finding, Status
from ...registry import check


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")[:32].rstrip())
    except ValueError:
        try:  # Terraform writes nanoseconds: 2024-05-01T10:00:00.123456789Z
            head, _, frac = value.rstrip("Z").partition(".")
            return datetime.fromisoformat(f"{head}.{frac[:6] or '0'}+00:00")
        except ValueError:
            return None


def state_ref(ctx: CheckContext) -> tuple[str, str] | None:
    """(bucket, key) of this environment's Terraform state, when known."""
    location = ctx.settings.state_location
    if not location:
        return None
    parsed = urlparse(location)
    return (parsed.netloc, parsed.path.lstrip("/")) if parsed.netloc else None


def _ours(lock_id: str, info: dict[str, Any], ctx: CheckContext) -> bool:
    """Is this lock item this environment's?  Exactly its state when the state is known; else
    a state path with the environment's name as one of its segments."""
    ref = state_ref(ctx)
    if ref is not None:
        return lock_id == f"{ref[0]}/{ref[1]}"
    path = str(info.get("Path") or lock_id)
    return ctx.names.environment in path.replace(":", "/").split("/")


def _lock_row(lock_id: str, info_raw: str, ctx: CheckContext) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads(info_raw)
    except ValueError:
        info = {}
    created = _parse_time(str(info.get("Created", "")))
    age = (ctx.now - created) if created else None
    return {
        "LockID": lock_id,
        "ID": info.get("ID"),
        "Operation": info.get("Operation"),
        "Who": info.get("Who"),
        "Created": info.get("Created"),
        "Path": info.get("Path"),
        "age_minutes": round(age.total_seconds() / 60) if age else None,
        "ours": _ours(lock_id, info, ctx),
        "_info": info_raw,
    }


def _dynamodb_locks(ctx: CheckContext) -> list[dict[str, Any]] | Finding:
    table = ctx.settings.lock_table
    try:
        items = ctx.aws.paginate(
            "dynamodb", "scan", "Items", TableName=table, PaginationConfig={"MaxItems": 1000}
        )
    except AwsCallError as exc:
        if exc.code != "ResourceNotFoundException":
            raise
        if ctx.settings.lock_table_explicit:
            return ctx.finding(
                Status.FAIL,
                f"Terraform lock table {table} not found",
                f"Looked in {ctx.where}.",
                {"table": table},
            )
        return []
    rows = []
    for item in items:
        info_raw = item.get("Info", {}).get("S")
        if info_raw:  # digest items (LockID ending in -md5) carry no Info
            rows.append({**_lock_row(item["LockID"]["S"], info_raw, ctx), "kind": "dynamodb"})
    return rows


def _s3_lockfile(ctx: CheckContext) -> list[dict[str, Any]]:
    """Terraform ≥ 1.10's lock: ``<key>.tflock`` beside the state (its body is the lock info)."""
    ref = state_ref(ctx)
    if ref is None:
        return []
    bucket, key = ref
    try:
        body = ctx.aws.call("s3", "get_object", Bucket=bucket, Key=f"{key}.tflock")["Body"].read()
    except AwsCallError as exc:
        if exc.code in ("NoSuchKey", "404", "NoSuchBucket", "403", "AccessDenied"):
            return []
        raise
    return [{**_lock_row(f"{bucket}/{key}", body.decode(errors="replace"), ctx), "kind": "s3"}]


@check("deploy.state_lock", title="Terraform state lock")
def state_lock(ctx: CheckContext) -> Finding:
    table = ctx.settings.lock_table
    found = _dynamodb_locks(ctx)
    if isinstance(found, Finding):
        return found
    locks = found + _s3_lockfile(ctx)
    ours = [lock for lock in locks if lock["ours"]]
    stale_after = ctx.settings.terraform_lock_stale_min
    public = [{k: v for k, v in lock.items() if k != "_info"} for lock in ours]
    ref = state_ref(ctx)
    evidence: dict[str, Any] = {
        "table": table,
        "state": f"s3://{ref[0]}/{ref[1]}" if ref else None,
        "locks": public,
        "other_states_locked": len(locks) - len(ours),
        "stale_after_min": stale_after,
    }
    if not ours:
        note = (
            f" ({len(locks) - len(ours)} lock(s) of other states in the table: not this "
            "environment's)"
            if len(locks) > len(ours)
            else ""
        )
        return ctx.finding(Status.OK, f"No Terraform state lock held{note}", "", evidence)
    stale = [
        lock for lock in ours if lock["age_minutes"] is None or lock["age_minutes"] >= stale_after
    ]
    if not stale:
        s = ours[0]
        return ctx.finding(
            Status.WARN,
            f"Terraform is running now ({s['Operation']} by {s['Who']}, {s['age_minutes']} min)",
            f"A lock younger than {stale_after} min is most likely a live apply (an Aurora or NAT "
            "change takes tens of minutes): wait for it.",
            evidence,
        )
    s = stale[0]
    detail = (
        f"{s['Operation']} on {s['Path']} since {s['Created']} (lock ID {s['ID']}). If no "
        f"terraform process is running: terraform force-unlock {s['ID']}."
    )
    remediations = []
    if s["kind"] == "dynamodb":
        remediations.append(
            ctx.propose(
                "terraform.release_state_lock", TableName=table, LockID=s["LockID"], Info=s["_info"]
            )
        )
    else:
        detail += f" It is an S3 lockfile ({s['LockID']}.tflock): force-unlock removes it."
    return ctx.finding(
        Status.FAIL,
        f"Stale Terraform state lock held by {s['Who']} for {s['age_minutes']} min",
        detail,
        evidence,
        remediations,
        resources=[s["LockID"]],
    )


def _revision(arn: Any) -> str:
    return str(arn or "").rsplit("/", 1)[-1]


def _created(d: dict[str, Any]) -> Any:
    at = d.get("createdAt")
    return at.isoformat() if isinstance(at, datetime) else at


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
            "taskDefinition": _revision(d.get("taskDefinition")),
            "running": d.get("runningCount"),
            "failedTasks": d.get("failedTasks", 0),
            "createdAt": _created(d),
        }
        for d in deployments
    ]
    breaker = (svc.get("deploymentConfiguration") or {}).get("deploymentCircuitBreaker", {})
    evidence: dict[str, Any] = {"deployments": rows, "circuit_breaker": breaker}
    primary = next((r for r in rows if r["status"] == "PRIMARY"), rows[0] if rows else None)
    previous = next(
        (
            r
            for r in rows
            if r["status"] == "ACTIVE"
            and r["taskDefinition"] != (primary or {}).get("taskDefinition")
        ),
        None,
    )
    resources = [ctx.names.ecs_service]
    failed = [
        r
        for r in rows
        if r["rolloutState"] == "FAILED" or "circuit breaker" in str(r["reason"] or "").lower()
    ]
    if primary and failed and failed[0] is not primary:
        f = failed[0]
        return ctx.finding(
            Status.WARN,
            f"The rollout of {f['taskDefinition']} failed; ECS rolled back to {primary['taskDefinition']}",
            f"{f['reason'] or ''} The service runs {primary['taskDefinition']} again.".strip(),
            evidence,
        )
    failing = primary is not None and (
        primary["rolloutState"] == "FAILED"
        or (primary["rolloutState"] == "IN_PROGRESS" and int(primary["failedTasks"] or 0) > 0)
    )
    if failing and primary is not None:
        evidence["rolling_out"] = primary["taskDefinition"]
        evidence["previous"] = previous["taskDefinition"] if previous else None
        fixes = []
        if previous:
            fixes.append(
                ctx.propose(
                    "ecs.rollback_service",
                    cluster=ctx.names.ecs_cluster,
                    service=ctx.names.ecs_service,
                    taskDefinition=previous["taskDefinition"],
                    fromTaskDefinition=primary["taskDefinition"],
                )
            )
        state = "FAILED" if primary["rolloutState"] == "FAILED" else "failing"
        return ctx.finding(
            Status.FAIL,
            f"ECS rollout of {primary['taskDefinition']} {state}: "
            f"{primary['failedTasks']} task(s) of the new revision failed",
            f"{primary['reason'] or 'Tasks of the new revision stop as they start.'}"
            + (
                f" The previous revision, {previous['taskDefinition']}, still runs."
                if previous
                else ""
            ),
            evidence,
            fixes,
            resources=[*resources, primary["taskDefinition"]],
        )
    slow = [
        r
        for r in rows
        if r["rolloutState"] == "IN_PROGRESS"
        and (at := _parse_time(str(r["createdAt"] or ""))) is not None
        and ctx.now - at > timedelta(minutes=30)
    ]
    if slow:
        return ctx.finding(
            Status.WARN,
            f"ECS rollout of {slow[0]['taskDefinition']} in progress for over 30 minutes",
            "",
            evidence,
        )
    if primary and primary["rolloutState"] == "IN_PROGRESS":
        return ctx.finding(
            Status.OK, f"ECS rollout of {primary['taskDefinition']} in progress", "", evidence
        )
    return ctx.finding(Status.OK, "ECS rollout completed", "", evidence)
