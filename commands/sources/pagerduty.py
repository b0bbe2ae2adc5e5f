"""PagerDuty v3 webhooks at ``POST /pagerduty``.

``X-PagerDuty-Signature`` holds one or more ``v1=<hex HMAC-SHA256 of the raw body>`` (several
during a secret rotation), checked against ``OMNI_PAGERDUTY_WEBHOOK_SECRET``.  Delivery is at
least once, and the ``X-Webhook-Id`` header is outside the signature: anyone who saw one signed
body could resend it under a new id.  So a delivery is a duplicate by the signed ``event.id``,
and an event whose ``occurred_at`` is older than ``OMNI_PAGERDUTY_MAX_AGE_S`` is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..alarm import Alarm
from ..text import escape, link
from . import AlarmSource, Rejected, source
from ._scan import mapping, scan, text_of, upper

STATES = {
    "incident.triggered": "TRIGGERED",
    "incident.acknowledged": "ACKNOWLEDGED",
    "incident.resolved": "RESOLVED",
}


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """True when any ``v1=`` signature (several during secret rotation) matches the raw body."""
    if not secret or not header:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == "v1" and hmac.compare_digest(
            value.strip().lower().encode("ascii", "replace"), expected.encode()
        ):
            return True
    return False


def from_webhook(doc: Mapping[str, Any], known_names: Iterable[str] = ()) -> Alarm:
    event = mapping(doc.get("event"))
    data = mapping(event.get("data"))
    service = mapping(data.get("service"))
    state = STATES.get(str(event.get("event_type")), upper(data.get("status")))
    title = str(data.get("title") or "")[:1024]
    found = scan([title, str(service.get("summary") or "")[:1024]], known_names)
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
        incident_id=text_of(data.get("id")),
        service=text_of(service.get("id")),
        service_name=text_of(service.get("summary")),
        changed_at=text_of(event.get("occurred_at")),
        reason=title or None,
    )


@source
class PagerDutySource(AlarmSource):
    name = "pagerduty"
    endpoint = "/pagerduty"

    def detect(self, doc: Any) -> bool:
        event = mapping(mapping(doc).get("event"))
        return str(event.get("event_type", "")).startswith("incident.")

    def parse(self, doc: Any, known_names: Iterable[str] = ()) -> Alarm | None:
        return from_webhook(doc, known_names) if self.detect(doc) else None

    def verify(self, body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        secret = self.settings.pagerduty_webhook_secret
        if not signature_ok(
            secret.get_secret_value() if secret else "", body, headers.get("x-pagerduty-signature")
        ):
            raise Rejected("bad or missing X-PagerDuty-Signature", "signature", 401)
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise Rejected("body is not JSON", "malformed", 400) from exc
        if not isinstance(doc, dict):
            raise Rejected("body is not a JSON object", "malformed", 400)
        occurred = text_of(mapping(doc.get("event")).get("occurred_at"))
        limit = self.settings.pagerduty_max_age_s
        if limit and occurred:
            try:
                at = datetime.fromisoformat(occurred.replace("Z", "+00:00"))
            except ValueError as exc:
                raise Rejected("unreadable occurred_at", "malformed", 400) from exc
            age = (datetime.now(UTC) - at).total_seconds()
            if age > limit:
                raise Rejected(f"event occurred {age:.0f}s ago (limit {limit}s)", "stale", 403)
        return doc

    def dedup_key(self, doc: Mapping[str, Any]) -> str | None:
        return text_of(mapping(doc.get("event")).get("id"))  # signed, unlike X-Webhook-Id

    def control(self, doc: Mapping[str, Any]) -> tuple[dict[str, Any], int] | None:
        event_type = str(mapping(doc.get("event")).get("event_type", ""))
        if event_type not in ("incident.triggered", "incident.resolved"):
            return {"ignored": event_type}, 200
        return None

    def headline(self, alarm: Alarm, doc: Mapping[str, Any]) -> str:
        data = mapping(mapping(doc.get("event")).get("data"))
        number = text_of(data.get("number")) or "?"
        incident = link(str(data.get("html_url") or ""), f"#{number}")
        return (
            f":rotating_light: PagerDuty incident {incident} triggered: "
            f"{escape(data.get('title') or '')} ({escape(alarm.service_name or '?')})"
        )[:2900]
