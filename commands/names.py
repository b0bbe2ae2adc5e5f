"""Resource names by the guide's convention, each overridable by its own setting (DESIGN.md §3)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Settings


@dataclass(frozen=True)
class Names:
    project: str
    environment: str
    ecs_cluster: str
    ecs_service: str
    log_group: str
    ecr_repository: str
    task_execution_role: str
    aurora_cluster: str
    waf_acl: str
    alarm_prefix: str
    flow_logs_role: str
    flow_logs_log_group_prefix: str

    @classmethod
    def from_settings(cls, s: Settings, environment: str | None = None) -> Names:
        env = environment or s.environment
        base = f"{s.project}-{env}"
        return cls(
            project=s.project,
            environment=env,
            ecs_cluster=s.ecs_cluster or base,
            ecs_service=s.ecs_service or f"{base}-api",
            log_group=s.log_group or f"/ecs/{base}/api",
            ecr_repository=s.ecr_repository or f"{base}-api",
            task_execution_role=s.task_execution_role or f"{base}-ecs-task-execution-role",
            aurora_cluster=s.aurora_cluster or base,
            waf_acl=s.waf_acl or f"{base}-waf",
            alarm_prefix=s.alarm_prefix or f"{base}-",
            flow_logs_role=s.flow_logs_role or f"{base}-vpc-flow-logs-role",
            flow_logs_log_group_prefix=s.flow_logs_log_group_prefix or f"/aws/vpc/{s.project}",
        )

    def with_outputs(self, s: Settings, outputs: Mapping[str, Any]) -> Names:
        """The names the Terraform outputs prove: the Aurora cluster is the one whose writer
        endpoint ``aurora_cluster_endpoint`` is (``<id>.cluster-<hash>.<region>.rds…``), when
        ``OMNI_AURORA_CLUSTER`` does not say otherwise; a stack need not follow the convention."""
        cluster = cluster_of_endpoint(outputs.get("aurora_cluster_endpoint"))
        if cluster and not s.aurora_cluster:
            return dataclasses.replace(self, aurora_cluster=cluster)
        return self


_WRITER_ENDPOINT = re.compile(r"^([a-z][a-z0-9-]{0,62})\.cluster-(?!ro-|custom-)[a-z0-9]+\.", re.I)


def cluster_of_endpoint(endpoint: Any) -> str | None:
    """The cluster identifier in an Aurora writer endpoint (not a reader or custom one)."""
    if not isinstance(endpoint, str):
        return None
    m = _WRITER_ENDPOINT.match(endpoint.strip())
    return m.group(1).lower() if m else None
