"""Load Balancer Problems (guide §2): 502/503 errors, ALB not receiving traffic."""

from __future__ import annotations

import math
from typing import Any

from ...context import CheckContext
from ...ingress import admission, subnet_cidrs
from ...models import Finding, Status
from ...registry import check


def _target_health(ctx: CheckContext) -> list[dict[str, Any]]:
    groups = ctx.target_groups()
    healths = ctx.gather(
        *[
            (
                lambda arn=tg["TargetGroupArn"]: ctx.aws.call(
                    "elbv2", "describe_target_health", TargetGroupArn=arn
                )
            )
            for tg in groups
        ]
    )
    return [
        {"group": tg, "targets": h.get("TargetHealthDescriptions", [])}
        for tg, h in zip(groups, healths, strict=True)
    ]


@check("alb.targets_healthy", title="Target group health")
def targets_healthy(ctx: CheckContext) -> Finding:
    rows, total, healthy = [], 0, 0
    for item in _target_health(ctx):
        tg = item["group"]
        for d in item["targets"]:
            state = d.get("TargetHealth", {})
            total += 1
            healthy += state.get("State") == "healthy"
            rows.append(
                {
                    "target_group": tg["TargetGroupName"],
                    "target": f"{d['Target']['Id']}:{d['Target'].get('Port', '')}",
                    "state": state.get("State"),
                    "reason": state.get("Reason"),
                    "description": state.get("Description"),
                }
            )
    bad = [r for r in rows if r["state"] not in ("healthy", "draining", "initial")]
    evidence = {"healthy": healthy, "total": total, "unhealthy": bad[:10]}
    if total == 0:
        return ctx.finding(
            Status.FAIL,
            "No targets registered behind the ALB",
            "The ALB answers 503: no ECS task is registered in its target groups.",
            evidence,
            resources=[tg["TargetGroupArn"] for tg in ctx.target_groups()],
        )
    if healthy == 0:
        first = bad[0] if bad else rows[0]
        return ctx.finding(
            Status.FAIL,
            f"All {total} ALB targets are unhealthy",
            f"{first['reason']}: {first['description']}. The ALB answers 502/503.",
            evidence,
            resources=[tg["TargetGroupArn"] for tg in ctx.target_groups()],
        )
    if bad:
        return ctx.finding(
            Status.WARN,
            f"{len(bad)} of {total} ALB targets unhealthy",
            f"{bad[0]['reason']}: {bad[0]['description']}",
            evidence,
        )
    return ctx.finding(Status.OK, f"All {total} ALB targets healthy", "", evidence)


@check("alb.health_check_path", title="Health check configuration")
def health_check_path(ctx: CheckContext) -> Finding:
    items = _target_health(ctx)
    configs = [
        {
            "target_group": i["group"]["TargetGroupName"],
            "path": i["group"].get("HealthCheckPath"),
            "port": i["group"].get("HealthCheckPort"),
            "matcher": (i["group"].get("Matcher") or {}).get("HttpCode"),
            "interval_s": i["group"].get("HealthCheckIntervalSeconds"),
            "timeout_s": i["group"].get("HealthCheckTimeoutSeconds"),
        }
        for i in items
    ]
    # one row per group, path and answer, with how many targets gave it: ten targets failing
    # the same way are one fact, not ten identical rows
    failing: dict[tuple[str, str | None, str | None], int] = {}
    for i in items:
        for d in i["targets"]:
            health = d.get("TargetHealth", {})
            if health.get("Reason") in {
                "Target.ResponseCodeMismatch",
                "Target.Timeout",
                "Target.FailedHealthChecks",
            }:
                key = (
                    i["group"]["TargetGroupName"],
                    i["group"].get("HealthCheckPath"),
                    health.get("Description"),
                )
                failing[key] = failing.get(key, 0) + 1
    mismatch = [
        {"target_group": group, "path": path, "description": description, "targets": count}
        for (group, path, description), count in failing.items()
    ]
    evidence = {"health_checks": configs, "failing": mismatch[:5]}
    if mismatch:
        first = mismatch[0]
        return ctx.finding(
            Status.FAIL,
            f"Health check on {first['path']} is failing",
            f"{first['description']}. Fix the application's health endpoint or the health_check block in the alb module (then terraform apply).",
            evidence,
            resources=[str(i["group"]["TargetGroupArn"]) for i in items],
        )
    return ctx.finding(Status.OK, "Health checks answer as configured", "", evidence)


@check("alb.sg_alb_to_ecs", title="ALB → ECS security group rule")
def sg_alb_to_ecs(ctx: CheckContext) -> Finding:
    alb_sgs, ecs_sgs, svc, lb = ctx.gather(
        ctx.alb_security_group_ids, ctx.ecs_security_group_ids, ctx.ecs_service, ctx.load_balancer
    )
    ports = sorted(
        {
            int(ref["containerPort"])
            for ref in svc.get("loadBalancers", [])
            if ref.get("containerPort")
        }
    )
    if not ports:
        ports = sorted({int(tg["Port"]) for tg in ctx.target_groups() if tg.get("Port")})
    if not alb_sgs or not ecs_sgs or not ports:
        return ctx.finding(
            Status.SKIPPED,
            "ALB → ECS rule: security groups or port unknown",
            "Set alb_security_group_id and ecs_security_group_id outputs.",
            {"alb": alb_sgs, "ecs": ecs_sgs, "ports": ports},
        )
    alb_subnets = [z["SubnetId"] for z in lb.get("AvailabilityZones", []) if z.get("SubnetId")]
    groups, cidrs = ctx.gather(
        lambda: ctx.aws.call("ec2", "describe_security_groups", GroupIds=ecs_sgs).get(
            "SecurityGroups", []
        ),
        lambda: subnet_cidrs(ctx, alb_subnets),
    )
    found = {
        p: admission(ctx, groups, p, source_groups=set(alb_sgs), source_cidrs=cidrs) for p in ports
    }
    missing = [p for p, a in found.items() if not a.admitted]
    evidence: dict[str, Any] = {
        "alb_security_groups": alb_sgs,
        "ecs_security_groups": ecs_sgs,
        "alb_subnet_cidrs": cidrs,
        "container_ports": ports,
        "rules": [r for a in found.values() for r in a.rules],
    }
    if not missing:
        return ctx.finding(
            Status.OK, f"ALB can reach the tasks on port {', '.join(map(str, ports))}", "", evidence
        )
    port = missing[0]
    if found[port].rules:
        evidence["uncovered"] = found[port].uncovered
        return ctx.finding(
            Status.FAIL,
            f"ECS security group admits the ALB on {port} from only part of its subnets",
            f"No rule covers {', '.join(found[port].uncovered)}: that zone's health checks and "
            "requests time out (502/504).",
            evidence,
            resources=ecs_sgs,
        )
    return ctx.finding(
        Status.FAIL,
        f"ECS security group does not admit the ALB on port {port}",
        f"No ingress on {', '.join(ecs_sgs)} from {', '.join(alb_sgs)} or the ALB's subnets for "
        f"TCP {port}: health checks and requests time out (502/504).",
        evidence,
        [
            ctx.propose(
                "ec2.allow_alb_to_ecs",
                GroupId=ecs_sgs[0],
                SourceSecurityGroupId=alb_sgs[0],
                Port=port,
            )
        ],
        resources=ecs_sgs,
    )


_5XX = (
    "HTTPCode_ELB_5XX_Count",
    "HTTPCode_ELB_502_Count",
    "HTTPCode_ELB_503_Count",
    "HTTPCode_ELB_504_Count",
    "HTTPCode_Target_5XX_Count",
    "RequestCount",
)
_ELB_MEANING = {
    "HTTPCode_ELB_503_Count": "503: no healthy target to send requests to",
    "HTTPCode_ELB_502_Count": "502: targets closed the connection or sent a bad response",
    "HTTPCode_ELB_504_Count": "504: targets did not answer within the idle timeout",
}


@check("alb.http_5xx", title="5XX answers: the load balancer's own, or the application's")
def http_5xx(ctx: CheckContext) -> Finding:
    """``HTTPCode_ELB_5XX_Count`` (the load balancer's own 502/503/504) and
    ``HTTPCode_Target_5XX_Count`` (the application's) are different problems."""
    dims = {"LoadBalancer": ctx.alb_arn_suffix()}
    sums = dict(
        zip(
            _5XX,
            ctx.gather(
                *[
                    (
                        lambda m=m: sum(
                            float(p.get("Sum", 0))
                            for p in ctx.metric("AWS/ApplicationELB", m, dims, ("Sum",), minutes=15)
                        )
                    )
                    for m in _5XX
                ]
            ),
            strict=True,
        )
    )
    elb, target, requests = (
        sums["HTTPCode_ELB_5XX_Count"],
        sums["HTTPCode_Target_5XX_Count"],
        sums["RequestCount"],
    )
    total = elb + target
    evidence: dict[str, Any] = {
        "last_15min": {k: int(v) for k, v in sums.items()},
        "error_rate_pct": round(100 * total / requests, 2) if requests else None,
    }
    if total < 10:
        return ctx.finding(
            Status.OK, f"{int(total)} 5XX answers in the last 15 minutes", "", evidence
        )
    heavy = total >= 50 and (not requests or total / requests >= 0.01)
    status = Status.FAIL if heavy else Status.WARN
    if elb >= target:
        code = max(_ELB_MEANING, key=lambda m: sums[m])
        evidence["source"] = "load balancer"
        title = f"The load balancer answered {int(elb)} 5XX itself in 15 min"
        detail = f"Mostly {_ELB_MEANING[code]}." if sums[code] else "ELB 5XX without a breakdown."
    else:
        evidence["source"] = "application"
        title = f"The application answered {int(target)} 5XX in 15 min"
        detail = "The targets themselves returned 5XX: see the application's errors."
    if requests:
        detail += f" {evidence['error_rate_pct']}% of {int(requests)} requests."
    return ctx.finding(status, title, detail, evidence, resources=[dims["LoadBalancer"]])


@check("alb.idle_timeout", title="ALB idle timeout vs response time")
def idle_timeout(ctx: CheckContext) -> Finding:
    lb = ctx.load_balancer()
    attrs, points = ctx.gather(
        lambda: ctx.aws.call(
            "elbv2", "describe_load_balancer_attributes", LoadBalancerArn=lb["LoadBalancerArn"]
        ),
        lambda: ctx.metric(
            "AWS/ApplicationELB", "TargetResponseTime", {"LoadBalancer": ctx.alb_arn_suffix()}
        ),
    )
    values = {a["Key"]: a["Value"] for a in attrs.get("Attributes", [])}
    timeout = int(values.get("idle_timeout.timeout_seconds", 60))  # AWS's default when unset
    peak = max((float(p.get("Maximum", 0)) for p in points), default=0.0)
    evidence = {"idle_timeout_s": timeout, "max_target_response_time_s_1h": round(peak, 3)}
    if peak >= 0.9 * timeout:
        new = max(120, int(math.ceil(peak * 2 / 10) * 10))
        return ctx.finding(
            Status.FAIL,
            f"Responses take up to {peak:.0f}s against a {timeout}s idle timeout",
            "Slow responses are cut off by the ALB (504/502).",
            evidence,
            [
                ctx.propose(
                    "elbv2.raise_idle_timeout",
                    LoadBalancerArn=lb["LoadBalancerArn"],
                    IdleTimeoutSeconds=new,
                )
            ],
            resources=[lb["LoadBalancerArn"]],
        )
    return ctx.finding(
        Status.OK, f"Idle timeout {timeout}s, slowest response {peak:.1f}s", "", evidence
    )


@check("alb.state", title="Load balancer state and scheme")
def state(ctx: CheckContext) -> Finding:
    lb = ctx.load_balancer()
    code, scheme = lb.get("State", {}).get("Code"), lb.get("Scheme")
    evidence = {
        "name": lb.get("LoadBalancerName"),
        "state": code,
        "scheme": scheme,
        "dns_name": lb.get("DNSName"),
        "reason": lb.get("State", {}).get("Reason"),
    }
    if code == "active" and scheme == "internet-facing":
        return ctx.finding(Status.OK, "ALB is active and internet-facing", "", evidence)
    if code in ("provisioning", "active_impaired"):
        return ctx.finding(Status.WARN, f"ALB is {code}", "", evidence)
    if scheme != "internet-facing":
        return ctx.finding(
            Status.FAIL,
            f"ALB scheme is {scheme}",
            "An internal ALB cannot receive traffic from the internet.",
            evidence,
        )
    return ctx.finding(
        Status.FAIL, f"ALB state is {code}", str(evidence.get("reason") or ""), evidence
    )


def _routes_to_igw(tables: list[dict[str, Any]], subnet: str) -> bool:
    main = [t for t in tables if any(a.get("Main") for a in t.get("Associations", []))]
    own = [t for t in tables if any(a.get("SubnetId") == subnet for a in t.get("Associations", []))]
    for table in own or main:
        for route in table.get("Routes", []):
            if (
                route.get("DestinationCidrBlock") == "0.0.0.0/0"
                and str(route.get("GatewayId", "")).startswith("igw-")
                and route.get("State", "active") == "active"
            ):
                return True
    return False


@check("alb.public_subnets", title="ALB in public subnets")
def public_subnets(ctx: CheckContext) -> Finding:
    lb, tables = ctx.gather(ctx.load_balancer, ctx.route_tables)
    subnets = [z["SubnetId"] for z in lb.get("AvailabilityZones", [])]
    declared = set(ctx.output_list("public_subnet_ids"))
    not_declared = [s for s in subnets if declared and s not in declared]
    no_igw = [s for s in subnets if not _routes_to_igw(tables, s)]
    evidence = {
        "alb_subnets": subnets,
        "public_subnet_ids": sorted(declared),
        "not_public_per_outputs": not_declared,
        "no_route_to_igw": no_igw,
    }
    if not_declared or no_igw:
        bad = (not_declared or no_igw)[0]
        return ctx.finding(
            Status.FAIL,
            f"ALB is in a subnet that is not public ({bad})",
            "The ALB must sit in subnets whose route table sends 0.0.0.0/0 to an internet gateway.",
            evidence,
        )
    return ctx.finding(Status.OK, f"ALB is in {len(subnets)} public subnets", "", evidence)


@check("alb.internet_gateway", title="Internet gateway attached")
def internet_gateway(ctx: CheckContext) -> Finding:
    vpc = ctx.vpc_id()
    igws = ctx.aws.call(
        "ec2",
        "describe_internet_gateways",
        Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}],
    ).get("InternetGateways", [])
    attached = [
        g["InternetGatewayId"]
        for g in igws
        if any(
            a.get("VpcId") == vpc and a.get("State") in ("available", "attached")
            for a in g.get("Attachments", [])
        )
    ]
    evidence = {"vpc_id": vpc, "internet_gateways": attached}
    if not attached:
        return ctx.finding(
            Status.FAIL,
            f"No internet gateway attached to {vpc}",
            "Nothing from the internet reaches the ALB.",
            evidence,
        )
    return ctx.finding(Status.OK, f"Internet gateway {attached[0]} attached", "", evidence)


def _open_to_world(groups: list[dict[str, Any]], port: int) -> bool:
    for g in groups:
        for perm in g.get("IpPermissions", []):
            proto = perm.get("IpProtocol")
            covers = proto == "-1" or (
                proto in ("tcp", "6") and perm.get("FromPort", -1) <= port <= perm.get("ToPort", -1)
            )
            world = any(r.get("CidrIp") == "0.0.0.0/0" for r in perm.get("IpRanges", [])) or any(
                r.get("CidrIpv6") == "::/0" for r in perm.get("Ipv6Ranges", [])
            )
            if covers and world:
                return True
    return False


@check("alb.listener_ingress", title="ALB security group open on its listener ports")
def listener_ingress(ctx: CheckContext) -> Finding:
    lb, sgs = ctx.gather(ctx.load_balancer, ctx.alb_security_group_ids)
    if not sgs:
        return ctx.finding(Status.SKIPPED, "ALB security group unknown", "")
    listeners, groups = ctx.gather(  # independent: ask both at once
        lambda: ctx.aws.call(
            "elbv2", "describe_listeners", LoadBalancerArn=lb["LoadBalancerArn"]
        ).get("Listeners", []),
        lambda: ctx.aws.call("ec2", "describe_security_groups", GroupIds=sgs).get(
            "SecurityGroups", []
        ),
    )
    ports = sorted({int(listener["Port"]) for listener in listeners}) or [80, 443]
    closed = [p for p in ports if not _open_to_world(groups, p)]
    evidence = {"listener_ports": ports, "security_groups": sgs, "closed_ports": closed}
    if closed:
        return ctx.finding(
            Status.FAIL,
            f"ALB security group does not allow port {closed[0]} from the internet",
            "Clients time out before reaching the ALB.",
            evidence,
            resources=sgs,
        )
    return ctx.finding(Status.OK, f"ALB open on {', '.join(map(str, ports))}", "", evidence)
