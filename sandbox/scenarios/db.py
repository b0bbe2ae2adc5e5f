"""Database Connectivity and Performance (guide §3), in the shapes a real account shows."""

from __future__ import annotations

from .. import cloudtrail
from ..moto_ext import backend
from ..stack import DB_PASSWORD, DB_USER, Stack
from . import scenario
from ._faults import db_metric


@scenario(
    "aurora-stopped",
    "The Aurora cluster is stopped (guide: Aurora Cluster Stopped/Paused).",
    area="db",
)
def aurora_stopped(stack: Stack) -> None:
    backend("rds", stack).clusters[stack.names.aurora_cluster].status = "stopped"
    cloudtrail.record(
        stack,
        "StopDBCluster",
        "rds.amazonaws.com",
        who="finops-scheduler",
        kind="AssumedRole",
        session="nightly-stop",
        resources=[("AWS::RDS::DBCluster", stack.names.aurora_cluster)],
        request={"dBClusterIdentifier": stack.names.aurora_cluster},
        minutes_ago=25,
    )


@scenario(
    "aurora-writer-failed",
    "The cluster reads 'available' but its writer instance has failed.",
    area="db",
)
def aurora_writer_failed(stack: Stack) -> None:
    writer = stack.extra["db_instances"][0]
    backend("rds", stack).databases[writer].status = "failed"


@scenario(
    "db-sg-missing",
    "Aurora's security group lost its 5432 rule from ECS "
    "(guide: Security Group Missing Ingress Rule).",
    area="db",
)
def db_sg_missing(stack: Stack) -> None:
    ec2 = backend("ec2", stack)
    group = ec2.get_security_group_from_id(stack.outputs["aurora_security_group_id"])
    group.ingress_rules = []


@scenario(
    "db-reader-endpoint",
    "The app's DB URL points at the reader endpoint (guide: Wrong Database Endpoint).",
    area="db",
)
def db_reader(stack: Stack) -> None:
    url = (
        f"postgresql://{DB_USER}:{DB_PASSWORD}@{stack.extra['reader_endpoint']}:5432/"
        f"{stack.names.project}"
    )
    stack.client("secretsmanager").put_secret_value(
        SecretId=stack.extra["db_url_secret"], SecretString=url
    )


@scenario(
    "db-capacity-pinned",
    "The writer is pinned at its maximum ACU; an idle reader halves the cluster's figure "
    "(guide: Increase Aurora Capacity).",
    area="db",
    alarm="rds-capacity-high",
)
def db_capacity(stack: Stack) -> None:
    writer, reader = stack.extra["db_instances"][:2]
    from ..metrics import replace_metric

    _pin_writer(stack, writer, [1.5] * 40 + [4.0] * 20, max_acu=4.0)
    # the cluster-level figure is the average with the idle reader: 2.25 of 4, not alarming
    db_metric(stack, "ServerlessDatabaseCapacity", [1.0] * 40 + [2.25] * 20, instance=False)
    replace_metric(
        stack,
        "AWS/RDS",
        "ServerlessDatabaseCapacity",
        {"DBInstanceIdentifier": reader},
        [0.5] * 60,
    )


@scenario(
    "db-cpu-high",
    "The writer's CPU above 90% for the last minutes (guide: High database CPU utilization).",
    area="db",
    alarm="rds-cpu-high",
)
def db_cpu(stack: Stack) -> None:
    db_metric(stack, "CPUUtilization", [30.0] * 50 + [96.0] * 10, "Percent")


@scenario(
    "db-connections-exhausted",
    "Connections at the engine's limit for the maximum capacity (guide: Check Connection Pool "
    "Settings).",
    area="db",
    alarm="rds-connections-high",
)
def db_connections(stack: Stack) -> None:
    # 4 ACU max: about 901 connections by Aurora PostgreSQL's default formula
    db_metric(stack, "DatabaseConnections", [60.0] * 50 + [880.0] * 10, "Count", instance=False)


@scenario(
    "db-capacity-lowered",
    "A cost-cutting change lowered the cluster's max capacity from 4 to 1 ACU: the writer is "
    "pinned at 1.",
    area="db",
    alarm="rds-capacity-high",
)
def db_capacity_lowered(stack: Stack) -> None:

    cluster = stack.names.aurora_cluster
    stack.client("rds").modify_db_cluster(
        DBClusterIdentifier=cluster,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0.5, "MaxCapacity": 1.0},
        ApplyImmediately=True,
    )
    cloudtrail.record(
        stack,
        "ModifyDBCluster",
        "rds.amazonaws.com",
        who="dave",
        resources=[("AWS::RDS::DBCluster", cluster)],
        request={
            "dBClusterIdentifier": cluster,
            "serverlessV2ScalingConfiguration": {"minCapacity": 0.5, "maxCapacity": 1.0},
            "applyImmediately": True,
        },
        minutes_ago=35,
    )
    writer = stack.extra["db_instances"][0]
    _pin_writer(stack, writer, [0.8] * 40 + [1.0] * 20, max_acu=1.0)


def _pin_writer(stack: Stack, writer: str, capacity: list[float], *, max_acu: float) -> None:
    """The writer's capacity series, and its utilisation against ``max_acu``."""
    from ..metrics import replace_metric

    dims = {"DBInstanceIdentifier": writer}
    replace_metric(stack, "AWS/RDS", "ServerlessDatabaseCapacity", dims, capacity)
    replace_metric(
        stack, "AWS/RDS", "ACUUtilization", dims, [v / max_acu * 100 for v in capacity], "Percent"
    )
