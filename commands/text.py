"""Text that is not ours, made safe for Slack's mrkdwn: one helper every renderer uses.

In mrkdwn, ``<!channel>``, ``<@U…>``, ``<#C…>`` and ``<https://url|label>`` are live controls.
Anything that comes from outside — alarm names and reasons, PagerDuty titles, log lines, WAF
URIs, SQL, finding details built from them — goes through :func:`escape` (``&``, ``<``, ``>``
become entities) before it reaches a message.  Omni's own mentions and links are written with
:func:`mention` and :func:`link` after escaping, so they stay live.
"""

from __future__ import annotations

import re

_SLACK_ID = re.compile(r"^[UWBSC][A-Z0-9]{1,20}$")


def escape(text: object) -> str:
    """``&``, ``<`` and ``>`` as entities (Slack's own rule for untrusted text)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(user: str | None) -> str:
    """A live mention of a Slack user id, or the id escaped when it is not one (or "Omni")."""
    if not user or user == "-":
        return "Omni"
    return f"<@{user}>" if _SLACK_ID.match(user) else escape(user)


def link(url: str, label: str) -> str:
    """A live link with an escaped label; an URL that is not http(s) is shown as text."""
    if not re.match(r"^https?://[^\s<>|]+$", url or ""):
        return escape(label)
    return f"<{url}|{escape(label).replace('|', '¦')}>"
