"""Reading alarm text that other apps wrote: bounded patterns over a capped text.

Posts from alarm integrations change layout often, so Omni looks for what it needs anywhere in
their text.  That text is untrusted: every pattern here has bounded repetitions (no two
unbounded quantifiers can compete for the same characters) and at most :data:`MAX_SCAN`
characters are scanned, so no input makes a pattern backtrack for long (measured in
``tests/test_alarm_parse.py`` with inputs that took minutes with the earlier patterns).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MAX_SCAN = 16_384  # characters of a post that are read; alarm posts are far shorter

ARN = re.compile(
    r"arn:aws[a-z-]{0,12}:cloudwatch:([a-z0-9-]{1,30}):(\d{12}):alarm:([^\s|>\"*`<]{1,255})"
)
ACCOUNT = re.compile(r"Account(?: ID)?[ \t:=]{0,6}(\d{12})", re.I)
REGION = re.compile(r"\b((?:us|eu|ap|ca|sa|me|af|il|mx)(?:-gov)?-[a-z]{1,12}-\d)\b")
NAMESPACE = re.compile(r"\b(AWS/[A-Za-z0-9]{1,40})\b")
CHATBOT = re.compile(r"CloudWatch Alarm \| ([^|\n]{1,255}?) \| ([^|\n]{1,64}?) \|", re.I)
SUBJECT = re.compile(r"\b(ALARM|OK|INSUFFICIENT_DATA)[ \t]{0,4}:[ \t]{0,4}\"([^\"\n]{1,255})\"")
STATE_FIELD = re.compile(
    r"(?:Alarm )?State[ \t:*]{0,12}\n?[ \t*]{0,8}(ALARM|OK|INSUFFICIENT_DATA)\b", re.I
)
NAME_FIELD = re.compile(r"Alarm Name[ \t:*]{0,12}\n[ \t]{0,8}([^\n*|]{1,255})", re.I)
PD_STATE = re.compile(r"\b(Triggered|Acknowledged|Resolved)\b")
PD_INCIDENT = re.compile(r"pagerduty\.com/incidents/([A-Z0-9]{1,32})|\[#(\d{1,12})\]")
PLAIN_STATE = re.compile(r"\b(ALARM|INSUFFICIENT_DATA)\b")

KNOWN_METRICS = (
    "CPUUtilization",
    "MemoryUtilization",
    "HTTPCode_Target_5XX_Count",
    "HTTPCode_ELB_5XX_Count",
    "UnHealthyHostCount",
    "HealthyHostCount",
    "TargetResponseTime",
    "ServerlessDatabaseCapacity",
    "ACUUtilization",
    "DatabaseConnections",
    "FreeableMemory",
    "BlockedRequests",
    "ErrorPortAllocation",
    "PacketsDropCount",
    "RequestCount",
)
_METRIC = re.compile(r"\b(" + "|".join(KNOWN_METRICS) + r")\b")
KNOWN_DIMENSIONS = (
    "LoadBalancer",
    "TargetGroup",
    "ClusterName",
    "ServiceName",
    "DBClusterIdentifier",
    "DBInstanceIdentifier",
    "WebACL",
    "Rule",
    "NatGatewayId",
    "Region",
)
_DIMENSION = {
    dim: re.compile(rf"\*?{dim}\*?[ \t:=*]{{0,12}}\n?[ \t]{{0,8}}([A-Za-z0-9/_.:-]{{1,512}})")
    for dim in KNOWN_DIMENSIONS
}

# The Region field of a CloudWatch alarm message is a display name ("US East (N. Virginia)"),
# used only when the message has no ARN. The names AWS gives its regions today (botocore's
# endpoints data; a test fails when botocore knows one this table does not) …
_REGIONS = {
    "af-south-1": "Africa (Cape Town)",
    "ap-east-1": "Asia Pacific (Hong Kong)",
    "ap-east-2": "Asia Pacific (Taipei)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-northeast-3": "Asia Pacific (Osaka)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-south-2": "Asia Pacific (Hyderabad)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-southeast-3": "Asia Pacific (Jakarta)",
    "ap-southeast-4": "Asia Pacific (Melbourne)",
    "ap-southeast-5": "Asia Pacific (Malaysia)",
    "ap-southeast-6": "Asia Pacific (New Zealand)",
    "ap-southeast-7": "Asia Pacific (Thailand)",
    "ca-central-1": "Canada (Central)",
    "ca-west-1": "Canada West (Calgary)",
    "eu-central-1": "Europe (Frankfurt)",
    "eu-central-2": "Europe (Zurich)",
    "eu-north-1": "Europe (Stockholm)",
    "eu-south-1": "Europe (Milan)",
    "eu-south-2": "Europe (Spain)",
    "eu-west-1": "Europe (Ireland)",
    "eu-west-2": "Europe (London)",
    "eu-west-3": "Europe (Paris)",
    "il-central-1": "Israel (Tel Aviv)",
    "me-central-1": "Middle East (UAE)",
    "me-south-1": "Middle East (Bahrain)",
    "mx-central-1": "Mexico (Central)",
    "sa-east-1": "South America (Sao Paulo)",
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "cn-north-1": "China (Beijing)",
    "cn-northwest-1": "China (Ningxia)",
    "us-gov-east-1": "AWS GovCloud (US-East)",
    "us-gov-west-1": "AWS GovCloud (US-West)",
}
# … and the older ones alarm messages still carry ("EU (Ireland)" for every "Europe (…)").
_OLDER = {
    "us (virginia)": "us-east-1",
    "us standard": "us-east-1",
    "us (oregon)": "us-west-2",
    "eu - ireland": "eu-west-1",
    "south america (são paulo)": "sa-east-1",
}


def _region_names() -> dict[str, str]:
    names = dict(_OLDER)
    for code, name in _REGIONS.items():
        for variant in (name, name.replace("Europe (", "EU (")):
            names[variant.lower()] = code
    return names


REGION_NAMES = _region_names()


def text_of(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and str(value) else None


def upper(value: Any) -> str | None:
    return str(value).upper() if isinstance(value, str | int | float) and value else None


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def slack_texts(event: Mapping[str, Any]) -> list[str]:
    """Every text-bearing field of a Slack message: text, attachments, blocks, fields, context."""
    out: list[str] = []
    budget = [MAX_SCAN]

    def walk(node: Any, depth: int = 0) -> None:
        if depth > 12 or budget[0] <= 0:
            return
        if isinstance(node, str):
            if node.strip():
                out.append(node[: budget[0]])
                budget[0] -= len(out[-1])
        elif isinstance(node, Mapping):
            for key in ("text", "fallback", "pretext", "title", "value", "footer", "author_name"):
                if key in node:
                    walk(node[key], depth + 1)
            for key in ("fields", "elements", "blocks", "attachments"):
                if key in node:
                    walk(node[key], depth + 1)
        elif isinstance(node, list):
            for item in node[:200]:
                walk(item, depth + 1)

    walk(event)
    return out


def scan(texts: list[str], known_names: Iterable[str] = ()) -> dict[str, Any]:
    """What an alarm post says, wherever it says it (name, state, ARN, metric, dimensions)."""
    blob = "\n".join(texts)[:MAX_SCAN]
    found: dict[str, Any] = {}
    arn = ARN.search(blob)
    if arn:
        found.update(arn=arn.group(0), region=arn.group(1), account=arn.group(2), name=arn.group(3))
    for name in sorted(known_names, key=len, reverse=True):
        if name and name in blob:
            found.setdefault("name", name)
            break
    chatbot = CHATBOT.search(blob)
    if chatbot:
        found.setdefault("name", chatbot.group(1).strip())
        region = chatbot.group(2).strip()
        if REGION.fullmatch(region):
            found.setdefault("region", region)
    m = SUBJECT.search(blob)
    if m:
        found.setdefault("state", m.group(1).upper())
        found.setdefault("name", m.group(2).strip())
    m = NAME_FIELD.search(blob)
    if m:
        found.setdefault("name", m.group(1).strip())
    m = STATE_FIELD.search(blob)
    if m:
        found.setdefault("state", m.group(1).upper())
    m = ACCOUNT.search(blob)
    if m:
        found.setdefault("account", m.group(1))
    m = REGION.search(blob)
    if m:
        found.setdefault("region", m.group(1))
    m = NAMESPACE.search(blob)
    if m:
        found["namespace"] = m.group(1)
    m = _METRIC.search(blob)
    if m:
        found["metric"] = min(
            (k for k in KNOWN_METRICS if re.search(rf"\b{k}\b", blob)), key=KNOWN_METRICS.index
        )
    dims = {}
    for dim, rx in _DIMENSION.items():
        dm = rx.search(blob)
        if dm and dm.group(1).lower() not in {"and", "the"}:
            dims[dim] = dm.group(1)
    if dims:
        found["dimensions"] = dims
    return found
