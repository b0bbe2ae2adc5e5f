"""What Omni should conclude for each sandbox scenario: the judge's answer sheet.

Kept outside the sandbox so the faults stay honest, and shared by the tests
(``tests/test_runbooks.py``) and the accuracy benchmark (``bench/accuracy.py``).  For a fault:
the root cause the verdict must name first, the fix it must offer for it (None where Omni's
catalogue has none), checks that must fail (F) or warn (W), and, where a recorded change caused
it, who the verdict must name.  For a control: nothing fails, and nobody is named.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Expect:
    root: str | None
    fix: str | None = None
    checks: dict[str, str] = field(default_factory=dict)
    changed_by: str | None = None  # the principal the verdict names (a recorded change)


CONTROL = Expect(root=None)

EXPECTED: dict[str, Expect] = {
    # -- database
    "aurora-stopped": Expect(
        "db.cluster_status",
        "rds.start_cluster",
        {"db.cluster_status": "F"},
        changed_by="role/finops-scheduler (session nightly-stop)",
    ),
    "db-capacity-lowered": Expect(
        "db.serverless_capacity",
        "rds.raise_max_capacity",
        {"db.serverless_capacity": "F"},
        changed_by="user/dave",
    ),
    "aurora-writer-failed": Expect("db.cluster_status", None, {"db.cluster_status": "F"}),
    "db-sg-missing": Expect(
        "db.sg_ingress_from_ecs", "ec2.allow_ecs_to_aurora", {"db.sg_ingress_from_ecs": "F"}
    ),
    "db-reader-endpoint": Expect("db.endpoint_config", None, {"db.endpoint_config": "F"}),
    "db-capacity-pinned": Expect(
        "db.serverless_capacity", "rds.raise_max_capacity", {"db.serverless_capacity": "F"}
    ),
    "db-cpu-high": Expect("db.cpu", None, {"db.cpu": "F"}),
    "db-connections-exhausted": Expect(
        "db.connections", "rds.raise_max_capacity", {"db.connections": "F"}
    ),
    # -- ECS
    "ecs-oom": Expect(
        "ecs.memory_utilization",
        "ecs.increase_task_memory",
        {
            "ecs.stopped_tasks": "F",
            "ecs.memory_utilization": "F",
            "ecs.task_churn": "F",
            "perf.ecs_memory": "F",
        },
    ),
    "ecs-image-pull": Expect(
        "ecs.image_repository", None, {"ecs.image_repository": "F", "ecs.stopped_tasks": "F"}
    ),
    "ecs-execution-role": Expect(
        "ecs.execution_role_ecr", None, {"ecs.execution_role_ecr": "F", "ecs.stopped_tasks": "F"}
    ),
    "ecs-secrets-denied": Expect(
        "ecs.execution_role_ecr", None, {"ecs.execution_role_ecr": "F", "ecs.stopped_tasks": "F"}
    ),
    "ecs-subnet-ips": Expect(
        "ecs.subnet_ips", None, {"ecs.subnet_ips": "F", "ecs.stopped_tasks": "F"}
    ),
    "ecs-health-check": Expect("ecs.stopped_tasks", None, {"ecs.stopped_tasks": "F"}),
    "ecs-elb-health-kills": Expect(
        "alb.health_check_path",
        None,
        {"alb.health_check_path": "F", "alb.targets_healthy": "F", "ecs.stopped_tasks": "F"},
    ),
    "ecs-app-crash": Expect(
        "ecs.container_errors", None, {"ecs.stopped_tasks": "F", "ecs.container_errors": "F"}
    ),
    "ecs-tasks-not-running": Expect(
        "ecs.service_events", None, {"ecs.service_running": "F", "ecs.service_events": "F"}
    ),
    # -- load balancer
    "alb-targets-unhealthy": Expect(
        "alb.health_check_path",
        None,
        {"alb.targets_healthy": "F", "alb.health_check_path": "F", "alb.http_5xx": "F"},
    ),
    "alb-sg-missing": Expect(
        "alb.sg_alb_to_ecs", "ec2.allow_alb_to_ecs", {"alb.sg_alb_to_ecs": "F"}
    ),
    "alb-idle-timeout": Expect(
        "alb.idle_timeout",
        "elbv2.raise_idle_timeout",
        {"alb.idle_timeout": "F", "alb.http_5xx": "F"},
    ),
    "alb-no-igw": Expect("alb.internet_gateway", None, {"alb.internet_gateway": "F"}),
    "alb-listener-closed": Expect("alb.listener_ingress", None, {"alb.listener_ingress": "F"}),
    # -- network
    "nat-failed": Expect(
        "network.nat_gateways",
        "ec2.reroute_via_nat",
        {"network.nat_gateways": "F", "network.private_routes": "F"},
    ),
    "nat-port-exhaustion": Expect("network.nat_gateways", None, {"network.nat_gateways": "F"}),
    "route-blackhole": Expect("network.private_routes", None, {"network.private_routes": "F"}),
    "flow-logs-failing": Expect("network.flow_logs", None, {"network.flow_logs": "F"}),
    "route-deleted": Expect(
        "network.private_routes",
        "ec2.restore_route",
        {"network.private_routes": "F"},
        changed_by="role/AWSReservedSSO_AdministratorAccess_0a1b2c3d4e5f6789 (session bob@example.com)",
    ),
    # -- WAF
    "waf-rate-limit": Expect(
        "waf.rate_limit",
        "wafv2.raise_rate_limit",
        {"waf.rate_limit": "F", "waf.blocked_requests": "F", "waf.sampled_blocks": "W"},
    ),
    "waf-rule-changed": Expect(
        "waf.rate_limit",
        "wafv2.raise_rate_limit",  # the undo: back to the 2000 it was before carol's change
        {"waf.rate_limit": "F"},
        changed_by="user/carol",
    ),
    "waf-false-positive": Expect(
        "waf.blocked_requests", None, {"waf.blocked_requests": "F", "waf.sampled_blocks": "W"}
    ),
    # -- performance
    "perf-slow-responses": Expect(
        "perf.ecs_cpu", "ecs.scale_service", {"perf.target_response_time": "F", "perf.ecs_cpu": "F"}
    ),
    # -- deployments
    "deploy-state-lock": Expect(
        "deploy.state_lock", "terraform.release_state_lock", {"deploy.state_lock": "F"}
    ),
    "deploy-s3-lockfile": Expect("deploy.state_lock", None, {"deploy.state_lock": "F"}),
    "deploy-rollout-failed": Expect(
        "deploy.ecs_rollout", "ecs.rollback_service", {"deploy.ecs_rollout": "F"}
    ),
    # -- alarms
    "alarms-pending-subscription": Expect(
        "alarms.sns_subscriptions", None, {"alarms.sns_subscriptions": "F"}
    ),
    "alarms-muted": Expect(
        "alarms.actions_enabled", "cloudwatch.enable_alarm_actions", {"alarms.actions_enabled": "F"}
    ),
    "alarms-false-positive": Expect(
        "alarms.in_alarm", "cloudwatch.disable_alarm_actions", {"alarms.in_alarm": "F"}
    ),
    # -- compound faults: one cause, several layers
    "outage-db-down": Expect(
        "db.cluster_status",
        "rds.start_cluster",
        {
            "db.cluster_status": "F",
            "ecs.container_errors": "F",
            "ecs.stopped_tasks": "F",
            "alb.targets_healthy": "F",
            "alb.http_5xx": "F",
        },
    ),
    "nat-failed-image-pull": Expect(
        "network.nat_gateways",
        "ec2.reroute_via_nat",
        {"network.nat_gateways": "F", "ecs.stopped_tasks": "F", "ecs.service_running": "F"},
    ),
    "sg-revoked-unhealthy": Expect(
        "alb.sg_alb_to_ecs",
        "ec2.restore_ingress",  # the undo: exactly the permissions alice revoked
        {"alb.sg_alb_to_ecs": "F", "alb.targets_healthy": "F", "alb.http_5xx": "F"},
        changed_by="user/alice",
    ),
    "capacity-pinned-slow": Expect(
        "db.serverless_capacity",
        "rds.raise_max_capacity",
        {"db.serverless_capacity": "F", "db.cpu": "F", "perf.target_response_time": "F"},
    ),
    "bad-deploy": Expect(
        "deploy.ecs_rollout",
        "ecs.rollback_service",
        {"deploy.ecs_rollout": "F", "ecs.stopped_tasks": "F", "ecs.container_errors": "F"},
        changed_by="role/deployer (session github-actions-deploy)",
    ),
    "oom-crashloop": Expect(
        "ecs.memory_utilization",
        "ecs.increase_task_memory",
        {"ecs.memory_utilization": "F", "ecs.stopped_tasks": "F"},
    ),
    # -- benign noise: nothing fails
    "healthy": CONTROL,
    "rolling-deployment": Expect(None, None, {"ecs.stopped_tasks": "W"}),
    "autoscaling-scale-in": CONTROL,
    "old-service-event": CONTROL,
    "few-app-errors": Expect(None, None, {"ecs.container_errors": "W"}),
    "scanner-noise": CONTROL,
    "waf-sampling-off": CONTROL,
    "sg-by-cidr": CONTROL,
    "sg-by-prefix-list": CONTROL,
    "quiet-reader-busy-writer": CONTROL,
    "deleted-nat-history": CONTROL,
    "main-route-table": CONTROL,
    "other-env-lock": CONTROL,
    "long-apply": Expect(None, None, {"deploy.state_lock": "W"}),
    "unrelated-writes": CONTROL,
}
