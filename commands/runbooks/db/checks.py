"""Database Connectivity and Database Performance (guide §3): the ``db`` runbook.

Judged as a real account answers (notes/aws-real-shapes.md): a cluster can be ``available``
while its writer has failed; capacity and CPU are judged on the writer (the cluster figure is
the average of its instances, which an idle reader halves); the connection limit is
``SHOW max_connections`` where a diagnostics connection is configured, else the engine's
default formula for the maximum capacity, said to be an estimate.
"""

from __future__ import annotations

from typing import Any

from ...context import CheckContext
from ...errors import ResourceNotFound
from ...ingress import admission, subnet_cidrs
from ...models import Finding, Status
from ...registry import check
from . import _sql, estimated_max_connections

_AVAILABLE = "available"
_TRANSIENT = {
    "starting",
    "modifying",
    "backing-up",
    "upgrading",
    "renaming",
    "maintenance",
    "resetting-master-credentials",
    "backtracking",
    "creating",
    "migrating",
    "rebooting",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "storage-optimization",
}


@check("db.cluster_status", title="Aurora cluster and instance status")
def cluster_status(ctx: CheckContext) -> Finding:
    try:
        cluster = ctx.aurora_cluster()
    except ResourceNotFound as exc:
        return ctx.finding(
            Status.FAIL,
            f"Aurora cluster {exc.name} not found",
            f"Looked for DBClusterIdentifier={exc.name} in {exc.where}. If the cluster has "
            "another name, set OMNI_AURORA_CLUSTER.",
            {"looked_for": exc.name, "where": exc.where},
        )
    name = ctx.names.aurora_cluster
    status = str(cluster.get("Status", "unknown"))
    writers = {
        m["DBInstanceIdentifier"]
        for m in cluster.get("DBClusterMembers", [])
        if m.get("IsClusterWriter")
    }
    instances = ctx.aurora_instances() if status == _AVAILABLE else []
    rows = [
        {
            "instance": i["DBInstanceIdentifier"],
            "status": i.get("DBInstanceStatus"),
            "writer": i["DBInstanceIdentifier"] in writers,
        }
        for i in instances
    ]
    endpoints = [e for e in (cluster.get("Endpoint"), cluster.get("ReaderEndpoint")) if e]
    evidence = {
        "DBClusterIdentifier": cluster.get("DBClusterIdentifier"),
        "Status": status,
        "Endpoint": cluster.get("Endpoint"),
        "endpoints": endpoints,
        "Engine": f"{cluster.get('Engine')} {cluster.get('EngineVersion', '')}".strip(),
        "instances": rows,
    }
    resources = [name, *endpoints, *(r["instance"] for r in rows)]
    if status in {"stopped", "stopping"}:
        return ctx.finding(
            Status.FAIL,
            f"Aurora cluster is {status}",
            f"{name} is {status}: every connection from the app fails until it is started "
            "(starting takes a few minutes).",
            evidence,
            [ctx.propose("rds.start_cluster", DBClusterIdentifier=name)],
            resources=resources,
        )
    if status in _TRANSIENT:
        return ctx.finding(
            Status.WARN,
            f"Aurora cluster is {status}",
            f"{name} is {status}; connections may fail until it is available.",
            evidence,
            resources=resources,
        )
    if status != _AVAILABLE:
        return ctx.finding(
            Status.FAIL,
            f"Aurora cluster is {status}",
            f"{name} reports status {status}.",
            evidence,
            resources=resources,
        )
    if not rows:
        return ctx.finding(
            Status.FAIL,
            "Aurora cluster has no instance",
            f"{name} is available but has no DB instance: nothing serves connections.",
            evidence,
            resources=resources,
        )
    broken = [r for r in rows if r["status"] not in (_AVAILABLE, *_TRANSIENT)]
    writer_broken = [r for r in broken if r["writer"]] or (broken if not writers else [])
    if writer_broken:
        r = writer_broken[0]
        return ctx.finding(
            Status.FAIL,
            f"Aurora writer {r['instance']} is {r['status']}",
            f"The cluster reports available, but its writer instance is {r['status']}: writes "
            "and connections to the cluster endpoint fail.",
            evidence,
            resources=resources,
        )
    busy = [r for r in rows if r["status"] != _AVAILABLE]
    if busy:
        r = busy[0]
        return ctx.finding(
            Status.WARN,
            f"Aurora instance {r['instance']} is {r['status']}",
            "The writer serves; this instance does not.",
            evidence,
            resources=resources,
        )
    return ctx.finding(
        Status.OK, f"Aurora cluster and its {len(rows)} instance(s) are available", "", evidence
    )


def port_of(ctx: CheckContext) -> int:
    try:
        return int(ctx.aurora_cluster().get("Port") or 5432)
    except ResourceNotFound:
        return 5432


@check("db.sg_ingress_from_ecs", title="Aurora ingress from ECS")
def sg_ingress_from_ecs(ctx: CheckContext) -> Finding:
    aurora_sgs, ecs_sgs, port = ctx.gather(
        ctx.aurora_security_group_ids, ctx.ecs_security_group_ids, lambda: port_of(ctx)
    )
    if not aurora_sgs or not ecs_sgs:
        missing = "aurora_security_group_id" if not aurora_sgs else "ecs_security_group_id"
        return ctx.finding(
            Status.SKIPPED,
            "Aurora ingress from ECS: security groups unknown",
            f"Could not tell the {missing.split('_security')[0]} security group: set the "
            f"Terraform output {missing} (OMNI_TERRAFORM_OUTPUTS).",
            {"aurora_security_groups": aurora_sgs, "ecs_security_groups": ecs_sgs},
        )
    groups, cidrs = ctx.gather(
        lambda: ctx.aws.call("ec2", "describe_security_groups", GroupIds=aurora_sgs).get(
            "SecurityGroups", []
        ),
        lambda: subnet_cidrs(ctx, ctx.private_app_subnet_ids()),
    )
    found = admission(ctx, groups, port, source_groups=set(ecs_sgs), source_cidrs=cidrs)
    evidence: dict[str, Any] = {
        "aurora_security_groups": aurora_sgs,
        "ecs_security_groups": ecs_sgs,
        "ecs_subnet_cidrs": cidrs,
        "port": port,
        "rules": found.rules,
    }
    if found.admitted:
        return ctx.finding(Status.OK, f"Aurora accepts {port} from the ECS tasks", "", evidence)
    if found.rules and found.uncovered:
        evidence["uncovered"] = found.uncovered
        return ctx.finding(
            Status.FAIL,
            f"Aurora admits {port} from only part of the ECS subnets",
            f"No rule on {', '.join(aurora_sgs)} covers {', '.join(found.uncovered)}: tasks placed "
            "there cannot reach the database. Widen the CIDR rule or admit the ECS security group.",
            evidence,
            resources=aurora_sgs,
        )
    return ctx.finding(
        Status.FAIL,
        f"Aurora security group has no ingress on {port} from ECS",
        f"No ingress rule on {', '.join(aurora_sgs)} admits TCP {port} from "
        f"{', '.join(ecs_sgs)} or the tasks' subnets: the tasks' connections time out. "
        "Terraform: aws_security_group_rule.aurora_from_ecs.",
        evidence,
        [
            ctx.propose(
                "ec2.allow_ecs_to_aurora",
                GroupId=aurora_sgs[0],
                SourceSecurityGroupId=ecs_sgs[0],
                Port=port,
            )
        ],
        resources=aurora_sgs,
    )


@check("db.endpoint_config", title="App DB URL endpoint")
def endpoint_config(ctx: CheckContext) -> Finding:
    secret_id = ctx.settings.db_url_secret_id
    cluster, secret = ctx.gather(ctx.aurora_cluster, lambda: ctx.secret_string(secret_id))
    host = _sql.secret_host(secret)
    del secret  # the value never leaves this function
    writer = str(cluster.get("Endpoint", "")).lower()
    reader = str(cluster.get("ReaderEndpoint", "")).lower()
    expected = str(ctx.output("aurora_cluster_endpoint") or writer).lower().split(":")[0]
    evidence = {
        "secret_id": secret_id,
        "secret_host": host,
        "writer_endpoint": writer,
        "reader_endpoint": reader,
    }
    if host is None:
        return ctx.finding(
            Status.FAIL,
            "App DB URL secret has no host",
            f"Secret {secret_id} holds no URL or host Omni can read (the value is not shown).",
            {"secret_id": secret_id},
        )
    if host in {writer, expected}:
        return ctx.finding(
            Status.OK, "App DB URL points at the cluster writer endpoint", "", evidence
        )
    if host == reader:
        return ctx.finding(
            Status.FAIL,
            "App DB URL points at the reader endpoint",
            f"{secret_id} points at the reader endpoint {reader}: writes fail. Point it at the "
            f"cluster (writer) endpoint {writer}.",
            evidence,
        )
    return ctx.finding(
        Status.FAIL,
        "App DB URL points at an unexpected host",
        f"{secret_id} points at {host}, not the cluster writer endpoint {writer}.",
        evidence,
    )


def _serverless(cluster: dict[str, Any]) -> dict[str, float] | None:
    config = cluster.get("ServerlessV2ScalingConfiguration")
    if not config or config.get("MaxCapacity") is None:
        return None
    return {"min": float(config.get("MinCapacity", 0.5)), "max": float(config["MaxCapacity"])}


def _raise_capacity(ctx: CheckContext, scaling: dict[str, float]) -> Any:
    return ctx.propose(
        "rds.raise_max_capacity",
        DBClusterIdentifier=ctx.names.aurora_cluster,
        MinCapacity=scaling["min"],
        MaxCapacity=min(scaling["max"] * 2, 256.0),
    )


def writer_metric(
    ctx: CheckContext, metric: str, statistics: tuple[str, ...] = ("Average", "Maximum")
) -> tuple[list[dict[str, Any]], str]:
    """A metric of the writer instance (what the cluster figure averages away), else the
    cluster's; and which one it is."""
    writer = ctx.writer_instance()
    if writer:
        points = ctx.metric("AWS/RDS", metric, {"DBInstanceIdentifier": writer}, statistics)
        if points:
            return points, f"writer {writer}"
    points = ctx.metric(
        "AWS/RDS", metric, {"DBClusterIdentifier": ctx.names.aurora_cluster}, statistics
    )
    return points, "cluster (average of its instances)"


@check("db.serverless_capacity", title="Aurora Serverless v2 capacity", also_in=("perf",))
def serverless_capacity(ctx: CheckContext) -> Finding:
    cluster = ctx.aurora_cluster()
    scaling = _serverless(cluster)
    if scaling is None:
        return ctx.finding(
            Status.SKIPPED, "Not an Aurora Serverless v2 cluster", "No scaling configuration."
        )
    (points, source), (util, _) = ctx.gather(
        lambda: writer_metric(ctx, "ServerlessDatabaseCapacity"),
        lambda: writer_metric(ctx, "ACUUtilization"),
    )
    if not points:
        status = Status.WARN if cluster.get("Status") == _AVAILABLE else Status.SKIPPED
        return ctx.finding(
            status,
            "No ServerlessDatabaseCapacity datapoints in the last hour",
            f"Cluster status is {cluster.get('Status')}.",
            {"max_capacity": scaling["max"]},
        )
    recent = points[-15:]
    recent_util = util[-15:]
    at_max = [p for p in recent if float(p.get("Maximum", 0)) >= scaling["max"] - 1e-6]
    saturated = [p for p in recent_util if float(p.get("Average", 0)) >= 95]
    pinned = max(len(at_max), len(saturated))
    peak = max(float(p.get("Maximum", 0)) for p in points)
    evidence = {
        "judged_on": source,
        "min_capacity": scaling["min"],
        "max_capacity": scaling["max"],
        "latest_acu": float(points[-1].get("Average", points[-1].get("Maximum", 0))),
        "peak_acu_1h": peak,
        "latest_acu_utilization_pct": round(float(recent_util[-1].get("Average", 0)), 1)
        if recent_util
        else None,
        "minutes_at_max_of_last_15": pinned,
        "latest_at": points[-1]["Timestamp"],
    }
    writer = ctx.writer_instance()
    resources = [ctx.names.aurora_cluster, *([writer] if writer else [])]
    if pinned >= max(1, len(recent) // 2):
        return ctx.finding(
            Status.FAIL,
            f"Aurora capacity pinned at its maximum of {scaling['max']:g} ACU",
            f"The {source} spent {pinned} of the last {len(recent)} minutes at max capacity: the "
            "database cannot scale further; queries queue and slow down.",
            evidence,
            [_raise_capacity(ctx, scaling)],
            resources=resources,
        )
    if peak >= scaling["max"] - 1e-6:
        return ctx.finding(
            Status.WARN,
            f"Aurora capacity touched its maximum of {scaling['max']:g} ACU in the last hour",
            "",
            evidence,
        )
    return ctx.finding(
        Status.OK,
        f"Aurora capacity below its maximum ({peak:g}/{scaling['max']:g} ACU)",
        "",
        evidence,
    )


@check("db.cpu", title="Aurora CPU (the writer)", also_in=("perf",))
def cpu(ctx: CheckContext) -> Finding:
    points, source = writer_metric(ctx, "CPUUtilization")
    if not points:
        return ctx.finding(Status.SKIPPED, "No Aurora CPU datapoints in the last hour")
    recent = points[-5:]
    recent_avg = sum(float(p.get("Average", 0)) for p in recent) / len(recent)
    peak = max(float(p.get("Maximum", 0)) for p in points)
    evidence = {
        "judged_on": source,
        "recent_5min_avg_pct": round(recent_avg, 1),
        "peak_1h_pct": round(peak, 1),
        "latest_at": points[-1]["Timestamp"],
    }
    if recent_avg >= 90:
        return ctx.finding(
            Status.FAIL,
            f"Aurora CPU at {recent_avg:.0f}%",
            f"The {source} has averaged over 90% CPU for the last 5 minutes: look at the slow "
            "queries and capacity findings.",
            evidence,
            resources=[ctx.names.aurora_cluster],
        )
    if recent_avg >= 75 or peak >= 95:
        return ctx.finding(Status.WARN, f"Aurora CPU high (peak {peak:.0f}%)", "", evidence)
    return ctx.finding(Status.OK, f"Aurora CPU normal ({recent_avg:.0f}% now)", "", evidence)


def connection_limit(ctx: CheckContext, scaling: dict[str, float] | None) -> tuple[int | None, str]:
    """The connection limit and where it comes from."""
    dsn = _sql.diag_dsn(ctx)
    if dsn is not None:
        return _sql.max_connections(dsn), "SHOW max_connections"
    if scaling is None:
        return None, "unknown"
    return (
        estimated_max_connections(scaling["max"]),
        f"estimated from {scaling['max']:g} ACU max (set OMNI_DB_DIAG_SECRET for the real one)",
    )


@check("db.connections", title="Aurora connections", also_in=("perf",))
def connections(ctx: CheckContext) -> Finding:
    cluster, points = ctx.gather(
        ctx.aurora_cluster,
        lambda: ctx.metric(
            "AWS/RDS",
            "DatabaseConnections",
            {"DBClusterIdentifier": ctx.names.aurora_cluster},
            ("Maximum",),
        ),
    )
    scaling = _serverless(cluster)
    if not points:
        return ctx.finding(Status.SKIPPED, "No DatabaseConnections datapoints in the last hour")
    peak = max(float(p.get("Maximum", 0)) for p in points)
    latest = float(points[-1].get("Maximum", 0))
    evidence: dict[str, Any] = {"peak_connections_1h": peak, "latest_connections": latest}
    limit, source = connection_limit(ctx, scaling)
    if not limit:
        return ctx.finding(
            Status.OK, f"Aurora connections: {latest:g} now, peak {peak:g}", "", evidence
        )
    ratio = peak / limit
    evidence.update(
        {"limit": limit, "limit_from": source, "peak_pct_of_limit": round(ratio * 100, 1)}
    )
    if ratio >= 0.9:
        return ctx.finding(
            Status.FAIL,
            f"Aurora connections near the limit ({peak:g} of {limit})",
            f"The limit ({source}) is nearly reached: new connections are refused. Lower the "
            "app's pool size, or raise capacity (max_connections follows only after a reboot).",
            evidence,
            [_raise_capacity(ctx, scaling)] if scaling else [],
            resources=[ctx.names.aurora_cluster],
        )
    if ratio >= 0.75:
        return ctx.finding(
            Status.WARN, f"Aurora connections high ({peak:g} of {limit})", "", evidence
        )
    return ctx.finding(
        Status.OK, f"Aurora connections fine ({peak:g} of {limit} peak)", "", evidence
    )


@check("db.slow_queries", title="Slow queries")
def slow_queries(ctx: CheckContext) -> Finding:
    dsn = _sql.diag_dsn(ctx)
    if dsn is None:
        return ctx.finding(
            Status.SKIPPED,
            "Slow queries: not configured",
            "Set OMNI_DB_DIAG_SECRET to a secret holding a read-only DB URL to enable SQL checks.",
        )
    threshold = ctx.settings.slow_query_s
    rows = _sql.slow_queries(dsn, threshold)
    evidence: dict[str, Any] = {"threshold_s": threshold, "queries": rows}
    if not rows:
        return ctx.finding(Status.OK, f"No query active for more than {threshold:g}s", "", evidence)
    longest = max(r["seconds"] for r in rows)
    status = Status.FAIL if len(rows) >= 5 or longest >= 300 else Status.WARN
    return ctx.finding(
        status,
        f"{len(rows)} quer{'y' if len(rows) == 1 else 'ies'} active for more than "
        f"{threshold:g}s (longest {longest:.0f}s)",
        "From pg_stat_activity, oldest first. Cancel with SELECT pg_cancel_backend(pid) if safe.",
        evidence,
    )


@check("db.top_statements", title="Top statements by mean time")
def top_statements(ctx: CheckContext) -> Finding:
    dsn = _sql.diag_dsn(ctx)
    if dsn is None:
        return ctx.finding(
            Status.SKIPPED,
            "Top statements: not configured",
            "Set OMNI_DB_DIAG_SECRET to a secret holding a read-only DB URL to enable SQL checks.",
        )
    rows, problem = _sql.top_statements(dsn)
    if problem:
        return ctx.finding(
            Status.WARN,
            "pg_stat_statements is not available",
            problem + " Run: CREATE EXTENSION IF NOT EXISTS pg_stat_statements; (Aurora loads "
            "the library by default; elsewhere add it to shared_preload_libraries).",
            {"hint": "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"},
        )
    evidence: dict[str, Any] = {"statements": rows}
    if rows and rows[0]["mean_ms"] >= 1000:
        return ctx.finding(
            Status.WARN,
            f"Slowest statement averages {rows[0]['mean_ms']:.0f} ms",
            "Top statements by mean execution time (pg_stat_statements).",
            evidence,
        )
    return ctx.finding(Status.OK, "No statement averages over 1 s", "", evidence)
