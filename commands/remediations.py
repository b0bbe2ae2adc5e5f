"""The catalogue of fixes (DESIGN.md §5): id, risk, the exact AWS call, and the Terraform change.

A finding proposes a fix with :func:`propose`; the plan shown in Slack and in the CLI is
rendered from the catalogue entry and the finding's parameters, so what a responder reads is
exactly the call that would run.  Executing fixes (buttons, roles, approval) builds on this
catalogue; a fix is reachable only from the finding that proposed it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .models import Remediation, Risk


@dataclass(frozen=True)
class FixSpec:
    id: str
    title: str
    risk: Risk
    api: str  # "service:Operation" of the call that changes AWS
    terraform: str  # what to change in Terraform so the next apply does not undo the fix


CATALOGUE: dict[str, FixSpec] = {
    spec.id: spec
    for spec in (
        FixSpec(
            "rds.start_cluster",
            "Start the Aurora cluster",
            Risk.LOW,
            "rds:StartDBCluster",
            "Nothing to change: a stopped cluster is not Terraform drift. If it was stopped on "
            "purpose (cost), make sure nothing stops it again during business hours.",
        ),
        FixSpec(
            "ecs.force_new_deployment",
            "Force a new ECS deployment",
            Risk.LOW,
            "ecs:UpdateService",
            "Nothing to change: the service definition is unchanged.",
        ),
        FixSpec(
            "elbv2.raise_idle_timeout",
            "Raise the ALB idle timeout",
            Risk.LOW,
            "elbv2:ModifyLoadBalancerAttributes",
            "Set `idle_timeout` on the aws_lb resource in the alb module to the new value.",
        ),
        FixSpec(
            "sns.send_test_notification",
            "Publish a test notification",
            Risk.LOW,
            "sns:Publish",
            "Nothing to change.",
        ),
        FixSpec(
            "cloudwatch.enable_alarm_actions",
            "Re-enable alarm actions",
            Risk.LOW,
            "cloudwatch:EnableAlarmActions",
            "Make sure `actions_enabled = true` on the aws_cloudwatch_metric_alarm resources.",
        ),
        FixSpec(
            "ecs.scale_service",
            "Scale the ECS service",
            Risk.MEDIUM,
            "ecs:UpdateService",
            "Set `desired_count` on the aws_ecs_service (or the autoscaling min) to the new value.",
        ),
        FixSpec(
            "ecs.increase_task_memory",
            "Register a task definition with more memory",
            Risk.MEDIUM,
            "ecs:RegisterTaskDefinition + ecs:UpdateService",
            "Set `memory` (and `cpu` if it changed) on the aws_ecs_task_definition in the ecs "
            "module to the new values.",
        ),
        FixSpec(
            "rds.raise_max_capacity",
            "Raise Aurora Serverless v2 max capacity",
            Risk.MEDIUM,
            "rds:ModifyDBCluster",
            "Set `aurora_max_capacity` in terraform.tfvars (serverlessv2_scaling_configuration "
            "max_capacity) to the new value.",
        ),
        FixSpec(
            "cloudwatch.disable_alarm_actions",
            "Mute alarm actions for a while",
            Risk.MEDIUM,
            "cloudwatch:DisableAlarmActions",
            "Nothing to change for a temporary mute; to change the alarm for good, edit its "
            "threshold in modules/alarms/main.tf.",
        ),
        FixSpec(
            "ec2.allow_ecs_to_aurora",
            "Allow the ECS tasks to reach Aurora",
            Risk.HIGH,
            "ec2:AuthorizeSecurityGroupIngress",
            "Restore `aws_security_group_rule.aurora_from_ecs` (ingress 5432 from the ECS "
            "security group) and apply.",
        ),
        FixSpec(
            "wafv2.allowlist_ip",
            "Allow-list an IP in WAF",
            Risk.HIGH,
            "wafv2:UpdateIPSet",
            "Add the address to the allow-list IP set in modules/waf/main.tf.",
        ),
        FixSpec(
            "wafv2.raise_rate_limit",
            "Raise the WAF rate limit",
            Risk.HIGH,
            "wafv2:UpdateWebACL",
            "Change `rate_based_statement.limit` in modules/waf/main.tf to the new value.",
        ),
        FixSpec(
            "terraform.release_state_lock",
            "Release the stale Terraform state lock",
            Risk.HIGH,
            "dynamodb:DeleteItem (conditional on LockID and Info)",
            "Nothing to change; equivalent to `terraform force-unlock <LOCK_ID>`.",
        ),
    )
}


def propose(fix_id: str, **params: Any) -> Remediation:
    """A finding's proposal of a catalogued fix with its exact parameters."""
    spec = CATALOGUE[fix_id]
    return Remediation(id=spec.id, title=spec.title, risk=spec.risk, params=params)


def describe_call(remediation: Remediation) -> str:
    """The exact call a remediation makes: ``rds:StartDBCluster {"DBClusterIdentifier": …}``."""
    spec = CATALOGUE[remediation.id]
    return f"{spec.api} {json.dumps(remediation.params, sort_keys=True, default=str)}"


def terraform_hint(remediation: Remediation) -> str:
    return CATALOGUE[remediation.id].terraform
