"""What moto lacks for the guide, taught to it in the process that runs it.

``wafv2.get_sampled_requests`` answers from :data:`SAMPLED_REQUESTS` in the documented shape
(up to ``MaxItems`` samples, ``PopulationSize``, the ``TimeWindow`` used, nothing for a rule
whose sampling is off); a route to a NAT gateway that failed or was deleted reports
``blackhole``, as AWS does; ``ecs.list_tasks`` pages at 100 (``maxResults``, ``nextToken``), as
ECS does, where moto returns every task at once; ``ecs.update_service`` to another task
definition starts a deployment of it (PRIMARY, the others ACTIVE), where moto only swaps the
revision.  :func:`backend` reaches moto's backend objects, which is how the
scenarios break things that the API cannot.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stack import Stack

# (web ACL ARN, rule metric name) → samples, filled by the WAF scenarios
SAMPLED_REQUESTS: dict[tuple[str, str], list[dict[str, Any]]] = {}
# (web ACL ARN, rule metric name) → the population the samples were taken from
POPULATION: dict[tuple[str, str], int] = {}
_EXTENDED = False


def install_moto_extensions() -> None:
    global _EXTENDED
    if _EXTENDED:
        return
    from moto.core.responses import ActionResult
    from moto.ec2.models.route_tables import Route
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.wafv2.responses import WAFV2Response

    from . import cloudtrail

    def get_sampled_requests(self: Any) -> Any:
        body = json.loads(self.body or "{}")
        key = (body.get("WebAclArn", ""), body.get("RuleMetricName", ""))
        samples = SAMPLED_REQUESTS.get(key, [])
        window = body.get("TimeWindow", {})
        return (
            200,
            {"Content-Type": "application/x-amz-json-1.1"},
            json.dumps(
                {
                    "SampledRequests": samples[: int(body.get("MaxItems", 100))],
                    "PopulationSize": POPULATION.get(key, len(samples)),
                    "TimeWindow": window,
                }
            ),
        )

    def state(self: Any) -> str:
        nat = getattr(self, "nat_gateway", None)
        if getattr(self, "_omni_blackhole", False) or (
            nat is not None and getattr(nat, "state", "available") in ("failed", "deleted")
        ):
            return "blackhole"
        return "active"

    unpaged = EC2ContainerServiceResponse.list_tasks

    def list_tasks(self: Any) -> Any:
        answer: Any = unpaged(self).result  # moto's answer: every task
        arns = answer["taskArns"]
        size = min(int(self._get_param("maxResults") or 100), 100)
        start = int(self._get_param("nextToken") or 0)
        page: dict[str, Any] = {"taskArns": arns[start : start + size]}
        if start + size < len(arns):
            page["nextToken"] = str(start + size)
        return ActionResult(page)

    EC2ContainerServiceResponse.list_tasks = list_tasks  # type: ignore[method-assign]

    from datetime import UTC, datetime

    from moto.ecs.models import EC2ContainerServiceBackend

    plain_update = EC2ContainerServiceBackend.update_service

    def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
        name = str(service_properties.get("service", "")).split("/")[-1]
        svc = next((s for k, s in self.services.items() if k.endswith(f":{name}")), None)
        before = svc.task_definition if svc is not None else None
        updated = plain_update(self, dict(service_properties))
        if svc is not None and updated.task_definition != before and updated.deployments:
            now = datetime.now(UTC)
            for d in updated.deployments:
                if d.get("status") == "PRIMARY":
                    d["status"] = "ACTIVE"
            updated.deployments.insert(
                0,
                {
                    **updated.deployments[0],
                    "id": f"ecs-svc/{int(now.timestamp() * 1e6)}",
                    "status": "PRIMARY",
                    "taskDefinition": updated.task_definition,
                    "rolloutState": "IN_PROGRESS",
                    "rolloutStateReason": "ECS deployment in progress.",
                    "runningCount": 0,
                    "pendingCount": updated.desired_count,
                    "failedTasks": 0,
                    "createdAt": now,
                    "updatedAt": now,
                },
            )
        return updated

    EC2ContainerServiceBackend.update_service = update_service  # type: ignore[method-assign]
    WAFV2Response.get_sampled_requests = get_sampled_requests  # type: ignore[attr-defined]
    Route.state = property(state)  # type: ignore[assignment,method-assign]
    cloudtrail.install()
    _EXTENDED = True


def backend(service: str, stack: Stack) -> Any:
    """moto's backend of ``service`` for the stack's account and region."""
    import moto.backends

    backends: Any = moto.backends.get_backend(service)  # type: ignore[call-overload]
    return backends[stack.extra["account"]][stack.region]
