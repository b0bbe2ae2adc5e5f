"""Database Connectivity and Database Performance (guide §3): the ``db`` area."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...areas import area
from ...graphs import GraphSpec, Panel, Series
from ...routing import Route

if TYPE_CHECKING:
    from ...context import CheckContext

CONNECTIONS_PER_ACU = 90
_DB_DOWN = (
    "ecs.container_errors",
    "ecs.stopped_tasks",
    "perf.target_response_time",
    "db.slow_queries",
)


def graph(ctx: CheckContext) -> GraphSpec:
    """Capacity against max ACU, CPU, connections."""
    cluster = ctx.aurora_cluster()
    dims = {"DBClusterIdentifier": ctx.names.aurora_cluster}
    max_acu = (cluster.get("ServerlessV2ScalingConfiguration") or {}).get("MaxCapacity")
    return GraphSpec(
        "db",
        f"Aurora {ctx.names.aurora_cluster}",
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
                float(max_acu) * CONNECTIONS_PER_ACU if max_acu is not None else None,
                f"{CONNECTIONS_PER_ACU} per ACU at max",
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
        Route(name=r"(rds|aurora|db|database).*(cpu|capacity|acu|conn)"),
    ],
    links={
        "db.cluster_status": _DB_DOWN,
        "db.sg_ingress_from_ecs": _DB_DOWN,
        "db.endpoint_config": _DB_DOWN,
        "db.serverless_capacity": (
            "db.cpu",
            "db.connections",
            "db.slow_queries",
            "perf.target_response_time",
        ),
        "db.slow_queries": ("db.cpu", "perf.target_response_time"),
        "db.cpu": ("perf.target_response_time",),
        "db.connections": ("ecs.container_errors", "perf.target_response_time"),
    },
    graph=graph,
    module=__name__,
)
