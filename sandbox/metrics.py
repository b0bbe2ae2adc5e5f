"""CloudWatch metrics for the sandbox: a healthy hour of each metric the checks read.

moto emits nothing by itself; :func:`put_healthy_metrics` writes an hour of plausible values
(one datapoint a minute, ending at the stack's ``now``), and scenarios replace a series with
:func:`replace_metric`.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING

from .moto_ext import backend

if TYPE_CHECKING:
    from commands.aws import ClientPool

    from .stack import Stack


def put_metrics(
    pool: ClientPool,
    stack: Stack,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    values: list[float],
    unit: str = "None",
) -> None:
    """One datapoint a minute, the last value the newest, ending at the stack's 'now'."""
    cw = pool.client("cloudwatch", stack.region)
    dims = [{"Name": k, "Value": v} for k, v in dimensions.items()]
    data = [
        {
            "MetricName": metric,
            "Dimensions": dims,
            "Timestamp": stack.now - timedelta(minutes=len(values) - i),
            "Value": float(v),
            "Unit": unit,
        }
        for i, v in enumerate(values)
    ]
    for start in range(0, len(data), 500):
        cw.put_metric_data(Namespace=namespace, MetricData=data[start : start + 500])


def replace_metric(
    stack: Stack,
    namespace: str,
    metric: str,
    dimensions: dict[str, str],
    values: list[float],
    unit: str = "None",
) -> None:
    """Replace one series (exact dimensions) with ``values`` (moto averages one minute's points)."""
    cw = backend("cloudwatch", stack)
    wanted = sorted(dimensions.items())

    def same(md: object) -> bool:
        dims = sorted((d.name, d.value) for d in getattr(md, "dimensions", []))
        return (
            getattr(md, "namespace", None) == namespace
            and getattr(md, "name", None) == metric
            and dims == wanted
        )

    cw.metric_data = [md for md in cw.metric_data if not same(md)]
    put_metrics(stack.pool, stack, namespace, metric, dimensions, values, unit)


def put_healthy_metrics(pool: ClientPool, stack: Stack) -> None:
    rnd = random.Random(7)
    n = stack.names

    def series(lo: float, spread: float) -> list[float]:
        return [lo + rnd.random() * spread for _ in range(60)]

    def put(
        namespace: str, metric: str, dims: dict[str, str], values: list[float], unit: str
    ) -> None:
        put_metrics(pool, stack, namespace, metric, dims, values, unit)

    cluster = {"DBClusterIdentifier": n.aurora_cluster}
    writer, reader = stack.extra["db_instances"][:2]
    busy = [round(1 + rnd.random(), 1) for _ in range(60)]  # the writer serves the app
    idle = [0.5] * 60  # the reader idles at its minimum
    average = [(a + b) / 2 for a, b in zip(busy, idle, strict=True)]  # the cluster's figure
    for dims, acu, cpu in (
        ({"DBInstanceIdentifier": writer}, busy, series(20, 15)),
        ({"DBInstanceIdentifier": reader}, idle, series(3, 2)),
        (cluster, average, series(12, 8)),
    ):
        put("AWS/RDS", "ServerlessDatabaseCapacity", dims, acu, "None")
        put("AWS/RDS", "ACUUtilization", dims, [c / 4.0 * 100 for c in acu], "Percent")
        put("AWS/RDS", "CPUUtilization", dims, cpu, "Percent")
    put(
        "AWS/RDS",
        "DatabaseConnections",
        cluster,
        [40 + rnd.randint(0, 20) for _ in range(60)],
        "Count",
    )
    svc = {"ClusterName": n.ecs_cluster, "ServiceName": n.ecs_service}
    put("AWS/ECS", "CPUUtilization", svc, series(25, 20), "Percent")
    put("AWS/ECS", "MemoryUtilization", svc, series(40, 15), "Percent")
    alb = {"LoadBalancer": stack.outputs["alb_arn_suffix"]}
    put("AWS/ApplicationELB", "TargetResponseTime", alb, series(0.08, 0.1), "Seconds")
    put(
        "AWS/ApplicationELB",
        "RequestCount",
        alb,
        [float(rnd.randint(900, 1100)) for _ in range(60)],
        "Count",
    )
    for metric in ("HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"):
        put(
            "AWS/ApplicationELB",
            metric,
            alb,
            [float(rnd.random() < 0.1) for _ in range(60)],
            "Count",
        )
    for metric in stack.extra["waf_metrics"].values():
        dims = {"WebACL": n.waf_acl, "Region": stack.region, "Rule": metric}
        blocked = [float(rnd.random() < 0.2) for _ in range(60)]
        put("AWS/WAFV2", "BlockedRequests", dims, blocked, "Count")
    for nat in stack.outputs["nat_gateway_ids"]:
        dims = {"NatGatewayId": nat}
        put("AWS/NATGateway", "ErrorPortAllocation", dims, [0.0] * 60, "Count")
        put("AWS/NATGateway", "PacketsDropCount", dims, [0.0] * 60, "Count")
        put("AWS/NATGateway", "ConnectionAttemptCount", dims, [120.0] * 60, "Count")
