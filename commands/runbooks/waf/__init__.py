"""WAF Blocking Legitimate Traffic (guide §5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...areas import area
from ...graphs import SERIES_COLOURS, GraphSpec, Panel, Series
from ...routing import Route

if TYPE_CHECKING:
    from ...context import CheckContext


def graph(ctx: CheckContext) -> GraphSpec:
    """Blocked requests, one series per rule."""
    acl = ctx.web_acl()
    rules = [
        str(r.get("VisibilityConfig", {}).get("MetricName") or r.get("Name"))
        for r in acl.get("Rules", [])
    ]
    series = tuple(
        Series(
            rule,
            "AWS/WAFV2",
            "BlockedRequests",
            {"WebACL": str(acl["Name"]), "Region": ctx.region, "Rule": rule},
            "Sum",
        )
        for rule in rules[: len(SERIES_COLOURS)]
    )
    return GraphSpec(
        "waf", f"WAF {acl['Name']}", (Panel("Blocked requests by rule (per minute)", series),)
    )


AREA = area(
    "waf",
    title="WAF",
    services=("wafv2", "cloudwatch"),
    routes=[
        Route(namespace="AWS/WAFV2", metric="BlockedRequests"),
        Route(namespace="AWS/WAFV2"),
        Route(name=r"waf|blocked"),
    ],
    links={
        "waf.rate_limit": ("waf.blocked_requests", "waf.sampled_blocks"),
        "waf.blocked_requests": ("waf.sampled_blocks",),
    },
    graph=graph,
    module=__name__,
    layer=4,
)
