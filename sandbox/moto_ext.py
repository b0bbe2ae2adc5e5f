"""What moto lacks for the guide, taught to it in the process that runs it.

``wafv2.get_sampled_requests`` answers from :data:`SAMPLED_REQUESTS` in the documented shape
(up to ``MaxItems`` samples, ``PopulationSize``, the ``TimeWindow`` used, nothing for a rule
whose sampling is off); a route to a NAT gateway that failed or was deleted reports
``blackhole``, as AWS does.  :func:`backend` reaches moto's backend objects, which is how the
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
    from moto.ec2.models.route_tables import Route
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

    WAFV2Response.get_sampled_requests = get_sampled_requests  # type: ignore[attr-defined]
    Route.state = property(state)  # type: ignore[assignment,method-assign]
    cloudtrail.install()
    _EXTENDED = True


def backend(service: str, stack: Stack) -> Any:
    """moto's backend of ``service`` for the stack's account and region."""
    import moto.backends

    backends: Any = moto.backends.get_backend(service)  # type: ignore[call-overload]
    return backends[stack.extra["account"]][stack.region]
