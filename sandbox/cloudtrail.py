"""CloudTrail's ``LookupEvents`` for moto, which does not implement it (moto 5.2).

Answers in the documented shape (``notes/aws-real-shapes.md``): management events of one
account and region, newest first; at most one ``LookupAttributes`` entry (``EventId``,
``EventName``, ``ReadOnly``, ``Username``, ``ResourceType``, ``ResourceName``,
``EventSource``, ``AccessKeyId``), ``StartTime``/``EndTime``, ``MaxResults`` 1–50 with a
``NextToken``; each event with ``EventId``, ``EventName``, ``ReadOnly`` ("true"/"false"),
``EventTime``, ``EventSource``, ``Username``, ``Resources`` and ``CloudTrailEvent`` (a JSON
string with ``userIdentity``, ``requestParameters`` and ``responseElements``).  The API allows
about two calls a second per account and region: :data:`THROTTLE` makes the emulation answer
``ThrottlingException`` beyond a rate, as AWS does.

The sandbox's faults record what a real account would: :func:`record` with the principal who
made the call and its exact parameters; :func:`record_seed_history` the stack's creation and
some unrelated writes a healthy account always has (tags, object uploads).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .stack import Stack

ATTRIBUTES = (
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
)


@dataclass
class Throttle:
    """Answer ``ThrottlingException`` when more than ``per_second`` calls arrive in a second."""

    per_second: float = 0.0  # 0: off
    calls: list[float] = field(default_factory=list)
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self) -> bool:
        if not self.per_second:
            return True
        now = time.monotonic()
        with self.lock:
            self.calls = [t for t in self.calls if now - t < 1.0]
            if len(self.calls) >= self.per_second:
                self.throttled += 1
                return False
            self.calls.append(now)
            return True


THROTTLE = Throttle()
# account → the error every lookup gets there ("AccessDeniedException": a role without
# cloudtrail:LookupEvents; "ThrottlingException": throttled whatever the pace)
REFUSE: dict[str, str] = {}
_EVENTS: dict[tuple[str, str], list[dict[str, Any]]] = {}
_LOOKUPS: list[dict[str, Any]] = []  # every request the emulation answered, for the tests
_LOCK = threading.Lock()


def reset() -> None:
    with _LOCK:
        _EVENTS.clear()
        _LOOKUPS.clear()
    THROTTLE.per_second, THROTTLE.throttled = 0.0, 0
    REFUSE.clear()


def forget(account: str, region: str) -> None:
    """Drop the events of one account and region (a new stack is seeded there)."""
    with _LOCK:
        _EVENTS.pop((account, region), None)


def lookups() -> list[dict[str, Any]]:
    with _LOCK:
        return list(_LOOKUPS)


def identity(
    who: str, *, account: str, kind: str = "IAMUser", session: str | None = None
) -> dict[str, Any]:
    """``userIdentity`` as CloudTrail writes it: an IAM user, or an assumed role's session."""
    if kind == "AssumedRole":
        role = who
        name = session or "session"
        return {
            "type": "AssumedRole",
            "principalId": f"AROA{uuid.uuid4().hex[:16].upper()}:{name}",
            "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{name}",
            "accountId": account,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": f"arn:aws:iam::{account}:role/{role}",
                    "userName": role,
                    "accountId": account,
                }
            },
        }
    if kind == "AWSService":
        return {"type": "AWSService", "invokedBy": who}
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{uuid.uuid4().hex[:16].upper()}",
        "arn": f"arn:aws:iam::{account}:user/{who}",
        "accountId": account,
        "userName": who,
    }


def record(
    stack: Stack,
    event_name: str,
    source: str,
    *,
    who: str,
    kind: str = "IAMUser",
    session: str | None = None,
    resources: list[tuple[str, str]] = (),  # type: ignore[assignment]
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    minutes_ago: float = 10.0,
    read_only: bool = False,
) -> dict[str, Any]:
    """Record one management event in the stack's account and region; returns it."""
    account = stack.extra["account"]
    at = stack.now - timedelta(minutes=minutes_ago)
    ident = identity(who, account=account, kind=kind, session=session)
    username = (
        ident.get("userName")
        or (session if kind == "AssumedRole" else None)
        or ident.get("invokedBy")
    )
    event_id = str(uuid.uuid4())
    detail = {
        "eventVersion": "1.09",
        "userIdentity": ident,
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": event_name,
        "awsRegion": stack.region,
        "sourceIPAddress": "203.0.113.50",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": event_id,
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
    }
    event = {
        "EventId": event_id,
        "EventName": event_name,
        "ReadOnly": "true" if read_only else "false",
        "AccessKeyId": f"ASIA{uuid.uuid4().hex[:16].upper()}",
        "EventTime": at.timestamp(),
        "EventSource": source,
        "Username": username,
        "Resources": [{"ResourceType": t, "ResourceName": n} for t, n in resources],
        "CloudTrailEvent": json.dumps(detail),
    }
    with _LOCK:
        _EVENTS.setdefault((account, stack.region), []).append(event)
    return event


def _matches(event: dict[str, Any], key: str, value: str) -> bool:
    if key == "ResourceType":
        return any(r["ResourceType"] == value for r in event["Resources"])
    if key == "ResourceName":
        return any(r["ResourceName"] == value for r in event["Resources"])
    return str(event.get(key)) == value


class LookupError_(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def lookup(
    account: str, region: str, body: dict[str, Any]
) -> dict[str, Any]:  # the API's logic, apart from moto's plumbing
    attributes = body.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise LookupError_(
            "InvalidLookupAttributesException", "You cannot specify more than one lookup attribute."
        )
    max_results = int(body.get("MaxResults") or 50)
    if not 1 <= max_results <= 50:
        raise LookupError_("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
    start = float(body.get("StartTime") or 0)
    end = float(body.get("EndTime") or time.time())
    with _LOCK:
        events = list(_EVENTS.get((account, region), []))
    for attr in attributes:
        if attr.get("AttributeKey") not in ATTRIBUTES:
            raise LookupError_(
                "InvalidLookupAttributesException", f"bad AttributeKey {attr.get('AttributeKey')}"
            )
        events = [e for e in events if _matches(e, attr["AttributeKey"], attr["AttributeValue"])]
    events = sorted(
        (e for e in events if start <= e["EventTime"] <= end), key=lambda e: -e["EventTime"]
    )
    offset = int(body.get("NextToken") or 0)
    page = events[offset : offset + max_results]
    out: dict[str, Any] = {"Events": page}
    if offset + max_results < len(events):
        out["NextToken"] = str(offset + max_results)
    return out


def install() -> None:
    """Teach moto's CloudTrail responses ``LookupEvents``."""
    from moto.cloudtrail.responses import CloudTrailResponse

    def lookup_events(self: Any) -> Any:
        body = json.loads(self.body or "{}")
        with _LOCK:
            _LOOKUPS.append(body)
        headers = {"Content-Type": "application/x-amz-json-1.1"}

        def error(code: str, message: str, status: int = 400) -> Any:
            # moto takes a response's status from its headers, not from the tuple
            return (
                status,
                {**headers, "status": str(status)},
                json.dumps({"__type": code, "message": message}),
            )

        refused = REFUSE.get(self.current_account)
        if refused:
            message = (
                "User is not authorized to perform: cloudtrail:LookupEvents"
                if "Denied" in refused
                else "Rate exceeded"
            )
            return error(refused, message)
        if not THROTTLE.allow():
            return error("ThrottlingException", "Rate exceeded")
        try:
            answer = lookup(self.current_account, self.region, body)
        except LookupError_ as exc:
            return error(exc.code, exc.message, exc.status)
        return 200, headers, json.dumps(answer)

    CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]


def waf_rules(rate_limit: int) -> list[dict[str, Any]]:
    """The sandbox web ACL's rules as CloudTrail records them (camelCase request parameters)."""
    return [
        {
            "name": "AWSManagedRulesCommonRuleSet",
            "priority": 1,
            "statement": {
                "managedRuleGroupStatement": {
                    "vendorName": "AWS",
                    "name": "AWSManagedRulesCommonRuleSet",
                }
            },
        },
        {
            "name": "RateLimit",
            "priority": 2,
            "action": {"block": {}},
            "statement": {"rateBasedStatement": {"limit": rate_limit, "aggregateKeyType": "IP"}},
        },
    ]


def record_seed_history(stack: Stack) -> None:
    """What a healthy account's trail holds: the stack created days ago (out of any window)
    and everyday writes of the last hours that touch nothing a check looks at."""
    names = stack.names
    ci = {"who": "terraform-ci", "kind": "AssumedRole", "session": "github-actions-deploy"}
    record(
        stack,
        "CreateDBCluster",
        "rds.amazonaws.com",
        resources=[("AWS::RDS::DBCluster", names.aurora_cluster)],
        request={
            "dBClusterIdentifier": names.aurora_cluster,
            "serverlessV2ScalingConfiguration": {"minCapacity": 0.5, "maxCapacity": 4.0},
        },
        minutes_ago=60 * 24 * 5,
        **ci,  # type: ignore[arg-type]
    )
    record(
        stack,
        "CreateService",
        "ecs.amazonaws.com",
        resources=[("AWS::ECS::Service", names.ecs_service)],
        request={"serviceName": names.ecs_service, "cluster": names.ecs_cluster},
        minutes_ago=60 * 24 * 5,
        **ci,  # type: ignore[arg-type]
    )
    for table, nat in zip(
        stack.extra.get("private_route_tables", []),
        stack.outputs.get("nat_gateway_ids", []),
        strict=False,
    ):
        record(
            stack,
            "CreateRoute",
            "ec2.amazonaws.com",
            resources=[("AWS::EC2::RouteTable", table)],
            request={
                "routeTableId": table,
                "destinationCidrBlock": "0.0.0.0/0",
                "natGatewayId": nat,
            },
            minutes_ago=60 * 24 * 5,
            **ci,  # type: ignore[arg-type]
        )
    acl_arn = str(stack.outputs.get("waf_web_acl_arn", ""))
    if acl_arn:
        record(
            stack,
            "CreateWebACL",
            "wafv2.amazonaws.com",
            resources=[("AWS::WAFv2::WebACL", names.waf_acl)],
            request={"name": names.waf_acl, "scope": "REGIONAL", "rules": waf_rules(2000)},
            response={"summary": {"name": names.waf_acl, "id": acl_arn.rsplit("/", 1)[-1]}},
            minutes_ago=60 * 24 * 5,
            **ci,  # type: ignore[arg-type]
        )
    # the noise every account has: tags, uploads, a scheduled Lambda's writes
    record(
        stack,
        "CreateTags",
        "ec2.amazonaws.com",
        resources=[("AWS::EC2::Instance", "i-0bastion0000000001")],
        request={"resourcesSet": {"items": [{"resourceId": "i-0bastion0000000001"}]}},
        minutes_ago=45,
        who="alice",
    )
    record(
        stack,
        "PutObject",
        "s3.amazonaws.com",
        resources=[("AWS::S3::Object", f"{names.project}-reports/daily.csv")],
        request={"bucketName": f"{names.project}-reports", "key": "daily.csv"},
        minutes_ago=30,
        who="report-exporter",
        kind="AssumedRole",
        session="nightly-export",
    )
    record(
        stack,
        "TagResource",
        "rds.amazonaws.com",
        resources=[("AWS::RDS::DBCluster", names.aurora_cluster)],
        request={"resourceName": names.aurora_cluster, "tags": [{"key": "CostCenter"}]},
        minutes_ago=50,
        who="finops-bot",
        kind="AssumedRole",
        session="tagger",
    )
    record(
        stack,
        "DescribeDBClusters",
        "rds.amazonaws.com",
        resources=[("AWS::RDS::DBCluster", names.aurora_cluster)],
        minutes_ago=20,
        who="bob",
        read_only=True,
    )
