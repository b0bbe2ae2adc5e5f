"""CloudWatch alarms: the alarm JSON, bare, in a Lambda SNS event, or an SNS notification; or
the EventBridge "CloudWatch Alarm State Change" event, bare or as an SNS notification's message.

Over HTTP they arrive as SNS messages at ``POST /sns`` (an HTTPS subscription).  A message is
accepted only when SNS signed it (signature versions 1 and 2; the certificate only from
``https://sns.<region>.amazonaws.com/…pem`` or ``OMNI_SNS_CERT_DIR``, cached, its dates
checked), it is fresh (``OMNI_SNS_MAX_AGE_S``), and its topic is one of ``OMNI_SNS_TOPICS``:
the signature does not cover the destination, so without the topic check anybody's topic,
signed by SNS, could post alarms here.  A ``SubscriptionConfirmation`` of an allowed topic is
confirmed by visiting its ``amazonaws.com`` SubscribeURL.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard
from urllib.parse import urlparse

from ..alarm import Alarm
from ..text import escape
from . import AlarmSource, Rejected, source
from ._scan import ARN, REGION_NAMES, SUBJECT, mapping, text_of, upper

logger = logging.getLogger(__name__)

CERT_URL = re.compile(r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/[A-Za-z0-9._-]+\.pem$")
SNS_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message",
        "MessageId",
        "SubscribeURL",
        "Timestamp",
        "Token",
        "TopicArn",
        "Type",
    ),
}
_FIELDS["UnsubscribeConfirmation"] = _FIELDS["SubscriptionConfirmation"]


def _field(message: Mapping[str, Any], name: str) -> Any:
    # Lambda events spell these SigningCertUrl / UnsubscribeUrl / SubscribeUrl
    return message.get(name, message.get(name.replace("URL", "Url")))


def canonical(message: Mapping[str, Any]) -> bytes:
    """The string SNS signs: the signed fields of the message's type, sorted, name\\nvalue\\n."""
    kind = message.get("Type")
    if kind not in _FIELDS:
        raise Rejected(f"unknown message Type {kind!r}", "malformed")
    parts = []
    for name in _FIELDS[str(kind)]:
        value = _field(message, name)
        if value is None:
            if name == "Subject":
                continue
            raise Rejected(f"missing signed field {name}", "malformed")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode()


def _https_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as response:
        data: bytes = response.read(64 * 1024)
        return data


class CertificateStore:
    """SNS signing certificates by URL: from ``cert_dir`` or fetched over HTTPS, cached."""

    def __init__(self, cert_dir: Path | None = None, fetch: Any = None) -> None:
        self.cert_dir = cert_dir
        self._fetch = fetch or _https_get
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, url: str) -> Any:
        from cryptography import x509

        if not CERT_URL.match(url or ""):
            raise Rejected(
                f"certificate URL not on sns.<region>.amazonaws.com: {url!r}", "cert_url"
            )
        with self._lock:
            cert = self._cache.get(url)
        if cert is not None:
            return cert
        name = urlparse(url).path.rsplit("/", 1)[-1]
        local = self.cert_dir / name if self.cert_dir else None
        pem = local.read_bytes() if local and local.is_file() else self._fetch(url)
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as exc:
            raise Rejected(f"certificate at {url} is not a PEM certificate") from exc
        with self._lock:
            self._cache[url] = cert
        return cert


def verify_signature(
    message: Mapping[str, Any],
    store: CertificateStore,
    *,
    max_age_s: int = 3600,
    check_cert_dates: bool = True,
    now: datetime | None = None,
) -> None:
    """Raise :class:`Rejected` unless ``message`` is signed by SNS and fresh enough."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    version = str(message.get("SignatureVersion", ""))
    if version not in ("1", "2"):
        raise Rejected(f"unknown SignatureVersion {version!r}", "signature_version")
    cert = store.get(str(_field(message, "SigningCertURL") or ""))
    now = now or datetime.now(UTC)
    if check_cert_dates and not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
        raise Rejected("signing certificate is not valid now")
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
    except ValueError as exc:
        raise Rejected("signature is not base64") from exc
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Rejected("signing certificate does not hold an RSA key")
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()
    try:
        key.verify(signature, canonical(message), padding.PKCS1v15(), digest)
    except InvalidSignature as exc:
        raise Rejected("signature does not match the message") from exc
    if max_age_s:
        try:
            sent = datetime.fromisoformat(str(message.get("Timestamp", "")).replace("Z", "+00:00"))
        except ValueError as exc:
            raise Rejected("unreadable Timestamp", "malformed") from exc
        age = (now - sent).total_seconds()
        if age > max_age_s:
            raise Rejected(f"message is {age:.0f}s old (limit {max_age_s}s)", "stale")


def subscribe_url_ok(url: str) -> bool:
    parsed = urlparse(url or "")
    host = parsed.hostname or ""
    return parsed.scheme == "https" and (
        host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")
    )


def _statistic(trigger: Mapping[str, Any]) -> str | None:
    """``AVERAGE`` / ``Sum`` / an extended statistic, as CloudWatch's API spells them."""
    extended = trigger.get("ExtendedStatistic")
    if isinstance(extended, str) and extended:
        return extended
    raw = str(trigger.get("Statistic") or "").strip().lower()
    names = {"average": "Average", "sum": "Sum", "minimum": "Minimum", "maximum": "Maximum"}
    names["samplecount"] = "SampleCount"
    return names.get(raw)


def _dimensions(dims: Any) -> dict[str, str]:
    """Dimensions as the alarm JSON lists them (``[{name, value}]``, either case) or as the
    EventBridge event maps them (``{name: value}``)."""
    if isinstance(dims, Mapping):
        return {str(k): str(v) for k, v in dims.items() if v is not None}
    out = {}
    for d in dims if isinstance(dims, list) else []:
        if isinstance(d, Mapping):
            key = d.get("name") or d.get("Name")
            value = d.get("value") or d.get("Value")
            if key and value is not None:
                out[str(key)] = str(value)
    return out


def from_alarm_json(doc: Mapping[str, Any]) -> Alarm:
    """The alarm in CloudWatch's alarm JSON (single metric, metric math, or minimal)."""
    arn = text_of(doc.get("AlarmArn"))
    region = account = None
    if arn:
        m = ARN.search(arn)
        if m:
            region, account = m.group(1), m.group(2)
        else:
            arn = None  # placeholders like arn:aws:cloudwatch:REGION:ACCOUNT_NUMBER:alarm:EXAMPLE
    if not account and re.fullmatch(r"\d{12}", str(doc.get("AWSAccountId", ""))):
        account = str(doc["AWSAccountId"])
    region = region or REGION_NAMES.get(str(doc.get("Region", "")).strip().lower())
    trigger = mapping(doc.get("Trigger"))
    namespace, metric, dims = (
        trigger.get("Namespace"),
        trigger.get("MetricName"),
        trigger.get("Dimensions"),
    )
    if not metric and isinstance(trigger.get("Metrics"), list):  # metric math: the first metric
        for m in trigger["Metrics"]:
            stat = mapping(mapping(mapping(m).get("MetricStat")).get("Metric"))
            if stat.get("MetricName"):
                namespace, metric, dims = (
                    stat.get("Namespace"),
                    stat.get("MetricName"),
                    stat.get("Dimensions"),
                )
                break
    dimensions = _dimensions(dims)
    threshold = trigger.get("Threshold")
    return Alarm(
        source="cloudwatch",
        name=text_of(doc.get("AlarmName")),
        state=upper(doc.get("NewStateValue")),
        namespace=text_of(namespace),
        metric=text_of(metric),
        dimensions=dimensions,
        region=region,
        account=account,
        arn=arn,
        reason=text_of(doc.get("NewStateReason")),
        changed_at=text_of(doc.get("StateChangeTime")),
        threshold=float(threshold) if isinstance(threshold, int | float) else None,
        statistic=_statistic(trigger),
    )


STATE_CHANGE = "CloudWatch Alarm State Change"


def is_state_change(doc: Any) -> TypeGuard[Mapping[str, Any]]:
    """An EventBridge alarm event: what a rule on ``aws.cloudwatch`` delivers to its targets
    (an SNS topic among them, as the notification's ``Message``)."""
    return (
        isinstance(doc, Mapping)
        and doc.get("detail-type") == STATE_CHANGE
        and isinstance(doc.get("detail"), Mapping)
    )


def from_state_change(event: Mapping[str, Any]) -> Alarm:
    """The alarm in an EventBridge "CloudWatch Alarm State Change" event: ``detail.state`` is an
    object, the metric is ``configuration.metrics[].metricStat.metric`` (metric math: the first
    one with a metric; composite alarms have none), the threshold is in ``state.reasonData``."""
    detail = mapping(event.get("detail"))
    state = mapping(detail.get("state"))
    namespace = metric = statistic = None
    dimensions: dict[str, str] = {}
    metrics = mapping(detail.get("configuration")).get("metrics")
    for m in metrics if isinstance(metrics, list) else []:
        stat = mapping(mapping(m).get("metricStat"))
        found = mapping(stat.get("metric"))
        if found.get("name"):
            namespace, metric = text_of(found.get("namespace")), text_of(found.get("name"))
            statistic = text_of(stat.get("stat"))
            dimensions = _dimensions(found.get("dimensions"))
            break
    reason_data = _maybe_json(state.get("reasonData"))
    threshold = mapping(reason_data).get("threshold")
    arn = next(
        (str(r) for r in event.get("resources") or [] if isinstance(r, str) and ARN.search(r)),
        None,
    )
    region, account = text_of(event.get("region")), text_of(event.get("account"))
    if arn and not (region and account):
        m = ARN.search(arn)
        if m:
            region, account = region or m.group(1), account or m.group(2)
    return Alarm(
        source="cloudwatch",
        name=text_of(detail.get("alarmName")),
        state=upper(state.get("value")),
        namespace=namespace,
        metric=metric,
        dimensions=dimensions,
        region=region,
        account=account if account and re.fullmatch(r"\d{12}", account) else None,
        arn=arn,
        reason=text_of(state.get("reason")),
        changed_at=text_of(state.get("timestamp")) or text_of(event.get("time")),
        threshold=float(threshold) if isinstance(threshold, int | float) else None,
        statistic=statistic,
    )


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value if isinstance(value, Mapping) else None


def _envelope(doc: Any) -> Mapping[str, Any] | None:
    """The SNS message in a document: itself, or the first record of a Lambda SNS event."""
    if not isinstance(doc, Mapping):
        return None
    records = doc.get("Records")
    if isinstance(records, list) and records:
        sns = mapping(mapping(records[0]).get("Sns"))
        return sns or None
    if doc.get("Type") in SNS_TYPES and "Message" in doc:
        return doc
    return None


@source
class CloudWatchSource(AlarmSource):
    name = "cloudwatch"
    endpoint = "/sns"

    def detect(self, doc: Any) -> bool:
        return (
            _envelope(doc) is not None
            or (isinstance(doc, Mapping) and "AlarmName" in doc)
            or is_state_change(doc)
        )

    def parse(self, doc: Any, known_names: Iterable[str] = ()) -> Alarm | None:
        envelope = _envelope(doc)
        if envelope is None:
            if is_state_change(doc):
                return from_state_change(doc)
            return from_alarm_json(doc) if isinstance(doc, Mapping) and "AlarmName" in doc else None
        inner = _maybe_json(envelope.get("Message"))
        if inner is not None and "AlarmName" in inner:
            return from_alarm_json(inner)
        if is_state_change(inner):
            return from_state_change(inner)
        m = SUBJECT.search(str(envelope.get("Subject") or "")[:1024])
        if m:
            return Alarm(source="cloudwatch", name=m.group(2), state=m.group(1).upper())
        return None

    # -- over HTTP: POST /sns ---------------------------------------------------------------
    @property
    def store(self) -> CertificateStore:
        store = self.deps.get("cert_store")
        if store is None:
            store = self.deps["cert_store"] = CertificateStore(
                getattr(self.settings, "sns_cert_dir", None)
            )
        return store

    def verify(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        try:
            message = json.loads(body or b"{}")
        except ValueError as exc:
            raise Rejected("body is not an SNS JSON message", "malformed", 400) from exc
        if not isinstance(message, dict):
            raise Rejected("body is not an SNS JSON message", "malformed", 400)
        verify_signature(
            message,
            self.store,
            max_age_s=self.settings.sns_max_age_s,
            check_cert_dates=self.settings.sns_verify_cert_dates,
        )
        topic = message.get("TopicArn")
        if topic not in self.settings.sns_topics:  # the signature does not cover the destination
            raise Rejected(f"topic {topic} is not one of OMNI_SNS_TOPICS", "topic")
        return message

    def dedup_key(self, doc: Mapping[str, Any]) -> str | None:
        return text_of(doc.get("MessageId"))

    def control(self, doc: Mapping[str, Any]) -> tuple[dict[str, Any], int] | None:
        kind, topic = doc.get("Type"), doc.get("TopicArn")
        if kind == "SubscriptionConfirmation":
            url = str(_field(doc, "SubscribeURL") or "")
            if not subscribe_url_ok(url):
                raise Rejected(
                    f"SubscribeURL is not on amazonaws.com: {url[:200]!r}", "subscribe_url"
                )
            self.deps.get("visit", _visit)(url)
            logger.info("confirmed sns subscription to %s", topic)
            return {"confirmed": topic}, 200
        if kind != "Notification":
            return {"ignored": kind}, 200
        return None

    def headline(self, alarm: Alarm, doc: Mapping[str, Any]) -> str:
        return (
            f":rotating_light: *{escape(alarm.state)}*: `{escape(alarm.name)}` in "
            f"{escape(alarm.region or '?')} (account {escape(alarm.account or '?')}): "
            f"{escape(alarm.reason or '')}"
        )[:2900]


def _visit(url: str) -> None:
    with urllib.request.urlopen(url, timeout=5) as response:
        response.read(1024)
