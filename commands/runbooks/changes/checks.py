"""``changes.recent``: the writes of the last ``OMNI_CHANGES_WINDOW_MIN`` minutes."""

from __future__ import annotations

from ...changes import brief, recent
from ...context import CheckContext
from ...models import Finding, Status
from ...registry import check

SHOWN = 20


@check("changes.recent", title="Recent changes")
def recent_changes(ctx: CheckContext) -> Finding:
    reading = recent(ctx)
    window = ctx.settings.changes_window_min
    rows = [brief(c, ctx.now) for c in reading.changes[:SHOWN]]
    evidence = {
        "window_min": window,
        "writes": len(reading.changes),
        "newest": [{k: r[k] for k in ("summary", "at", "who")} for r in rows],
        "cloudtrail_pages": reading.pages,
        "truncated": reading.truncated,
    }
    if any(e.startswith("cloudtrail") for e in reading.errors):
        what = (
            "access denied"
            if reading.denied
            else ("throttled past retries" if reading.throttled else "AWS error")
        )
        return ctx.finding(
            Status.ERROR,
            f"Recent changes: could not read CloudTrail ({what})",
            "; ".join(reading.errors)
            + ". Without it Omni cannot say who changed what (ECS deployments and RDS events "
            "are still read); grant cloudtrail:LookupEvents (omni iam-policy). The other checks "
            "ran.",
            {**evidence, "errors": reading.errors},
        )
    detail = "; ".join(reading.errors)
    if reading.truncated:
        detail = (detail + "; " if detail else "") + "more writes than were read (busy account)"
    title = (
        f"{len(reading.changes)} write(s) in the last {window} min"
        if reading.changes
        else f"No write in the last {window} min"
    )
    return ctx.finding(Status.OK, title, detail, {**evidence, "errors": reading.errors})
