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
