"""Aurora fixes: start a stopped cluster, raise Serverless v2 max capacity."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..models import Risk
from ._registry import Call, FixContext, FixRefused, FixResult, Params, fix

_CLUSTER = ("arn:aws:rds:*:*:cluster:{project}-*",)


def _cluster(ctx: FixContext, name: str) -> dict[str, Any]:
    return dict(ctx.call("rds", "describe_db_clusters", DBClusterIdentifier=name)["DBClusters"][0])


class StartCluster(Params):
    DBClusterIdentifier: str


@fix(
    "rds.start_cluster",
    title="Start the Aurora cluster",
    risk=Risk.LOW,
    calls=[Call("rds:StartDBCluster", _CLUSTER)],
    reads=("rds:DescribeDBClusters",),
    target="DBClusterIdentifier",
    terraform="Nothing to change: a stopped cluster is not Terraform drift. If it was stopped on "
    "purpose (cost), make sure nothing stops it again during business hours.",
)
def start_cluster(ctx: FixContext, p: StartCluster) -> FixResult:
    before = _cluster(ctx, p.DBClusterIdentifier)["Status"]
    if before != "stopped":
        raise FixRefused(f"{p.DBClusterIdentifier} is {before}, not stopped: nothing to start")
    ctx.call("rds", "start_db_cluster", DBClusterIdentifier=p.DBClusterIdentifier)
    after = _cluster(ctx, p.DBClusterIdentifier)["Status"]
    return FixResult(f"Started {p.DBClusterIdentifier}", {"Status": before}, {"Status": after})


class RaiseMaxCapacity(Params):
    DBClusterIdentifier: str
    MinCapacity: float = Field(ge=0, le=256)
    MaxCapacity: float = Field(gt=0, le=256)


@fix(
    "rds.raise_max_capacity",
    title="Raise Aurora Serverless v2 max capacity",
    risk=Risk.MEDIUM,
    calls=[Call("rds:ModifyDBCluster", _CLUSTER)],
    reads=("rds:DescribeDBClusters",),
    target="DBClusterIdentifier",
    terraform="Set `aurora_max_capacity` in terraform.tfvars (serverlessv2_scaling_configuration "
    "max_capacity) to the new value.",
    caveat="Capacity can grow at once; max_connections (fixed when an instance starts, from "
    "its maximum capacity's memory) changes only after each instance reboots.",
    settles_min=5,  # ACUUtilization of the minutes before still reads 100 % of the old max
)
def raise_max_capacity(ctx: FixContext, p: RaiseMaxCapacity) -> FixResult:
    before = _cluster(ctx, p.DBClusterIdentifier).get("ServerlessV2ScalingConfiguration", {})
    if float(before.get("MaxCapacity", 0)) >= p.MaxCapacity:
        raise FixRefused(f"max capacity is already {before.get('MaxCapacity')} ACU")
    ctx.call(
        "rds",
        "modify_db_cluster",
        DBClusterIdentifier=p.DBClusterIdentifier,
        ApplyImmediately=True,
        ServerlessV2ScalingConfiguration={
            "MinCapacity": p.MinCapacity,
            "MaxCapacity": p.MaxCapacity,
        },
    )
    after = _cluster(ctx, p.DBClusterIdentifier).get("ServerlessV2ScalingConfiguration", {})
    return FixResult(
        f"Max capacity of {p.DBClusterIdentifier} raised",
        {"MaxCapacity": before.get("MaxCapacity")},
        {"MaxCapacity": after.get("MaxCapacity")},
    )
