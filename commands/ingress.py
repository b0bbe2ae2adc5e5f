"""Does a security group admit a source on a port?  Every kind of rule counts.

A rule may name a group (``UserIdGroupPairs``), CIDR ranges (``IpRanges``, ``Ipv6Ranges``) or
prefix lists (``PrefixListIds``); any of them can admit the traffic.  A source is admitted when
a rule covering the port names one of its groups, or when every one of its subnets' CIDR blocks
lies inside a covering rule's range or prefix-list entry.  A subnet left out is reported: tasks
placed there cannot connect, the others can.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import CheckContext


def covers(perm: dict[str, Any], port: int) -> bool:
    proto = str(perm.get("IpProtocol"))
    if proto == "-1":
        return True
    if proto not in ("tcp", "6"):
        return False
    low, high = perm.get("FromPort"), perm.get("ToPort")
    return low is not None and high is not None and int(low) <= port <= int(high)


def _within(inner: str, outer: str) -> bool:
    try:
        a, b = ipaddress.ip_network(inner, strict=False), ipaddress.ip_network(outer, strict=False)
    except ValueError:
        return False
    return a.version == b.version and a.subnet_of(b)  # type: ignore[arg-type]


@dataclass
class Admission:
    port: int
    rules: list[dict[str, Any]] = field(default_factory=list)  # the rules that admit the source
    uncovered: list[str] = field(default_factory=list)  # source CIDRs no rule admits

    @property
    def admitted(self) -> bool:
        return bool(self.rules) and not self.uncovered


def admission(
    ctx: CheckContext,
    groups: list[dict[str, Any]],
    port: int,
    *,
    source_groups: set[str],
    source_cidrs: list[str],
) -> Admission:
    """What in ``groups`` admits TCP ``port`` from the source (its groups or its subnets)."""
    found = Admission(port)
    cidr_rules: list[tuple[str, dict[str, Any]]] = []
    for group in groups:
        for perm in group.get("IpPermissions", []):
            if not covers(perm, port):
                continue
            where = {
                "GroupId": group.get("GroupId"),
                "FromPort": perm.get("FromPort"),
                "ToPort": perm.get("ToPort"),
            }
            pairs = {p.get("GroupId") for p in perm.get("UserIdGroupPairs", [])} & source_groups
            if pairs:
                found.rules.append({**where, "from_groups": sorted(pairs)})
            for r in perm.get("IpRanges", []):
                cidr_rules.append((str(r.get("CidrIp")), {**where, "from_cidr": r.get("CidrIp")}))
            for r in perm.get("Ipv6Ranges", []):
                cidr_rules.append(
                    (str(r.get("CidrIpv6")), {**where, "from_cidr": r.get("CidrIpv6")})
                )
            for pl in perm.get("PrefixListIds", []):
                pl_id = str(pl.get("PrefixListId"))
                for cidr in prefix_list_cidrs(ctx, pl_id):
                    cidr_rules.append((cidr, {**where, "from_prefix_list": pl_id, "cidr": cidr}))
    if any(r.get("from_groups") for r in found.rules):
        return found  # the source's own group is admitted: every task, whatever its subnet
    for source in source_cidrs:
        match = next((rule for cidr, rule in cidr_rules if _within(source, cidr)), None)
        if match is None:
            found.uncovered.append(source)
        elif match not in found.rules:
            found.rules.append(match)
    if not source_cidrs:
        found.rules = []
    return found


def prefix_list_cidrs(ctx: CheckContext, prefix_list_id: str) -> list[str]:
    entries = ctx.aws.paginate(
        "ec2", "get_managed_prefix_list_entries", "Entries", PrefixListId=prefix_list_id
    )
    return [str(e.get("Cidr")) for e in entries if e.get("Cidr")]


def subnet_cidrs(ctx: CheckContext, subnet_ids: list[str]) -> list[str]:
    if not subnet_ids:
        return []
    subnets = ctx.aws.call("ec2", "describe_subnets", SubnetIds=subnet_ids).get("Subnets", [])
    return [str(s["CidrBlock"]) for s in subnets if s.get("CidrBlock")]
