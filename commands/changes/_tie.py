"""Tying changes to what broke: a lead needs the right kind *and* a shared resource."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..models import Finding, Report, Status
from ._kinds import brief, kind_of
from ._model import Change

if TYPE_CHECKING:
    from ..context import CheckContext

logger = logging.getLogger(__name__)

MAX_LEADS = 3  # per finding: the newest that fit


def _names(values: list[str]) -> set[str]:
    """Each id or name, and an ARN's last part (``…:task-definition/api:7`` → ``api:7``)."""
    out = set()
    for v in values:
        if v:
            out.add(v)
            out.add(v.rsplit("/", 1)[-1])
    return out


def leads(finding: Finding, changes: list[Change]) -> list[Change]:
    """The changes that can have caused ``finding``: of a kind that names its check, touching
    one of its resources; newest first."""
    mine = _names(finding.resources)
    found = []
    for change in changes:
        kind = kind_of(change)
        if kind is None or finding.check not in kind.checks:
            continue
        if mine & _names(change.resources):
            found.append(change)
    return found[:MAX_LEADS]


def tie(reports: list[Report], ctx: CheckContext) -> None:
    """Give each failing or warning finding its leads (``finding.changes``) and, where a lead has
    an exact undo, that undo as its first proposal.  Reads the run's changes only when
    something is wrong; never raises (the ``changes.recent`` finding reports what failed)."""
    from ._read import recent

    troubled = [
        f
        for r in reports
        for f in r.findings
        if f.status in (Status.FAIL, Status.WARN)
        and f.resources
        and not f.check.startswith("changes.")
    ]
    if not troubled:
        return
    try:
        changes = recent(ctx).changes
    except Exception:
        logger.exception("recent changes could not be read")
        return
    for finding in troubled:
        found = leads(finding, changes)
        if not found:
            continue
        finding.changes = [brief(c, ctx.now) for c in found]
        for change in found:
            kind = kind_of(change)
            if kind is None or kind.undo is None:
                continue
            try:
                undo = kind.undo(change, finding, ctx)
            except Exception:  # an undo that cannot be built is no undo; the lead stands
                logger.exception("undo of %s %s could not be built", change.name, change.id)
                undo = None
            if undo is not None:
                kept = [
                    r
                    for r in finding.remediations
                    if (r.target or r.id) != (undo.target or undo.id)
                ]
                finding.remediations = [undo, *kept]
                finding.changes[found.index(change)]["undo"] = undo.id
                break
