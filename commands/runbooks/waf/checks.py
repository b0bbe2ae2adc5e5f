"""WAF Blocking Legitimate Traffic (guide §5)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from ...context import CheckContext
from ...models import Finding, Status
from ...registry import check

SPIKE_FACTOR = 5.0
SPIKE_MIN = 50


def _rules(acl: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": r["Name"],
            "metric": r.get("VisibilityConfig", {}).get("MetricName", r["Name"]),
            "rate_limit": (r.get("Statement", {}).get("RateBasedStatement") or {}).get("Limit"),
            "window_s": (r.get("Statement", {}).get("RateBasedStatement") or {}).get(
                "EvaluationWindowSec", 300
            ),
        }
        for r in acl.get("Rules", [])
    ]


def _blocked(ctx: CheckContext, acl: dict[str, Any]) -> dict[str, list[float]]:
    """BlockedRequests per rule metric, 5-minute sums over the last hour, oldest first."""
    rules = _rules(acl)
    series = ctx.gather(
        *[
            (
                lambda m=r["metric"]: ctx.metric(
                    "AWS/WAFV2",
                    "BlockedRequests",
                    {"WebACL": acl["Name"], "Region": ctx.region, "Rule": m},
                    ("Sum",),
                    period=300,
                )
            )
            for r in rules
        ]
    )
    return {
        r["metric"]: [float(p.get("Sum", 0)) for p in points]
        for r, points in zip(rules, series, strict=True)
    }


@check("waf.blocked_requests", title="WAF blocked requests by rule")
def blocked_requests(ctx: CheckContext) -> Finding:
    acl = ctx.web_acl()
    by_rule = _blocked(ctx, acl)
    rows: list[dict[str, Any]] = []
    spikes: list[str] = []
    for metric, sums in by_rule.items():
        total = sum(sums)
        last = sums[-1] if sums else 0.0
        baseline = (sum(sums[:-1]) / max(len(sums) - 1, 1)) if len(sums) > 1 else 0.0
        rows.append(
            {
                "rule": metric,
                "blocked_1h": total,
                "last_5min": last,
                "baseline_per_5min": round(baseline, 1),
            }
        )
        if last >= SPIKE_MIN and last >= SPIKE_FACTOR * max(baseline, 1.0):
            spikes.append(metric)
    rows.sort(key=lambda r: -float(r["blocked_1h"]))
    evidence = {"web_acl": acl["Name"], "by_rule": rows}
    if spikes:
        top = next(r for r in rows if r["rule"] in spikes)
        return ctx.finding(
            Status.FAIL,
            f"WAF blocks spiking on {top['rule']}: {top['last_5min']:.0f} in 5 min",
            f"Against a baseline of {top['baseline_per_5min']} per 5 min. If users see 403s, see the sampled blocks and the rate limit.",
            evidence,
        )
    total = sum(r["blocked_1h"] for r in rows)
    if total:
        return ctx.finding(
            Status.OK, f"{total:.0f} requests blocked in the last hour, no spike", "", evidence
        )
    return ctx.finding(Status.OK, "No request blocked in the last hour", "", evidence)


@check("waf.sampled_blocks", title="Sampled blocked requests")
def sampled_blocks(ctx: CheckContext) -> Finding:
    acl = ctx.web_acl()
    window = {"StartTime": ctx.now - timedelta(hours=1), "EndTime": ctx.now}
    rules = _rules(acl)
    responses = ctx.gather(
        *[
            (
                lambda m=r["metric"]: ctx.aws.call(
                    "wafv2",
                    "get_sampled_requests",
                    WebAclArn=acl["ARN"],
                    RuleMetricName=m,
                    Scope="REGIONAL",
                    TimeWindow=window,
                    MaxItems=100,
                )
            )
            for r in rules
        ]
    )
    uris: Counter[str] = Counter()
    ips: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    for rule, response in zip(rules, responses, strict=True):
        for sample in response.get("SampledRequests", []):
            if str(sample.get("Action", "")).upper() != "BLOCK":
                continue
            weight = int(sample.get("Weight", 1))
            request = sample.get("Request", {})
            uris[str(request.get("URI", "?"))] += weight
            ips[str(request.get("ClientIP", "?"))] += weight
            by_rule[str(sample.get("RuleNameWithinRuleGroup") or rule["name"])] += weight
    evidence = {
        "top_uris": uris.most_common(5),
        "top_ips": ips.most_common(5),
        "top_rules": by_rule.most_common(5),
    }
    total = sum(ips.values())
    if not total:
        return ctx.finding(
            Status.OK, "No blocked request in the samples of the last hour", "", evidence
        )
    ip, n = ips.most_common(1)[0]
    top_rule, _ = by_rule.most_common(1)[0]
    remediations = []
    if n >= 0.5 * total and n >= 10 and ":" not in ip:
        remediations.append(
            ctx.propose(
                "wafv2.allowlist_ip",
                IPSetName=f"{ctx.names.project}-whitelist",
                Scope="REGIONAL",
                Address=f"{ip}/32",
            )
        )
    return ctx.finding(
        Status.WARN,
        f"{total} sampled blocks; top rule {top_rule}, top IP {ip} ({n})",
        f"Top URI {uris.most_common(1)[0][0]}. If these are legitimate users, allow-list the address or add a rule exclusion (guide §5).",
        evidence,
        remediations,
    )


@check("waf.rate_limit", title="WAF rate limit vs observed traffic")
def rate_limit(ctx: CheckContext) -> Finding:
    acl = ctx.web_acl()
    rate_rules = [r for r in _rules(acl) if r["rate_limit"]]
    if not rate_rules:
        return ctx.finding(
            Status.SKIPPED, "No rate-based rule in the web ACL", "", {"web_acl": acl["Name"]}
        )
    by_rule = _blocked(ctx, acl)
    rows = []
    for r in rate_rules:
        sums = by_rule.get(r["metric"], [])
        rows.append(
            {
                "rule": r["name"],
                "limit": r["rate_limit"],
                "window_s": r["window_s"],
                "blocked_1h": sum(sums),
                "peak_blocked_5min": max(sums, default=0.0),
            }
        )
    evidence = {"web_acl": acl["Name"], "rate_rules": rows}
    hit = [r for r in rows if r["peak_blocked_5min"] >= SPIKE_MIN]
    if hit:
        r = hit[0]
        return ctx.finding(
            Status.FAIL,
            f"Rate limit {r['limit']} on {r['rule']} is blocking traffic ({r['peak_blocked_5min']:.0f} in 5 min at peak)",
            "Guide: raise rate_based_statement.limit temporarily (2000 → 5000).",
            evidence,
            [
                ctx.propose(
                    "wafv2.raise_rate_limit",
                    Name=acl["Name"],
                    Id=acl["Id"],
                    Scope="REGIONAL",
                    RuleName=r["rule"],
                    Limit=int(r["limit"] * 2.5),
                )
            ],
        )
    if any(r["peak_blocked_5min"] >= 10 for r in rows):
        return ctx.finding(Status.WARN, "The rate limit is blocking some requests", "", evidence)
    return ctx.finding(
        Status.OK, f"Rate limit {rows[0]['limit']} not reached in the last hour", "", evidence
    )
