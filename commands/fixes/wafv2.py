"""WAF fixes: allow-list an address, raise a rate-based rule's limit.

WAF updates carry a lock token: a concurrent change makes the update fail with
``WAFOptimisticLockException``, and the fix reads the current state and tries again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import Field

from ..aws import marker_pages
from ..errors import AwsCallError
from ..models import Risk
from ._registry import Call, FixContext, FixRefused, FixResult, Params, fix

_ACL_KEYS = (
    "Description",
    "CustomResponseBodies",
    "CaptchaConfig",
    "ChallengeConfig",
    "TokenDomains",
    "AssociationConfig",
)


def with_lock_retry(action: Callable[[], Any], attempts: int = 4) -> Any:
    for attempt in range(attempts):
        try:
            return action()
        except AwsCallError as exc:
            if exc.code != "WAFOptimisticLockException" or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    return None


def list_all(ctx: FixContext, method: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a WAF list call (they page with NextMarker, 100 at a time)."""
    return marker_pages(lambda **page: ctx.call("wafv2", method, **page), key, **params)


def update_web_acl(ctx: FixContext, current: dict[str, Any], rules: list[dict[str, Any]]) -> None:
    """``update_web_acl`` with everything the ACL has, the rules replaced."""
    acl = current["WebACL"]
    ctx.call(
        "wafv2",
        "update_web_acl",
        Name=acl["Name"],
        Scope="REGIONAL",
        Id=acl["Id"],
        DefaultAction=acl["DefaultAction"],
        Rules=rules,
        VisibilityConfig=acl["VisibilityConfig"],
        LockToken=current["LockToken"],
        **{k: acl[k] for k in _ACL_KEYS if acl.get(k)},
    )


class AllowlistIp(Params):
    IPSetName: str
    Scope: str = "REGIONAL"
    Address: str = Field(pattern=r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")


@fix(
    "wafv2.allowlist_ip",
    title="Allow-list an IP in WAF",
    risk=Risk.HIGH,
    calls=[
        Call("wafv2:UpdateIPSet", ("arn:aws:wafv2:*:*:regional/ipset/{project}-*/*",)),
        Call("wafv2:CreateIPSet", ("arn:aws:wafv2:*:*:regional/ipset/{project}-*/*",)),
    ],
    reads=("wafv2:ListIPSets", "wafv2:GetIPSet"),
    target="IPSetName",
    terraform="Add the address to the allow-list IP set in modules/waf/main.tf.",
)
def allowlist_ip(ctx: FixContext, p: AllowlistIp) -> FixResult:
    sets = list_all(ctx, "list_ip_sets", "IPSets", Scope=p.Scope)
    found = next((s for s in sets if s["Name"] == p.IPSetName), None)
    if found is None:
        created = ctx.call(
            "wafv2",
            "create_ip_set",
            Name=p.IPSetName,
            Scope=p.Scope,
            IPAddressVersion="IPV4",
            Addresses=[p.Address],
            Description="Allow-list managed by Omni; reference it from an allow rule in the web ACL",
        )
        return FixResult(
            f"IP set {p.IPSetName} created with {p.Address}",
            {"addresses": None},
            {"addresses": [p.Address], "id": created["Summary"]["Id"]},
        )
    before: list[str] = []

    def update() -> list[str]:
        nonlocal before
        current = ctx.call("wafv2", "get_ip_set", Name=p.IPSetName, Scope=p.Scope, Id=found["Id"])
        before = list(current["IPSet"]["Addresses"])
        addresses = sorted(set(before) | {p.Address})
        ctx.call(
            "wafv2",
            "update_ip_set",
            Name=p.IPSetName,
            Scope=p.Scope,
            Id=found["Id"],
            Addresses=addresses,
            LockToken=current["LockToken"],
        )
        return addresses

    after = with_lock_retry(update)
    return FixResult(
        f"{p.Address} added to {p.IPSetName}", {"addresses": before}, {"addresses": after}
    )


_ACL = (
    "arn:aws:wafv2:*:*:regional/webacl/{project}-*/*",
    "arn:aws:wafv2:*:*:regional/managedruleset/*/*",
    "arn:aws:wafv2:*:*:regional/ipset/{project}-*/*",
)


class RaiseRateLimit(Params):
    Name: str
    Id: str
    Scope: str = "REGIONAL"
    RuleName: str
    Limit: int = Field(ge=10, le=2_000_000_000)


@fix(
    "wafv2.raise_rate_limit",
    title="Raise the WAF rate limit",
    risk=Risk.HIGH,
    calls=[Call("wafv2:UpdateWebACL", _ACL)],
    reads=("wafv2:GetWebACL",),
    target="Name",
    terraform="Change `rate_based_statement.limit` in modules/waf/main.tf to the new value.",
    settles_min=5,  # the blocked-requests metric shows the last minutes under the old limit
)
def raise_rate_limit(ctx: FixContext, p: RaiseRateLimit) -> FixResult:
    before_limit: Any = None

    def update() -> int:
        nonlocal before_limit
        current = ctx.call("wafv2", "get_web_acl", Name=p.Name, Scope=p.Scope, Id=p.Id)
        rules = current["WebACL"].get("Rules", [])
        rule = next((r for r in rules if r["Name"] == p.RuleName), None)
        if rule is None or "RateBasedStatement" not in rule.get("Statement", {}):
            raise FixRefused(f"no rate-based rule {p.RuleName} in {p.Name}")
        before_limit = rule["Statement"]["RateBasedStatement"]["Limit"]
        if before_limit >= p.Limit:
            raise FixRefused(f"the limit is already {before_limit}")
        rule["Statement"]["RateBasedStatement"]["Limit"] = p.Limit
        update_web_acl(ctx, current, rules)
        return p.Limit

    after = with_lock_retry(update)
    return FixResult(
        f"Rate limit of {p.RuleName} raised", {"Limit": before_limit}, {"Limit": after}
    )
