"""Database Connectivity and Performance (guide §3): Aurora stopped, rules, endpoint, load."""

from __future__ import annotations

from ..moto_ext import backend
from ..stack import DB_PASSWORD, DB_USER, Stack
from . import scenario
from ._faults import db_metric


@scenario(
    "aurora-stopped",
    "The Aurora cluster is stopped (guide: Aurora Cluster Stopped/Paused).",
    area="db",
    alarm="rds-connections-high",
)
def _aurora_stopped(stack: Stack) -> None:
    backend("rds", stack).clusters[stack.names.aurora_cluster].status = "stopped"


@scenario(
    "db-sg-missing",
    "Aurora's security group lost its 5432 rule from ECS "
    "(guide: Security Group Missing Ingress Rule).",
    area="db",
    alarm="rds-connections-high",
)
def _db_sg_missing(stack: Stack) -> None:
    ec2 = backend("ec2", stack)
    group = ec2.get_security_group_from_id(stack.outputs["aurora_security_group_id"])
    group.ingress_rules = []


@scenario(
    "db-reader-endpoint",
    "The app's DB URL points at the reader endpoint (guide: Wrong Database Endpoint).",
    area="db",
    alarm="rds-connections-high",
)
def _db_reader(stack: Stack) -> None:
    url = f"postgresql://{DB_USER}:{DB_PASSWORD}@{stack.extra['reader_endpoint']}:5432/{stack.names.project}"
    stack.client("secretsmanager").put_secret_value(
        SecretId=stack.extra["db_url_secret"], SecretString=url
    )


@scenario(
    "db-capacity-pinned",
    "Aurora Serverless v2 pinned at max ACU with high CPU (guide: Increase Aurora Capacity).",
    area="db",
    alarm="rds-connections-high",
)
def _db_capacity(stack: Stack) -> None:
    db_metric(stack, "ServerlessDatabaseCapacity", [1.5] * 40 + [4.0] * 20)


@scenario(
    "db-cpu-high",
    "Aurora CPU above 90% for the last minutes (guide: High database CPU utilization).",
    area="db",
    alarm="rds-connections-high",
)
def _db_cpu(stack: Stack) -> None:
    db_metric(stack, "CPUUtilization", [30.0] * 50 + [96.0] * 10, "Percent")


@scenario(
    "db-connections-exhausted",
    "Connections near 90 per ACU at max capacity (guide: Check Connection Pool Settings).",
    area="db",
    alarm="rds-connections-high",
)
def _db_connections(stack: Stack) -> None:
    db_metric(stack, "DatabaseConnections", [60.0] * 50 + [355.0] * 10, "Count")
