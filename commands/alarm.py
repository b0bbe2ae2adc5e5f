"""Reading alarms, whatever carried them: an SNS envelope, a bare CloudWatch alarm (single metric
or metric math; minimal ones without ``Trigger``), a Lambda SNS event, a Slack message from
PagerDuty, AWS Chatbot / Amazon Q or an SNS-to-Slack integration (either app-message shape, with
the content in ``text``, ``attachments`` or ``blocks``), or a PagerDuty v3 webhook.

Layouts vary and change, so the Slack reader gathers every text-bearing field and looks for
what it needs anywhere in them; names of the account's real alarms, when known, identify the
alarm exactly.  Nothing here raises on odd input: fields Omni cannot read are ``None``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field

Source = Literal["cloudwatch", "pagerduty", "slack"]

FIRING = {"ALARM", "TRIGGERED", "ACKNOWLEDGED"}
RECOVERED = {"OK", "RESOLVED"}

_ARN = re.compile(r"arn:aws[a-z-]*:cloudwatch:([a-z0-9-]+):(\d{12}):alarm:([^\s|>\"*`<]+)")
_ACCOUNT = re.compile(r"Account(?: ID)?\s*[:=]?\s*(\d{12})", re.I)
_REGION = re.compile(r"\b((?:us|eu|ap|ca|sa|me|af|il|mx)(?:-gov)?-[a-z]+-\d)\b")
_NAMESPACE = re.compile(r"\b(AWS/[A-Za-z0-9]+)\b")
_CHATBOT = re.compile(r"CloudWatch Alarm \| ([^|]+?) \| ([^|]+?) \|", re.I)
_SUBJECT = re.compile(r"\b(ALARM|OK|INSUFFICIENT_DATA)\s*:\s*\"([^\"]+)\"")
_STATE_FIELD = re.compile(
    r"(?:Alarm )?State\*?\s*:?\s*\*?\s*\n?\s*(ALARM|OK|INSUFFICIENT_DATA)\b", re.I
)
_NAME_FIELD = re.compile(r"Alarm Name\*?\s*:?\s*\*?\s*\n\s*([^\n*|]+)", re.I)
_PD_STATE = re.compile(r"\b(Triggered|Acknowledged|Resolved)\b")
_PD_INCIDENT = re.compile(r"pagerduty\.com/incidents/([A-Z0-9]+)|\[#(\d+)\]")
_PLAIN_STATE = re.compile(r"\b(ALARM|INSUFFICIENT_DATA)\b")

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

# Display names CloudWatch has used in ``Region`` over the years (only used without an ARN).
_REGION_NAMES = {
    "us east (n. virginia)": "us-east-1",
    "us (virginia)": "us-east-1",
    "us east (ohio)": "us-east-2",
    "us west (oregon)": "us-west-2",
    "us (oregon)": "us-west-2",
    "us west (n. california)": "us-west-1",
    "eu (ireland)": "eu-west-1",
    "eu - ireland": "eu-west-1",
    "europe (ireland)": "eu-west-1",
    "eu (london)": "eu-west-2",
    "europe (london)": "eu-west-2",
    "eu (frankfurt)": "eu-central-1",
    "europe (frankfurt)": "eu-central-1",
    "eu (paris)": "eu-west-3",
    "europe (stockholm)": "eu-north-1",
    "asia pacific (tokyo)": "ap-northeast-1",
    "asia pacific (singapore)": "ap-southeast-1",
    "asia pacific (sydney)": "ap-southeast-2",
    "asia pacific (mumbai)": "ap-south-1",
    "canada (central)": "ca-central-1",
    "south america (sao paulo)": "sa-east-1",
}


class Alarm(BaseModel):
    source: Source
    name: str | None = None
    state: str | None = None
    namespace: str | None = None
    metric: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    region: str | None = None
    account: str | None = None
    arn: str | None = None
    incident_id: str | None = None
    reason: str | None = None
    changed_at: str | None = None
    threshold: float | None = None
    statistic: str | None = None  # CloudWatch statistic of the alarm (Average, Sum, p99…)
    service: str | None = None  # PagerDuty service id
    service_name: str | None = None

    @property
    def identity(self) -> str | None:
        """What makes two posts the same alarm, however much each post carried.

        A PagerDuty incident is its id; a CloudWatch alarm is its name (names are unique in an
        account and region, and the triage scopes the key by environment).  It must not depend
        on what enrichment later adds (an ARN, a metric), or a recovery would not find its thread.
        """
        if self.incident_id:
            return f"pagerduty:{self.incident_id}"
        if self.name:
            return f"alarm:{self.name}"
        return None

    @property
    def firing(self) -> bool:
        return (self.state or "") in FIRING

    @property
    def recovered(self) -> bool:
        return (self.state or "") in RECOVERED

    def explain(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "namespace": self.namespace,
            "metric": self.metric,
            "dimensions": self.dimensions or None,
            "region": self.region,
            "account": self.account,
        }


# -------------------------------------------------------------------------------------------
# CloudWatch alarm JSON (inside SNS, Lambda events, or bare)
# -------------------------------------------------------------------------------------------


def _statistic(trigger: Mapping[str, Any]) -> str | None:
    """``AVERAGE`` / ``Sum`` / an extended statistic, as CloudWatch's API spells them."""
    extended = trigger.get("ExtendedStatistic")
    if isinstance(extended, str) and extended:
        return extended
    raw = str(trigger.get("Statistic") or "").strip().lower()
    names = {"average": "Average", "sum": "Sum", "minimum": "Minimum", "maximum": "Maximum"}
    names["samplecount"] = "SampleCount"
    return names.get(raw)


def from_cloudwatch(doc: Mapping[str, Any]) -> Alarm:
    arn = _str(doc.get("AlarmArn"))
    region = account = None
    if isinstance(arn, str):
        m = _ARN.search(arn)
        if m:
            region, account = m.group(1), m.group(2)
        else:
            arn = None  # placeholders like arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE
    account = account or (
        str(doc["AWSAccountId"])
        if re.fullmatch(r"\d{12}", str(doc.get("AWSAccountId", "")))
        else None
    )
    region = region or _REGION_NAMES.get(str(doc.get("Region", "")).strip().lower())
    raw_trigger = doc.get("Trigger")
    trigger: Mapping[str, Any] = raw_trigger if isinstance(raw_trigger, Mapping) else {}
    namespace, metric, dims = (
        trigger.get("Namespace"),
        trigger.get("MetricName"),
        trigger.get("Dimensions"),
    )
    if not metric and isinstance(
        trigger.get("Metrics"), list
    ):  # metric math: the first real metric
        for m in trigger["Metrics"]:
            stat = (m or {}).get("MetricStat", {}).get("Metric", {})
            if stat.get("MetricName"):
                namespace, metric, dims = (
                    stat.get("Namespace"),
                    stat.get("MetricName"),
                    stat.get("Dimensions"),
                )
                break
    dimensions = {}
    for d in dims if isinstance(dims, list) else []:
        if isinstance(d, Mapping):
            key = d.get("name") or d.get("Name")
            value = d.get("value") or d.get("Value")
            if key and value is not None:
                dimensions[str(key)] = str(value)
    threshold = trigger.get("Threshold")
    return Alarm(
        source="cloudwatch",
        name=_str(doc.get("AlarmName")),
        state=_upper(doc.get("NewStateValue")),
        namespace=_str(namespace),
        metric=_str(metric),
        dimensions=dimensions,
        region=region,
        account=account,
        arn=arn,
        reason=_str(doc.get("NewStateReason")),
        changed_at=_str(doc.get("StateChangeTime")),
        threshold=float(threshold) if isinstance(threshold, int | float) else None,
        statistic=_statistic(trigger),
    )


def _upper(value: Any) -> str | None:
    return str(value).upper() if isinstance(value, str | int | float) and value else None


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str | int | float) and str(value) else None


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


# -------------------------------------------------------------------------------------------
# PagerDuty webhook v3
# -------------------------------------------------------------------------------------------


def from_pagerduty_webhook(doc: Mapping[str, Any], known_names: Iterable[str] = ()) -> Alarm:
    event = doc.get("event") or {}
    data = event.get("data") or {}
    state = {
        "incident.triggered": "TRIGGERED",
        "incident.acknowledged": "ACKNOWLEDGED",
        "incident.resolved": "RESOLVED",
    }.get(str(event.get("event_type")), _upper(data.get("status")))
    title = str(data.get("title") or "")
    texts = [title, str((data.get("service") or {}).get("summary") or "")]
    found = _scan(texts, known_names)
    return Alarm(
        source="pagerduty",
        name=found.get("name") or title or None,
        state=state,
        namespace=found.get("namespace"),
        metric=found.get("metric"),
        dimensions=found.get("dimensions", {}),
        region=found.get("region"),
        account=found.get("account"),
        arn=found.get("arn"),
        incident_id=_str(data.get("id")),
        service=_str((data.get("service") or {}).get("id")),
        service_name=_str((data.get("service") or {}).get("summary")),
        changed_at=_str(event.get("occurred_at")),
        reason=title or None,
    )


# -------------------------------------------------------------------------------------------
# Slack message events
# -------------------------------------------------------------------------------------------


def slack_texts(event: Mapping[str, Any]) -> list[str]:
    """Every text-bearing field of a Slack message: text, attachments, blocks, fields, context."""
    out: list[str] = []

    def walk(node: Any, depth: int = 0) -> None:
        if depth > 12:
            return
        if isinstance(node, str):
            if node.strip():
                out.append(node)
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


def _scan(texts: list[str], known_names: Iterable[str] = ()) -> dict[str, Any]:
    blob = "\n".join(texts)
    found: dict[str, Any] = {}
    arn = _ARN.search(blob)
    if arn:
        found.update(arn=arn.group(0), region=arn.group(1), account=arn.group(2), name=arn.group(3))
    for name in sorted(known_names, key=len, reverse=True):
        if name and name in blob:
            found.setdefault("name", name)
            break
    chatbot = _CHATBOT.search(blob)
    if chatbot:
        found.setdefault("name", chatbot.group(1).strip())
        region = chatbot.group(2).strip()
        if _REGION.fullmatch(region):
            found.setdefault("region", region)
    for rx in (_SUBJECT,):
        m = rx.search(blob)
        if m:
            found.setdefault("state", m.group(1).upper())
            found.setdefault("name", m.group(2).strip())
    m = _NAME_FIELD.search(blob)
    if m:
        found.setdefault("name", m.group(1).strip())
    m = _STATE_FIELD.search(blob)
    if m:
        found.setdefault("state", m.group(1).upper())
    m = _ACCOUNT.search(blob)
    if m:
        found.setdefault("account", m.group(1))
    m = _REGION.search(blob)
    if m:
        found.setdefault("region", m.group(1))
    m = _NAMESPACE.search(blob)
    if m:
        found["namespace"] = m.group(1)
    for metric in KNOWN_METRICS:
        if re.search(rf"\b{metric}\b", blob):
            found["metric"] = metric
            break
    dims = {}
    for dim in KNOWN_DIMENSIONS:
        dm = re.search(rf"\*?{dim}\*?\s*[:=]?\s*\n?\s*([A-Za-z0-9/_.:-]+)", blob)
        if dm and dm.group(1).lower() not in {"and", "the"}:
            dims[dim] = dm.group(1)
    if dims:
        found["dimensions"] = dims
    return found


def from_slack_event(event: Mapping[str, Any], known_names: Iterable[str] = ()) -> Alarm | None:
    """The alarm a Slack message announces, or None when it is not an alarm post."""
    texts = slack_texts(event)
    if not texts:
        return None
    blob = "\n".join(texts)
    found = _scan(texts, known_names)
    pd = _PD_INCIDENT.search(blob)
    is_pagerduty = (
        bool(pd) or "pagerduty" in json.dumps(event.get("bot_profile", {}), default=str).lower()
    )
    state = found.get("state")
    incident = None
    if is_pagerduty and pd:
        incident = pd.group(1) or f"#{pd.group(2)}"
        pd_state = _PD_STATE.search(blob)
        if pd_state:
            state = pd_state.group(1).upper()
    if state is None:
        plain = _PLAIN_STATE.search(blob)
        if plain and (found.get("name") or found.get("arn")):
            state = plain.group(1)
    if not (found.get("name") or incident) or state is None:
        return None
    name = found.get("name")
    if is_pagerduty and not name:
        title = re.search(r"\[#\d+\]\s*([^>*\n]+)", blob)
        name = title.group(1).strip() if title else None
    return Alarm(
        source="slack",
        name=name,
        state=state,
        namespace=found.get("namespace"),
        metric=found.get("metric"),
        dimensions=found.get("dimensions", {}),
        region=found.get("region"),
        account=found.get("account"),
        arn=found.get("arn"),
        incident_id=incident,
    )


# -------------------------------------------------------------------------------------------
# any payload
# -------------------------------------------------------------------------------------------


def parse_any(doc: Any, known_names: Iterable[str] = ()) -> Alarm | None:
    """Detect the payload's kind and read the alarm in it; None when there is none."""
    if not isinstance(doc, Mapping):
        return None
    if isinstance(doc.get("Records"), list) and doc["Records"]:
        sns = _map(_map(doc["Records"][0]).get("Sns"))
        return parse_any(sns, known_names) if sns else None
    if (
        doc.get("Type") in ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
        and "Message" in doc
    ):
        inner = _maybe_json(doc.get("Message"))
        if inner is not None and "AlarmName" in inner:
            return from_cloudwatch(inner)
        subject = str(doc.get("Subject") or "")
        m = _SUBJECT.search(subject)
        if m:
            return Alarm(source="cloudwatch", name=m.group(2), state=m.group(1).upper())
        return None
    if "AlarmName" in doc:
        return from_cloudwatch(doc)
    event = doc.get("event")
    if isinstance(event, Mapping) and str(event.get("event_type", "")).startswith("incident."):
        return from_pagerduty_webhook(doc, known_names)
    if isinstance(event, Mapping) and event.get("type") == "message":
        return from_slack_event(event, known_names)
    if doc.get("type") == "message":
        return from_slack_event(doc, known_names)
    return None


def source_of(doc: Any) -> Source | None:
    if not isinstance(doc, Mapping):
        return None
    if "Records" in doc or "AlarmName" in doc or doc.get("Type") == "Notification":
        return "cloudwatch"
    event = doc.get("event")
    if isinstance(event, Mapping) and str(event.get("event_type", "")).startswith("incident."):
        return "pagerduty"
    if (isinstance(event, Mapping) and event.get("type") == "message") or doc.get(
        "type"
    ) == "message":
        return "slack"
    return None
