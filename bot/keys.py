"""Every Redis key Omni uses, in one place (all under ``omni:``).

Each function returns one key; its docstring says what it holds and how long it lives.  The bot
and the workers import the same function, so a key is spelled once.  Keys expire unless they
are the audit stream; RQ's own keys (``rq:``) are RQ's.
"""

from __future__ import annotations

PREFIX = "omni:"
AUDIT = "omni:audit"  # stream of audit records; trimmed by age (OMNI_AUDIT_RETENTION_DAYS)


def event(event_id: str) -> str:
    """A Slack event already handled (Slack retries an event it thinks we missed); 1 h."""
    return f"omni:event:{event_id}"


def slack_signature(signature: str) -> str:
    """A signed Slack request seen once (replays refused); 6 min."""
    return f"omni:slack-sig:{signature}"


def webhook_delivery(source: str, key: str) -> str:
    """An alarm delivery already accepted from ``source`` (its signed id); 1 day."""
    return f"omni:delivery:{source}:{key}"


def alarm_catalog(environment: str) -> str:
    """Hash: the environment's real alarm names → metric, dimensions, threshold; 1 day."""
    return f"omni:alarm-catalog:{environment}"


def alarm_catalog_fresh(environment: str) -> str:
    """Set while the alarm catalog is fresh (refreshed at most every 5 minutes)."""
    return f"omni:alarm-catalog:{environment}:fresh"


def alarm_seen(identity: str) -> str:
    """A firing alarm already triaged (dedup window)."""
    return f"omni:alarm-seen:{identity}"


def alarm_thread(identity: str) -> str:
    """Hash: where an alarm's triage thread is (channel, ts, first reply); 7 days."""
    return f"omni:alarm-thread:{identity}"


def alarm_unknown(identity: str) -> str:
    """An alarm from an unknown account, already answered (dedup window)."""
    return f"omni:alarm-unknown:{identity}"


def recovered(identity: str, thread_ts: str) -> str:
    """An alarm's recovery already noted in its thread; 7 days."""
    return f"omni:recovered:{identity}:{thread_ts}"


def storm_count(channel: str, minute: int) -> str:
    """Alarms in a channel in one minute; 3 min."""
    return f"omni:storm:{channel}:{minute}"


def storm_post(channel: str) -> str:
    """The storm summary is posted (until the channel is quiet)."""
    return f"omni:storm-post:{channel}"


def storm_thread(channel: str) -> str:
    """The ts of the storm's thread (until the channel is quiet)."""
    return f"omni:storm-thread:{channel}"


def run_claim(environment: str, runbook: str, window: int) -> str:
    """A runbook already running for an alarm in this triage window."""
    return f"omni:run:{environment}:{runbook}:{window}"


def plan(plan_id: str) -> str:
    """A fix plan (JSON); its TTL plus 7 days."""
    return f"omni:plan:{plan_id}"


def fix_count(target: str, hour: int) -> str:
    """Fixes run on one target in one hour (circuit breaker); 2 h."""
    return f"omni:fixcount:{target}:{hour}"


def pace(channel: str) -> str:
    """The next free posting slot of a channel (about one post a second); 2 min."""
    return f"omni:pace:{channel}"


def pace_sent(channel: str) -> str:
    """When the channel's last post left (Redis time, ms): the gate before each post; 2 min."""
    return f"omni:pace-sent:{channel}"


def usergroup(group: str) -> str:
    """A Slack user group's members (JSON list); 1 min."""
    return f"omni:usergroup:{group}"


def timeline(channel: str, thread_ts: str) -> str:
    """Stream: a thread's incident timeline; 90 days."""
    return f"omni:timeline:{channel}:{thread_ts}"


def rate(user: str) -> str:
    """A user's token bucket for ``/omni`` (hash: tokens, at); 1 h."""
    return f"omni:rate:{user}"


def slack_token_state() -> str:
    """The bot token's last check against Slack (``auth.test``), for /readyz; 1 h."""
    return "omni:slack-token"
