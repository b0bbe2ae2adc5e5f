"""Kinds of change: what each write can break, how to say it, and its exact undo (if any).

A change is a lead for a failing check only when its kind names that check *and* it touched
one of the finding's resources.  The undos are catalogued fixes (``commands.fixes``), proposed
with parameters taken from the write itself or from the write before it; none is guessed:

- ``RevokeSecurityGroupIngress`` with ``ipPermissions`` → ``ec2.restore_ingress`` with exactly
  those permissions (a revoke by rule id carries no permissions: no undo);
- ``DeleteRoute`` → ``ec2.restore_route`` to the target the route had before (the last
  ``CreateRoute``/``ReplaceRoute`` of that table and destination), if that target still exists;
- ``ModifyDBCluster`` that lowered the capacity → ``rds.raise_max_capacity`` back to the range
  the write before it set;
- ``UpdateWebACL`` that lowered a rate limit → ``wafv2.raise_rate_limit`` back to the limit the
  write before it set;
- a deployment (``UpdateService``, ``RegisterTaskDefinition``): the rollout check already
  proposes the rollback to the revision the last completed deployment ran.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._model import Change
from ._read import lookup_older

if TYPE_CHECKING:
    from ..context import CheckContext
    from ..models import Finding, Remediation

logger = logging.getLogger(__name__)

Undo = Callable[["Change", "Finding", "CheckContext"], "Remediation | None"]

_SG_CHECKS = ("db.sg_ingress_from_ecs", "alb.sg_alb_to_ecs", "alb.listener_ingress")
_DEPLOY_CHECKS = (
    "ecs.stopped_tasks",
    "ecs.task_churn",
    "ecs.container_errors",
    "ecs.service_running",
    "ecs.service_events",
    "ecs.image_repository",
    "ecs.memory_utilization",
    "ecs.health_check",
    "deploy.ecs_rollout",
    "perf.ecs_memory",
    "perf.ecs_cpu",
)
_DB_CHECKS = (
    "db.cluster_status",
    "db.serverless_capacity",
    "db.connections",
    "db.cpu",
    "perf.target_response_time",
)
_NETWORK_CHECKS = ("network.nat_gateways", "network.private_routes")
_WAF_CHECKS = ("waf.rate_limit", "waf.blocked_requests", "waf.sampled_blocks")


@dataclass(frozen=True)
class Kind:
    events: tuple[str, ...]
    checks: tuple[str, ...]
    describe: Callable[[Change], str]
    undo: Undo | None = None
    sources: tuple[str, ...] = field(default=("cloudtrail",))


def _items(value: Any) -> list[Any]:
    """CloudTrail writes EC2 lists as ``{"items": [...]}``; others as plain lists."""
    if isinstance(value, dict):
        return list(value.get("items") or [])
    return list(value or []) if isinstance(value, list) else []


def _permissions(change: Change) -> list[dict[str, Any]]:
    """The request's ``ipPermissions`` in the API's own shape (``IpPermissions``)."""
    out = []
    for p in _items(change.request.get("ipPermissions")):
        perm: dict[str, Any] = {"IpProtocol": str(p.get("ipProtocol", "tcp"))}
        if p.get("fromPort") is not None:
            perm["FromPort"] = int(p["fromPort"])
        if p.get("toPort") is not None:
            perm["ToPort"] = int(p["toPort"])
        groups = [{"GroupId": g["groupId"]} for g in _items(p.get("groups")) if g.get("groupId")]
        cidrs = [{"CidrIp": r["cidrIp"]} for r in _items(p.get("ipRanges")) if r.get("cidrIp")]
        cidrs6 = [
            {"CidrIpv6": r["cidrIpv6"]} for r in _items(p.get("ipv6Ranges")) if r.get("cidrIpv6")
        ]
        lists = [
            {"PrefixListId": r["prefixListId"]}
            for r in _items(p.get("prefixListIds"))
            if r.get("prefixListId")
        ]
        for key, value in (
            ("UserIdGroupPairs", groups),
            ("IpRanges", cidrs),
            ("Ipv6Ranges", cidrs6),
            ("PrefixListIds", lists),
        ):
            if value:
                perm[key] = value
        if len(perm) > 1:
            out.append(perm)
    return out


def _describe_revoke(change: Change) -> str:
    group = change.request.get("groupId") or "a security group"
    perms = _permissions(change)
    if not perms:
        return f"{group} lost ingress rule(s)"
    parts = []
    for p in perms:
        port = p.get("FromPort", "all")
        sources = [g["GroupId"] for g in p.get("UserIdGroupPairs", [])]
        sources += [r["CidrIp"] for r in p.get("IpRanges", [])]
        sources += [r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])]
        sources += [r["PrefixListId"] for r in p.get("PrefixListIds", [])]
        parts.append(f"{port} from {', '.join(sources) or 'anywhere'}")
    return f"{group} lost {'; '.join(parts)}"


def _undo_revoke(change: Change, finding: Finding, ctx: CheckContext) -> Remediation | None:
    perms = _permissions(change)
    group = change.request.get("groupId")
    if not perms or not group:
        return None
    return ctx.propose("ec2.restore_ingress", GroupId=str(group), IpPermissions=perms)


def _describe_route(change: Change) -> str:
    table = change.request.get("routeTableId", "a route table")
    dest = change.request.get("destinationCidrBlock") or change.request.get(
        "destinationIpv6CidrBlock", "a destination"
    )
    verb = {"DeleteRoute": "lost its route", "ReplaceRoute": "had its route replaced"}.get(
        change.name, "changed its route"
    )
    target = _route_target(change.request)
    return f"{table} {verb} to {dest}" + (f" (now → {target[1]})" if target else "")


_ROUTE_TARGETS = ("natGatewayId", "gatewayId", "transitGatewayId", "networkInterfaceId")


def _route_target(request: dict[str, Any]) -> tuple[str, str] | None:
    for key in _ROUTE_TARGETS:
        if request.get(key):
            return key, str(request[key])
    return None


def _undo_route(change: Change, finding: Finding, ctx: CheckContext) -> Remediation | None:
    table = change.request.get("routeTableId")
    dest = change.request.get("destinationCidrBlock")
    if change.name != "DeleteRoute" or not table or not dest:
        return None

    def same_route(older: Change) -> bool:
        return (
            older.name in ("CreateRoute", "ReplaceRoute")
            and older.request.get("routeTableId") == table
            and older.request.get("destinationCidrBlock") == dest
            and _route_target(older.request) is not None
        )

    before = lookup_older(ctx, str(table), change.at, same_route, "route")
    target = _route_target(before.request) if before else None
    if target is None or target[0] != "natGatewayId":
        return None  # only a NAT gateway target is restored (the private routes' kind)
    nat = ctx.aws.call("ec2", "describe_nat_gateways", NatGatewayIds=[target[1]])
    states = [g.get("State") for g in nat.get("NatGateways", [])]
    if states != ["available"]:
        return None  # its target is gone: restoring would make a blackhole
    return ctx.propose(
        "ec2.restore_route",
        RouteTableId=str(table),
        DestinationCidrBlock=str(dest),
        NatGatewayId=target[1],
    )


def _scaling(request: dict[str, Any]) -> dict[str, float] | None:
    cfg = request.get("serverlessV2ScalingConfiguration") or {}
    if not isinstance(cfg, dict) or cfg.get("maxCapacity") is None:
        return None
    return {"min": float(cfg.get("minCapacity", 0.5)), "max": float(cfg["maxCapacity"])}


def _describe_db(change: Change) -> str:
    cluster = change.request.get("dBClusterIdentifier", "the cluster")
    if change.source == "rds":
        return f"{cluster}: {change.message}"
    scaling = _scaling(change.request)
    if change.name == "ModifyDBCluster" and scaling:
        return f"{cluster} capacity set to {scaling['min']:g}–{scaling['max']:g} ACU"
    return {
        "StopDBCluster": f"{cluster} was stopped",
        "RebootDBInstance": f"{change.request.get('dBInstanceIdentifier', 'an instance')} was rebooted",
        "FailoverDBCluster": f"{cluster} failed over",
        "DeleteDBInstance": f"{change.request.get('dBInstanceIdentifier', 'an instance')} was deleted",
    }.get(change.name, f"{cluster} was modified")


def _undo_db(change: Change, finding: Finding, ctx: CheckContext) -> Remediation | None:
    now = _scaling(change.request)
    cluster = change.request.get("dBClusterIdentifier")
    if change.name != "ModifyDBCluster" or now is None or not cluster:
        return None
    before = lookup_older(
        ctx, str(cluster), change.at, lambda c: _scaling(c.request) is not None, "capacity"
    )
    previous = _scaling(before.request) if before else None
    if previous is None or previous["max"] <= now["max"]:
        return None  # the change did not lower the capacity: nothing to undo here
    return ctx.propose(
        "rds.raise_max_capacity",
        DBClusterIdentifier=str(cluster),
        MinCapacity=min(previous["min"], now["min"]),
        MaxCapacity=previous["max"],
    )


def _rate_limits(request: dict[str, Any]) -> dict[str, int]:
    limits = {}
    for rule in request.get("rules") or []:
        statement = (rule or {}).get("statement") or {}
        rate = statement.get("rateBasedStatement") or {}
        if rate.get("limit") is not None and rule.get("name"):
            limits[str(rule["name"])] = int(rate["limit"])
    return limits


def _describe_waf(change: Change) -> str:
    name = change.request.get("name", "the web ACL")
    limits = _rate_limits(change.request)
    if limits:
        shown = ", ".join(f"{k} {v}" for k, v in limits.items())
        return f"web ACL {name} rules updated (rate limits: {shown})"
    return f"web ACL {name} rules updated"


def _undo_waf(change: Change, finding: Finding, ctx: CheckContext) -> Remediation | None:
    name, acl_id = change.request.get("name"), change.request.get("id")
    now = _rate_limits(change.request)
    if change.name != "UpdateWebACL" or not name or not acl_id or not now:
        return None
    before = lookup_older(
        ctx, str(name), change.at, lambda c: bool(_rate_limits(c.request)), "rate-limit"
    )
    previous = _rate_limits(before.request) if before else {}
    lowered = [
        (rule, previous[rule]) for rule, limit in now.items() if previous.get(rule, 0) > limit
    ]
    if not lowered:
        return None
    rule, limit = lowered[0]
    return ctx.propose(
        "wafv2.raise_rate_limit",
        Name=str(name),
        Id=str(acl_id),
        Scope=str(change.request.get("scope", "REGIONAL")),
        RuleName=rule,
        Limit=limit,
    )


def _describe_deploy(change: Change) -> str:
    if change.source == "ecs":
        return f"ECS {change.message}"
    td = change.request.get("taskDefinition") or (
        (change.response.get("taskDefinition") or {}).get("taskDefinitionArn")
        if isinstance(change.response.get("taskDefinition"), dict)
        else None
    )
    rev = str(td or "").rsplit("/", 1)[-1]
    if change.name == "RegisterTaskDefinition":
        return f"task definition {rev or change.request.get('family', '')} registered"
    if change.name == "UpdateService":
        service = change.request.get("service", "the service")
        if change.request.get("forceNewDeployment") and not rev:
            return f"{service} redeployed"
        if change.request.get("desiredCount") is not None and not rev:
            return f"{service} scaled to {change.request['desiredCount']}"
        return f"{service} deployed {rev}" if rev else f"{service} updated"
    return change.name


def _describe_nat(change: Change) -> str:
    return f"NAT gateway {change.request.get('natGatewayId', '')} deleted".replace("  ", " ")


def _describe_alarms(change: Change) -> str:
    names = change.request.get("alarmNames") or []
    return f"alarm actions disabled on {', '.join(map(str, names[:3])) or 'alarms'}"


KINDS: tuple[Kind, ...] = (
    Kind(
        ("RevokeSecurityGroupIngress", "ModifySecurityGroupRules"),
        _SG_CHECKS,
        _describe_revoke,
        _undo_revoke,
    ),
    Kind(
        ("UpdateService", "RegisterTaskDefinition", "CreateDeployment"),
        _DEPLOY_CHECKS,
        _describe_deploy,
    ),
    Kind(("ECS deployment",), _DEPLOY_CHECKS, _describe_deploy, sources=("ecs",)),
    Kind(
        (
            "ModifyDBCluster",
            "StopDBCluster",
            "RebootDBInstance",
            "FailoverDBCluster",
            "DeleteDBInstance",
        ),
        _DB_CHECKS,
        _describe_db,
        _undo_db,
    ),
    Kind(("RDS event",), _DB_CHECKS, _describe_db, sources=("rds",)),
    Kind(("DeleteNatGateway",), _NETWORK_CHECKS, _describe_nat),
    Kind(
        ("DeleteRoute", "ReplaceRoute", "DisassociateRouteTable", "ReplaceRouteTableAssociation"),
        _NETWORK_CHECKS,
        _describe_route,
        _undo_route,
    ),
    Kind(("UpdateWebACL",), _WAF_CHECKS, _describe_waf, _undo_waf),
    Kind(("DisableAlarmActions",), ("alarms.actions_enabled",), _describe_alarms),
)
_BY_EVENT = {(source, name): k for k in KINDS for source in k.sources for name in k.events}


def kind_of(change: Change) -> Kind | None:
    return _BY_EVENT.get((change.source, change.name))


def brief(change: Change, now: datetime) -> dict[str, Any]:
    """What a finding, the verdict and the timeline carry: when, who, what, in a sentence."""
    minutes = max(0, int((now - change.at).total_seconds() // 60))
    kind = kind_of(change)
    what = kind.describe(change) if kind is not None else change.name
    by = f" by {change.who}" if change.who else ""
    return {
        "id": change.id,
        "at": change.at.isoformat(),
        "event": change.name,
        "who": change.who,
        "minutes_ago": minutes,
        "summary": f"{what} {minutes} min ago — {change.name}{by}",
    }
