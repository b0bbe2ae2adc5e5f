"""Alarm posts in a Slack channel, by PagerDuty, AWS Chatbot / Amazon Q or an SNS-to-Slack app.

Layouts vary and change (``text: ""`` with the content in ``attachments`` or ``blocks``, two
app-message shapes), so every text-bearing field is read and the alarm looked for anywhere in
them; names of the account's real alarms, when known, identify it exactly.  Slack's signature
is checked by Bolt before the bot's listener sees the event; which posts count as alarms is
:func:`is_alarm_source`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..alarm import Alarm
from . import AlarmSource, source
from ._scan import MAX_SCAN, PD_INCIDENT, PD_STATE, PLAIN_STATE, mapping, scan, slack_texts

_PD_TITLE = re.compile(r"\[#\d{1,12}\][ \t]{0,4}([^>*\n]{1,255})")


def is_alarm_source(event: Mapping[str, Any], alarm_sources: Iterable[str]) -> bool:
    """Posts by the configured integrations (their app or bot ids); with none configured, any
    app or bot post.  ``username`` is not an identity (any webhook sets it), so it never counts."""
    profile = mapping(event.get("bot_profile"))
    ids = {event.get("bot_id"), event.get("app_id"), profile.get("app_id"), profile.get("id")}
    ids.discard(None)
    allowed = set(alarm_sources)
    if allowed:
        return bool(ids & allowed)
    return bool(event.get("bot_id")) or event.get("subtype") == "bot_message"


def from_event(event: Mapping[str, Any], known_names: Iterable[str] = ()) -> Alarm | None:
    """The alarm a Slack message announces, or None when it is not an alarm post."""
    texts = slack_texts(event)
    if not texts:
        return None
    blob = "\n".join(texts)[:MAX_SCAN]
    found = scan(texts, known_names)
    pd = PD_INCIDENT.search(blob)
    profile = json.dumps(event.get("bot_profile", {}), default=str)[:2000].lower()
    is_pagerduty = bool(pd) or "pagerduty" in profile
    state = found.get("state")
    incident = None
    if is_pagerduty and pd:
        incident = pd.group(1) or f"#{pd.group(2)}"
        pd_state = PD_STATE.search(blob)
        if pd_state:
            state = pd_state.group(1).upper()
    if state is None:
        plain = PLAIN_STATE.search(blob)
        if plain and (found.get("name") or found.get("arn")):
            state = plain.group(1)
    if not (found.get("name") or incident) or state is None:
        return None
    name = found.get("name")
    if is_pagerduty and not name:
        title = _PD_TITLE.search(blob)
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


def _event(doc: Any) -> Mapping[str, Any] | None:
    if not isinstance(doc, Mapping):
        return None
    event = doc.get("event")
    if isinstance(event, Mapping) and event.get("type") == "message":
        return event
    return doc if doc.get("type") == "message" else None


@source
class SlackSource(AlarmSource):
    name = "slack"

    def detect(self, doc: Any) -> bool:
        return _event(doc) is not None

    def parse(self, doc: Any, known_names: Iterable[str] = ()) -> Alarm | None:
        event = _event(doc)
        return from_event(event, known_names) if event is not None else None

    def dedup_key(self, doc: Mapping[str, Any]) -> str | None:
        event_id = doc.get("event_id")
        return str(event_id) if event_id else None
