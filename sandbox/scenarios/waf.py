"""WAF Blocking Legitimate Traffic (guide §5)."""

from __future__ import annotations

from ..stack import Stack
from . import scenario
from ._faults import waf_blocks, waf_samples


@scenario(
    "waf-rate-limit",
    "The rate-based rule blocks a busy legitimate client (guide: Rate Limiting Too Aggressive).",
    area="waf",
    alarm="waf-blocked-high",
)
def waf_rate(stack: Stack) -> None:
    metric = stack.extra["waf_metrics"]["rate"]
    waf_blocks(stack, metric, [0.0] * 11 + [1800.0])
    waf_samples(
        stack,
        metric,
        "RateLimit",
        [("203.0.113.10", "/api/v1/sessions")] * 60 + [("198.51.100.7", "/api/v1/patients")] * 5,
    )


@scenario(
    "waf-false-positive",
    "A managed rule blocks valid uploads (guide: False Positive from Managed Rule).",
    area="waf",
    alarm="waf-blocked-high",
)
def waf_fp(stack: Stack) -> None:
    metric = stack.extra["waf_metrics"]["common"]
    waf_blocks(stack, metric, [2.0] * 11 + [400.0])
    waf_samples(
        stack,
        metric,
        "SizeRestrictions_BODY",
        [(f"198.51.100.{i % 40}", "/api/v1/documents/upload") for i in range(80)],
    )


@scenario(
    "waf-rule-changed",
    "Someone lowered the rate-based rule's limit from 2000 to 100: the busiest legitimate "
    "clients are blocked.",
    area="waf",
    alarm="waf-blocked-high",
)
def waf_rule_changed(stack: Stack) -> None:
    from .. import cloudtrail

    waf = stack.client("wafv2")
    arn = stack.outputs["waf_web_acl_arn"]
    name, acl_id = arn.split("/")[-2], arn.split("/")[-1]
    current = waf.get_web_acl(Name=name, Scope="REGIONAL", Id=acl_id)
    acl = current["WebACL"]
    rules = acl["Rules"]
    for rule in rules:
        if "RateBasedStatement" in rule["Statement"]:
            rule["Statement"]["RateBasedStatement"]["Limit"] = 100
    waf.update_web_acl(
        Name=name,
        Scope="REGIONAL",
        Id=acl_id,
        DefaultAction=acl["DefaultAction"],
        Rules=rules,
        VisibilityConfig=acl["VisibilityConfig"],
        LockToken=current["LockToken"],
    )
    cloudtrail.record(
        stack,
        "UpdateWebACL",
        "wafv2.amazonaws.com",
        who="carol",
        resources=[("AWS::WAFv2::WebACL", name)],
        request={
            "name": name,
            "scope": "REGIONAL",
            "id": acl_id,
            "lockToken": current["LockToken"],
            "rules": cloudtrail.waf_rules(100),
        },
        response={"nextLockToken": "6f1c"},
        minutes_ago=18,
    )
    metric = stack.extra["waf_metrics"]["rate"]
    waf_blocks(stack, metric, [0.0] * 8 + [650.0] * 4)
    waf_samples(
        stack,
        metric,
        "RateLimit",
        [(f"198.51.100.{i % 12}", "/api/v1/appointments") for i in range(90)],
    )
