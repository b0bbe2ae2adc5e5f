"""The troubleshooting guide's own diagnostic steps, as the literal ``aws`` CLI commands it lists.

Values the guide takes from ``terraform output`` come from the sandbox stack's outputs.  The
commands run one after another, as a person pasting them would; ``psql``, ``nc``, ``nslookup``
and ``curl`` steps are not AWS calls and are left out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def _window() -> list[str]:
    now = datetime.now(UTC)
    return [
        "--start-time",
        (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
        "--end-time",
        now.strftime("%Y-%m-%dT%H:%M:%S"),
    ]


def commands(
    area: str, names: Any, outputs: dict[str, Any], extra: dict[str, Any]
) -> list[list[str]]:
    region = ["--region", "us-east-1"]
    cluster, service = names.ecs_cluster, names.ecs_service
    if area == "db":
        return [
            [
                "rds",
                "describe-db-clusters",
                "--db-cluster-identifier",
                names.aurora_cluster,
                "--query",
                "DBClusters[0].[Status,Endpoint]",
                *region,
            ],
            [
                "ec2",
                "describe-security-groups",
                "--group-ids",
                outputs["aurora_security_group_id"],
                "--query",
                "SecurityGroups[0].IpPermissions",
                *region,
            ],
            [
                "ec2",
                "describe-security-group-rules",
                "--filters",
                f"Name=group-id,Values={outputs['aurora_security_group_id']}",
                "--query",
                "SecurityGroupRules[?FromPort==`5432`]",
                *region,
            ],
            [
                "secretsmanager",
                "get-secret-value",
                "--secret-id",
                f"{names.project}/{names.environment}/database-url",
                *region,
            ],
            [
                "rds",
                "describe-db-clusters",
                "--db-cluster-identifier",
                names.aurora_cluster,
                "--query",
                "DBClusters[0].Status",
                "--output",
                "text",
                *region,
            ],
            [
                "cloudwatch",
                "get-metric-statistics",
                "--namespace",
                "AWS/RDS",
                "--metric-name",
                "ServerlessDatabaseCapacity",
                "--dimensions",
                f"Name=DBClusterIdentifier,Value={names.aurora_cluster}",
                *_window(),
                "--period",
                "60",
                "--statistics",
                "Average",
                "Maximum",
                *region,
            ],
            [
                "cloudwatch",
                "get-metric-statistics",
                "--namespace",
                "AWS/RDS",
                "--metric-name",
                "CPUUtilization",
                "--dimensions",
                f"Name=DBClusterIdentifier,Value={names.aurora_cluster}",
                *_window(),
                "--period",
                "60",
                "--statistics",
                "Average",
                "Maximum",
                *region,
            ],
        ]
    if area == "ecs":
        stopped = [
            "ecs",
            "list-tasks",
            "--cluster",
            cluster,
            "--service-name",
            service,
            "--desired-status",
            "STOPPED",
            *region,
        ]
        return [
            [
                "ecs",
                "describe-services",
                "--cluster",
                cluster,
                "--services",
                service,
                "--query",
                "services[0].events[:10]",
                *region,
            ],
            [*stopped, "--query", "taskArns[0]", "--output", "text"],
            [
                "ecs",
                "describe-tasks",
                "--cluster",
                cluster,
                "--tasks",
                "$TASK_ARN",
                "--query",
                "tasks[0].[stopCode,stoppedReason,containers[0].reason,containers[0].exitCode]",
                *region,
            ],
            [
                "logs",
                "tail",
                names.log_group,
                "--since",
                "30m",
                "--filter-pattern",
                "ERROR",
                *region,
            ],
            ["ecr", "describe-repositories", "--repository-names", names.ecr_repository, *region],
            [
                "iam",
                "get-role-policy",
                "--role-name",
                names.task_execution_role,
                "--policy-name",
                "ECSTaskExecutionPolicy",
                *region,
            ],
            *[
                [
                    "ec2",
                    "describe-subnets",
                    "--subnet-ids",
                    s,
                    "--query",
                    "Subnets[0].[SubnetId,AvailableIpAddressCount]",
                    *region,
                ]
                for s in outputs["private_app_subnet_ids"]
            ],
            [
                "ecs",
                "describe-task-definition",
                "--task-definition",
                service,
                "--query",
                "taskDefinition.containerDefinitions[0].healthCheck",
                *region,
            ],
            stopped,
            [
                "cloudwatch",
                "get-metric-statistics",
                "--namespace",
                "AWS/ECS",
                "--metric-name",
                "MemoryUtilization",
                "--dimensions",
                f"Name=ServiceName,Value={service}",
                f"Name=ClusterName,Value={cluster}",
                *_window(),
                "--period",
                "60",
                "--statistics",
                "Maximum",
                *region,
            ],
        ]
    if area == "alb":
        alb, tg = outputs["alb_arn"], extra["target_group_arn"]
        return [
            [
                "elbv2",
                "describe-target-groups",
                "--load-balancer-arn",
                alb,
                "--query",
                "TargetGroups[].TargetGroupArn",
                "--output",
                "text",
                *region,
            ],
            ["elbv2", "describe-target-health", "--target-group-arn", tg, *region],
            [
                "ec2",
                "describe-security-groups",
                "--group-ids",
                outputs["alb_security_group_id"],
                "--query",
                "SecurityGroups[0].IpPermissions",
                *region,
            ],
            [
                "elbv2",
                "describe-target-groups",
                "--target-group-arns",
                tg,
                "--query",
                "TargetGroups[0].HealthCheckPath",
                *region,
            ],
            [
                "ec2",
                "describe-security-groups",
                "--group-ids",
                outputs["ecs_security_group_id"],
                "--query",
                "SecurityGroups[0].IpPermissions",
                *region,
            ],
            [
                "elbv2",
                "describe-load-balancer-attributes",
                "--load-balancer-arn",
                alb,
                "--query",
                "Attributes[?Key==`idle_timeout.timeout_seconds`]",
                *region,
            ],
            [
                "elbv2",
                "describe-load-balancers",
                "--load-balancer-arns",
                alb,
                "--query",
                "LoadBalancers[0].[State.Code,Scheme]",
                *region,
            ],
            [
                "ec2",
                "describe-security-groups",
                "--group-ids",
                outputs["alb_security_group_id"],
                "--query",
                "SecurityGroups[0].IpPermissions[?FromPort==`80`]",
                *region,
            ],
            [
                "elbv2",
                "describe-load-balancers",
                "--load-balancer-arns",
                alb,
                "--query",
                "LoadBalancers[0].AvailabilityZones[].SubnetId",
                *region,
            ],
            [
                "ec2",
                "describe-internet-gateways",
                "--filters",
                f"Name=attachment.vpc-id,Values={outputs['vpc_id']}",
                *region,
            ],
        ]
    raise ValueError(area)
