"""Database Connectivity and Database Performance (guide §3): the ``db`` runbook."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from ...context import CheckContext
from ...errors import ResourceNotFound
from ...models import Finding, Status
from ...registry import check
from . import CONNECTIONS_PER_ACU, _sql

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
}


def _dims(ctx: CheckContext) -> dict[str, str]:
    return {"DBClusterIdentifier": ctx.names.aurora_cluster}


@check("db.cluster_status", title="Aurora cluster status")
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
    status = str(cluster.get("Status", "unknown"))
    evidence = {
        "DBClusterIdentifier": cluster.get("DBClusterIdentifier"),
        "Status": status,
        "Endpoint": cluster.get("Endpoint"),
        "Engine": f"{cluster.get('Engine')} {cluster.get('EngineVersion', '')}".strip(),
        "Members": [m.get("DBInstanceIdentifier") for m in cluster.get("DBClusterMembers", [])],
    }
    name = ctx.names.aurora_cluster
    if status == _AVAILABLE:
        return ctx.finding(Status.OK, "Aurora cluster is available", "", evidence)
    if status in {"stopped", "stopping"}:
        return ctx.finding(
            Status.FAIL,
            f"Aurora cluster is {status}",
            f"{name} is {status}: every connection from the app fails until it is started "
            "(starting takes a few minutes).",
            evidence,
            [ctx.propose("rds.start_cluster", DBClusterIdentifier=name)],
        )
    if status in _TRANSIENT:
        return ctx.finding(
            Status.WARN,
            f"Aurora cluster is {status}",
            f"{name} is {status}; connections may fail until it is available.",
            evidence,
        )
    return ctx.finding(
        Status.FAIL, f"Aurora cluster is {status}", f"{name} reports status {status}.", evidence
    )


def _covers(perm: dict[str, Any], port: int) -> bool:
    if perm.get("IpProtocol") == "-1":
        return True
    if perm.get("IpProtocol") not in ("tcp", "6"):
        return False
    low, high = perm.get("FromPort"), perm.get("ToPort")
    return low is not None and high is not None and int(low) <= port <= int(high)


@check("db.sg_ingress_from_ecs", title="Aurora ingress from ECS")
def sg_ingress_from_ecs(ctx: CheckContext) -> Finding:
    aurora_sgs, ecs_sgs, port = ctx.gather(
        ctx.aurora_security_group_ids,
        ctx.ecs_security_group_ids,
        lambda: _port(ctx),
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
    groups = ctx.aws.call("ec2", "describe_security_groups", GroupIds=aurora_sgs)
    matching = []
    for group in groups.get("SecurityGroups", []):
        for perm in group.get("IpPermissions", []):
            sources = {p.get("GroupId") for p in perm.get("UserIdGroupPairs", [])}
            if _covers(perm, port) and sources & set(ecs_sgs):
                matching.append(
                    {
                        "GroupId": group["GroupId"],
                        "IpProtocol": perm.get("IpProtocol"),
                        "FromPort": perm.get("FromPort"),
                        "ToPort": perm.get("ToPort"),
                        "SourceGroupIds": sorted(sources & set(ecs_sgs)),
                    }
                )
    evidence: dict[str, Any] = {
        "aurora_security_groups": aurora_sgs,
        "ecs_security_groups": ecs_sgs,
        "port": port,
    }
    if matching:
        evidence["rules"] = matching
        return ctx.finding(
            Status.OK, f"Aurora accepts {port} from the ECS security group", "", evidence
        )
    return ctx.finding(
        Status.FAIL,
        f"Aurora security group has no ingress on {port} from ECS",
        f"No ingress rule on {', '.join(aurora_sgs)} allows TCP {port} from "
        f"{', '.join(ecs_sgs)}: the tasks' connections time out. Terraform: "
        "aws_security_group_rule.aurora_from_ecs.",
        evidence,
        [
            ctx.propose(
                "ec2.allow_ecs_to_aurora",
                GroupId=aurora_sgs[0],
                SourceSecurityGroupId=ecs_sgs[0],
                Port=port,
            )
        ],
    )


def _port(ctx: CheckContext) -> int:
    try:
        return int(ctx.aurora_cluster().get("Port") or 5432)
    except ResourceNotFound:
        return 5432


def secret_host(secret: str) -> str | None:
    """The host a DB URL secret points at (URL or JSON, RDS-managed or hand-made)."""
    text = secret.strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        if isinstance(doc, dict):
            for key in ("url", "URL", "database_url", "DATABASE_URL", "uri", "connection_string"):
                if isinstance(doc.get(key), str):
                    return secret_host(doc[key])
            host = doc.get("host") or doc.get("hostname")
            return str(host).lower() if host else None
        return None
    parsed = urlparse(text)
    return parsed.hostname.lower() if parsed.hostname else None


@check("db.endpoint_config", title="App DB URL endpoint")
def endpoint_config(ctx: CheckContext) -> Finding:
    secret_id = ctx.settings.db_url_secret_id
    cluster, secret = ctx.gather(ctx.aurora_cluster, lambda: ctx.secret_string(secret_id))
    host = secret_host(secret)
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


@check("db.serverless_capacity", title="Aurora Serverless v2 capacity", also_in=("perf",))
def serverless_capacity(ctx: CheckContext) -> Finding:
    cluster, points = ctx.gather(
        ctx.aurora_cluster,
        lambda: ctx.metric("AWS/RDS", "ServerlessDatabaseCapacity", _dims(ctx)),
    )
    scaling = _serverless(cluster)
    if scaling is None:
        return ctx.finding(
            Status.SKIPPED, "Not an Aurora Serverless v2 cluster", "No scaling configuration."
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
    at_max = [p for p in recent if float(p.get("Maximum", 0)) >= scaling["max"] - 1e-6]
    peak = max(float(p.get("Maximum", 0)) for p in points)
    evidence = {
        "min_capacity": scaling["min"],
        "max_capacity": scaling["max"],
        "latest_acu": float(points[-1].get("Average", points[-1].get("Maximum", 0))),
        "peak_acu_1h": peak,
        "minutes_at_max_of_last_15": len(at_max),
        "latest_at": points[-1]["Timestamp"],
    }
    if len(at_max) >= max(1, len(recent) // 2):
        return ctx.finding(
            Status.FAIL,
            f"Aurora capacity pinned at its maximum of {scaling['max']:g} ACU",
            f"{len(at_max)} of the last {len(recent)} minutes at max capacity: the database "
            "cannot scale further; queries queue and slow down.",
            evidence,
            [_raise_capacity(ctx, scaling)],
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


@check("db.cpu", title="Aurora CPU", also_in=("perf",))
def cpu(ctx: CheckContext) -> Finding:
    points = ctx.metric("AWS/RDS", "CPUUtilization", _dims(ctx))
    if not points:
        return ctx.finding(Status.SKIPPED, "No Aurora CPU datapoints in the last hour")
    recent = points[-5:]
    recent_avg = sum(float(p.get("Average", 0)) for p in recent) / len(recent)
    peak = max(float(p.get("Maximum", 0)) for p in points)
    evidence = {
        "recent_5min_avg_pct": round(recent_avg, 1),
        "peak_1h_pct": round(peak, 1),
        "latest_at": points[-1]["Timestamp"],
    }
    if recent_avg >= 90:
        return ctx.finding(
            Status.FAIL,
            f"Aurora CPU at {recent_avg:.0f}%",
            "CPU has averaged over 90% for the last 5 minutes: look at the slow queries and "
            "capacity findings.",
            evidence,
        )
    if recent_avg >= 75 or peak >= 95:
        return ctx.finding(Status.WARN, f"Aurora CPU high (peak {peak:.0f}%)", "", evidence)
    return ctx.finding(Status.OK, f"Aurora CPU normal ({recent_avg:.0f}% now)", "", evidence)


@check("db.connections", title="Aurora connections", also_in=("perf",))
def connections(ctx: CheckContext) -> Finding:
    cluster, points = ctx.gather(
        ctx.aurora_cluster,
        lambda: ctx.metric("AWS/RDS", "DatabaseConnections", _dims(ctx), ("Maximum",)),
    )
    scaling = _serverless(cluster)
    if not points:
        return ctx.finding(Status.SKIPPED, "No DatabaseConnections datapoints in the last hour")
    peak = max(float(p.get("Maximum", 0)) for p in points)
    latest = float(points[-1].get("Maximum", 0))
    evidence: dict[str, Any] = {"peak_connections_1h": peak, "latest_connections": latest}
    if scaling is None:
        return ctx.finding(
            Status.OK, f"Aurora connections: {latest:g} now, peak {peak:g}", "", evidence
        )
    limit = CONNECTIONS_PER_ACU * scaling["max"]
    ratio = peak / limit if limit else 0.0
    evidence.update(
        {
            "approx_limit": limit,
            "max_capacity_acu": scaling["max"],
            "peak_pct_of_limit": round(ratio * 100, 1),
        }
    )
    if ratio >= 0.9:
        return ctx.finding(
            Status.FAIL,
            f"Aurora connections near the limit ({peak:g} of about {limit:g})",
            f"About {CONNECTIONS_PER_ACU} connections per ACU at {scaling['max']:g} ACU max: "
            "the pool is exhausting the database. Lower the app's pool size or raise capacity.",
            evidence,
            [_raise_capacity(ctx, scaling)],
        )
    if ratio >= 0.75:
        return ctx.finding(
            Status.WARN, f"Aurora connections high ({peak:g} of about {limit:g})", "", evidence
        )
    return ctx.finding(
        Status.OK, f"Aurora connections fine ({peak:g} of about {limit:g} peak)", "", evidence
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
