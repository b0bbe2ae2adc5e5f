"""WAF Blocking Legitimate Traffic (guide §5).

Judged as WAF answers (notes/aws-real-shapes.md): ``get_sampled_requests`` returns up to 500
samples from the first 5,000 matching requests of the window, with the ``PopulationSize`` and
the ``TimeWindow`` it actually used, both reported; a rule whose sampling is off returns nothing,
which is "unknown", not "no blocks".  Background scanner traffic blocked by managed rules is
normal: blocks whose samples are scanners' paths are noise, not a spike of user impact.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from typing import Any

from ...context import CheckContext
from ...models import Finding, Status
from ...registry import check

SPIKE_FACTOR = 5.0
SPIKE_MIN = 50
NOISE_SHARE = 0.8  # blocks at least this share scanner paths: noise
# What internet-wide scanners probe for (no application of ours serves these)
SCANNER = re.compile(
    r"(/\.env\b|/\.git\b|/\.aws\b|/wp-(admin|login|content|includes)\b|wp-login\.php|xmlrpc\.php|"
    r"/phpmyadmin|/pma\b|\.php\b|/cgi-bin/|/actuator\b|/boaform|/HNAP1|/server-status|"
    r"/vendor/phpunit|/solr/|/owa/|/autodiscover|/manager/html|/etc/passwd|\.\./|/shell\b|"
    r"/config\.json|/admin\.php|\.asp\b|\.aspx\b|/console\b)",
    re.I,
)


def _rules(acl: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": r["Name"],
            "metric": r.get("VisibilityConfig", {}).get("MetricName", r["Name"]),
            "sampled": bool(r.get("VisibilityConfig", {}).get("SampledRequestsEnabled", True)),
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


def _samples(ctx: CheckContext, acl: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per rule metric: the blocked samples of the last hour, the population they come from and
    the window WAF used; ``sampling: off`` for a rule that keeps no samples."""
    window = {"StartTime": ctx.now - timedelta(hours=1), "EndTime": ctx.now}
    rules = _rules(acl)
    sampled = [r for r in rules if r["sampled"]]
    answers = ctx.gather(
        *[
            (
                lambda m=r["metric"]: ctx.aws.call(
                    "wafv2",
                    "get_sampled_requests",
                    WebAclArn=acl["ARN"],
                    RuleMetricName=m,
                    Scope="REGIONAL",
                    TimeWindow=window,
                    MaxItems=500,
                )
            )
            for r in sampled
        ]
    )
    out: dict[str, dict[str, Any]] = {
        r["metric"]: {"rule": r["name"], "sampling": "off"} for r in rules if not r["sampled"]
    }
    for rule, answer in zip(sampled, answers, strict=True):
        blocks = [
            s
            for s in answer.get("SampledRequests", [])
            if str(s.get("Action", "")).upper() == "BLOCK"
        ]
        used = answer.get("TimeWindow") or {}
        out[rule["metric"]] = {
            "rule": rule["name"],
            "sampling": "on",
            "samples": blocks,
            "population": answer.get("PopulationSize"),
            "window": {k: str(v) for k, v in used.items()},
        }
    return out


def _weight(samples: list[dict[str, Any]], pick: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for s in samples:
        counts[str(pick(s))] += int(s.get("Weight", 1))
    return counts


def _uri(sample: dict[str, Any]) -> str:
    return str((sample.get("Request") or {}).get("URI", "?"))


def scanner_share(samples: list[dict[str, Any]]) -> float:
    total = sum(int(s.get("Weight", 1)) for s in samples)
    if not total:
        return 0.0
    noise = sum(int(s.get("Weight", 1)) for s in samples if SCANNER.search(_uri(s)))
    return noise / total


@check("waf.blocked_requests", title="WAF blocked requests by rule")
def blocked_requests(ctx: CheckContext) -> Finding:
    acl = ctx.web_acl()
    by_rule, samples = ctx.gather(lambda: _blocked(ctx, acl), lambda: _samples(ctx, acl))
    rows: list[dict[str, Any]] = []
    spikes: list[dict[str, Any]] = []
    for metric, sums in by_rule.items():
        last = sums[-1] if sums else 0.0
        baseline = (sum(sums[:-1]) / max(len(sums) - 1, 1)) if len(sums) > 1 else 0.0
        seen = samples.get(metric, {})
        noise = scanner_share(seen.get("samples", [])) if seen.get("sampling") == "on" else None
        row = {
            "rule": metric,
            "blocked_1h": sum(sums),
            "last_5min": last,
            "baseline_per_5min": round(baseline, 1),
            "sampling": seen.get("sampling"),
            "scanner_share": None if noise is None else round(noise, 2),
        }
        rows.append(row)
        if last >= SPIKE_MIN and last >= SPIKE_FACTOR * max(baseline, 1.0):
            spikes.append(row)
    rows.sort(key=lambda r: -float(r["blocked_1h"]))
    evidence: dict[str, Any] = {"web_acl": acl["Name"], "by_rule": rows}
    resources = [acl["Name"], acl.get("Id", "")]
    real = [s for s in spikes if s["scanner_share"] is None or s["scanner_share"] < NOISE_SHARE]
    if real:
        top = real[0]
        if top["sampling"] == "off":
            return ctx.finding(
                Status.WARN,
                f"WAF blocks spiking on {top['rule']}: {top['last_5min']:.0f} in 5 min (unknown what)",
                "The rule keeps no sampled requests (SampledRequestsEnabled is off), so what it "
                "blocks is unknown: turn sampling on to tell users from attackers.",
                evidence,
                resources=resources,
            )
        return ctx.finding(
            Status.FAIL,
            f"WAF blocks spiking on {top['rule']}: {top['last_5min']:.0f} in 5 min",
            f"Against a baseline of {top['baseline_per_5min']} per 5 min. If users see 403s, see "
            "the sampled blocks and the rate limit.",
            evidence,
            resources=resources,
        )
    total = sum(r["blocked_1h"] for r in rows)
    if spikes:
        return ctx.finding(
            Status.OK,
            f"{total:.0f} requests blocked in the last hour: scanners, as usual",
            f"The burst on {spikes[0]['rule']} is scanner traffic (paths no user asks for).",
            evidence,
        )
    if total:
        return ctx.finding(
            Status.OK, f"{total:.0f} requests blocked in the last hour, no spike", "", evidence
        )
    return ctx.finding(Status.OK, "No request blocked in the last hour", "", evidence)


@check("waf.sampled_blocks", title="Sampled blocked requests")
def sampled_blocks(ctx: CheckContext) -> Finding:
    acl = ctx.web_acl()
    samples = _samples(ctx, acl)
    seen = [s for s in samples.values() if s.get("sampling") == "on"]
    blocked = [b for s in seen for b in s["samples"]]
    unknown = sorted(s["rule"] for s in samples.values() if s.get("sampling") == "off")
    users = [b for b in blocked if not SCANNER.search(_uri(b))]
    uris = _weight(users, _uri)
    ips = _weight(users, lambda b: (b.get("Request") or {}).get("ClientIP", "?"))
    rules = _weight(users, lambda b: b.get("RuleNameWithinRuleGroup") or "")
    evidence: dict[str, Any] = {
        "window": next((s["window"] for s in seen if s.get("window")), {}),
        "population": {s["rule"]: s.get("population") for s in seen},
        "samples": len(blocked),
        "scanner_samples": len(blocked) - len(users),
        "top_uris": uris.most_common(5),
        "top_ips": ips.most_common(5),
        "top_rules": rules.most_common(5),
        "sampling_off": unknown,
    }
    total = sum(ips.values())
    if not total:
        if unknown:
            return ctx.finding(
                Status.OK,
                f"No user request in the samples; {len(unknown)} rule(s) keep no samples",
                f"Unknown for {', '.join(unknown)}: sampling is off there.",
                evidence,
            )
        note = "only scanners" if blocked else "none"
        return ctx.finding(
            Status.OK, f"Blocked requests in the samples of the last hour: {note}", "", evidence
        )
    ip, n = ips.most_common(1)[0]
    top_rule = rules.most_common(1)[0][0] or "a rule"
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
    population = sum(p or 0 for p in evidence["population"].values())
    return ctx.finding(
        Status.WARN,
        f"{total} sampled blocks of application paths; top rule {top_rule}, top IP {ip} ({n})",
        f"Top URI {uris.most_common(1)[0][0]}; {len(blocked)} samples of {population} matching "
        "requests. If these are legitimate users, allow-list the address or add a rule exclusion "
        "(guide §5).",
        evidence,
        remediations,
        resources=[acl["Name"]],
    )


@check("waf.rate_limit", title="WAF rate limit vs observed traffic")
def rate_limit(ctx: CheckContext) -> Finding:
    acl = ctx.web_acl()
    rate_rules = [r for r in _rules(acl) if r["rate_limit"]]
    if not rate_rules:
        return ctx.finding(
            Status.SKIPPED, "No rate-based rule in the web ACL", "", {"web_acl": acl["Name"]}
        )
    by_rule, samples = ctx.gather(lambda: _blocked(ctx, acl), lambda: _samples(ctx, acl))
    rows = []
    for r in rate_rules:
        sums = by_rule.get(r["metric"], [])
        seen = samples.get(r["metric"], {})
        rows.append(
            {
                "rule": r["name"],
                "limit": r["rate_limit"],
                "window_s": r["window_s"],
                "blocked_1h": sum(sums),
                "peak_blocked_5min": max(sums, default=0.0),
                "scanner_share": round(scanner_share(seen.get("samples", [])), 2)
                if seen.get("sampling") == "on"
                else None,
            }
        )
    evidence = {"web_acl": acl["Name"], "rate_rules": rows}
    hit = [
        r
        for r in rows
        if r["peak_blocked_5min"] >= SPIKE_MIN
        and (r["scanner_share"] is None or r["scanner_share"] < NOISE_SHARE)
    ]
    if hit:
        r = hit[0]
        return ctx.finding(
            Status.FAIL,
            f"Rate limit {r['limit']} on {r['rule']} is blocking traffic "
            f"({r['peak_blocked_5min']:.0f} in 5 min at peak)",
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
            resources=[acl["Name"], acl["Id"]],
        )
    if any(r["peak_blocked_5min"] >= 10 for r in rows):
        return ctx.finding(Status.WARN, "The rate limit is blocking some requests", "", evidence)
    return ctx.finding(
        Status.OK, f"Rate limit {rows[0]['limit']} not reached in the last hour", "", evidence
    )
