"""Database Connectivity and Database Performance (guide §3): the ``db`` area."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...areas import Link, area
from ...evidence import either, errors_about, names_one_of, stopped
from ...graphs import GraphSpec, Panel, Series
from ...routing import Route

if TYPE_CHECKING:
    from ...context import CheckContext

# An app that cannot use its database logs it (the endpoint, the driver's words) and its tasks
# crash or fail their health checks; a response that waits on the database is slow.
_APP_ERRORS = Link(
    "", "ecs.container_errors", either(errors_about("database"), names_one_of("endpoints"))
)
_APP_CRASHES = Link("", "ecs.stopped_tasks", stopped("app_crash", "container_health", "elb_health"))
_DB_DOWN = (_APP_ERRORS, _APP_CRASHES, "perf.target_response_time")


def estimated_max_connections(max_acu: float) -> int:
    """Aurora PostgreSQL's default: LEAST({DBInstanceClassMemory/9531392}, 5000), about 2 GiB of
    memory per ACU at the maximum capacity (``SHOW max_connections`` is the truth)."""
    return int(min(max_acu * 2 * 1024**3 / 9_531_392, 5000))


def graph(ctx: CheckContext) -> GraphSpec:
    """The writer's capacity against max ACU, CPU, connections.  The writer, not the cluster:
    the cluster's figure averages in idle readers (a writer pinned at 4 of 4 ACU beside an idle
    reader reads 2.25), so it hides the very saturation the graph is for."""
    cluster = ctx.aurora_cluster()
    writer = ctx.writer_instance()
    dims = (
        {"DBInstanceIdentifier": writer}
        if writer
        else {"DBClusterIdentifier": ctx.names.aurora_cluster}
    )
    max_acu = (cluster.get("ServerlessV2ScalingConfiguration") or {}).get("MaxCapacity")
    return GraphSpec(
        "db",
        f"Aurora {ctx.names.aurora_cluster}" + (f" (writer {writer})" if writer else ""),
        (
            Panel(
                "Capacity (ACU)",
                (Series("ACU", "AWS/RDS", "ServerlessDatabaseCapacity", dims),),
                float(max_acu) if max_acu is not None else None,
                f"max ACU {max_acu:g}" if max_acu is not None else "max ACU",
            ),
            Panel("CPU (%)", (Series("CPU", "AWS/RDS", "CPUUtilization", dims),), 90.0, "90%"),
            Panel(
                "Connections",
                (Series("connections", "AWS/RDS", "DatabaseConnections", dims),),
                float(estimated_max_connections(float(max_acu))) if max_acu is not None else None,
                "estimated max_connections",
            ),
        ),
    )


AREA = area(
    "db",
    title="Database connectivity and performance",
    services=("rds", "secretsmanager", "cloudwatch", "ec2", "ecs"),
    routes=[
        Route(namespace="AWS/RDS", metric="CPUUtilization"),
        Route(namespace="AWS/RDS", metric="ServerlessDatabaseCapacity"),
        Route(namespace="AWS/RDS", metric="ACUUtilization"),
        Route(namespace="AWS/RDS", metric="DatabaseConnections"),
        Route(namespace="AWS/RDS"),  # memory, latency, replica lag, deadlocks, storage…
        # whole words: "prod-aurora-replica-lag" is, "cards-service-cpu-high" is not
        Route(name=r"(?<![a-z0-9])(rds|aurora|postgres(ql)?|database|db)(?![a-z0-9])"),
    ],
    links={
        "db.cluster_status": _DB_DOWN,
        "db.sg_ingress_from_ecs": (
            Link("", "ecs.container_errors", errors_about("database", "timeout")),
            _APP_CRASHES,
            "perf.target_response_time",
        ),
        "db.endpoint_config": (Link("", "ecs.container_errors", errors_about("database")),),
        "db.serverless_capacity": (
            "db.cpu",
            "db.connections",
            "db.slow_queries",
            "perf.target_response_time",
        ),
        "db.slow_queries": ("db.cpu", "perf.target_response_time"),
        "db.cpu": ("perf.target_response_time",),
        "db.connections": (
            Link("", "ecs.container_errors", errors_about("database")),
            "perf.target_response_time",
        ),
    },
    graph=graph,
    module=__name__,
    layer=1,
)
