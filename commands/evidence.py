"""Evidence tests for causal links: does what the effect saw point at this cause?

A link between two checks (:class:`commands.areas.Link`) may carry a test of the two findings;
the analysis draws the link only when it passes.  These build the common ones from what the
checks put in their evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .models import Finding

Evidence = Callable[[Finding, Finding], bool]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def stopped(*categories: str) -> Evidence:
    """The effect's stopped tasks stopped for one of these reasons (``ecs.stopped_tasks``)."""

    def test(cause: Finding, effect: Finding) -> bool:
        by_cause = _dict(effect.evidence.get("by_cause"))
        return any(by_cause.get(c) for c in categories)

    return test


def errors_about(*kinds: str) -> Evidence:
    """The effect's error lines are about these (``ecs.container_errors`` ``mentions``)."""

    def test(cause: Finding, effect: Finding) -> bool:
        mentions = _dict(effect.evidence.get("mentions"))
        return any(int(mentions.get(k) or 0) > 0 for k in kinds)

    return test


def either(*tests: Evidence) -> Evidence:
    def test(cause: Finding, effect: Finding) -> bool:
        return any(t(cause, effect) for t in tests)

    return test


def names_one_of(key: str) -> Evidence:
    """The effect names a host of the cause's evidence ``key`` (an endpoint) in its resources."""

    def test(cause: Finding, effect: Finding) -> bool:
        hosts = cause.evidence.get(key)
        wanted = {str(h).lower() for h in (hosts if isinstance(hosts, list) else [hosts]) if h}
        seen = {r.lower().rsplit(":", 1)[0] for r in effect.resources}
        return bool(wanted & seen)

    return test


def from_revision(cause: Finding, effect: Finding) -> bool:
    """The effect's failing tasks run the revision the cause's deployment rolls out."""
    rolling = cause.evidence.get("rolling_out")
    revisions = effect.evidence.get("task_definitions") or []
    return bool(rolling) and rolling in revisions


def not_from_revision(cause: Finding, effect: Finding) -> bool:
    return not from_revision(effect, cause)
