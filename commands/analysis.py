"""Connecting findings: the most probable cause across runbooks, and where the time goes.

The guide's problems cause one another: Aurora stopped → the API fails on DB errors → tasks
crash → targets unhealthy → ALB 5XX alarm.  :data:`LEADS_TO` records those links between
check ids.  Among the failing checks, the most probable cause is one that no other failing
check leads to; ties go to the one with the longest chain of failing consequences.
"""

from __future__ import annotations

from pydantic import BaseModel

from .models import Finding, Report, Status


def _leads_to() -> dict[str, tuple[str, ...]]:
    """Cause check → the checks its failure makes fail, from every area's declared links."""
    from .areas import links

    out: dict[str, list[str]] = {}
    for link in links():
        out.setdefault(link.cause, []).append(link.effect)
    return {k: tuple(v) for k, v in out.items()}


class Link(BaseModel):
    check: str
    title: str


class RootCause(BaseModel):
    check: str
    title: str
    chain: list[Link]
    summary: str
    other_causes: list[Link]


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(_leads_to().get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(_leads_to().get(node, ()))
    return seen


def _longest_chain(
    start: str, bad: dict[str, Finding], seen: frozenset[str] = frozenset()
) -> list[str]:
    best: list[str] = []
    for nxt in _leads_to().get(start, ()):
        if nxt in bad and nxt not in seen:
            path = _longest_chain(nxt, bad, seen | {start})
            if len(path) > len(best):
                best = path
    return [start, *best]


def root_cause(reports: list[Report]) -> RootCause | None:
    bad: dict[str, Finding] = {}
    for report in reports:
        for f in report.findings:
            if f.status is Status.FAIL:
                bad.setdefault(f.check, f)
    if not bad:
        return None
    downstream = {node for cid in bad for node in _reachable(cid) if node != cid}
    roots = [cid for cid in bad if cid not in downstream] or list(bad)
    chains = {cid: _longest_chain(cid, bad) for cid in roots}
    order = list(_leads_to())
    lead = max(
        roots, key=lambda c: (len(chains[c]), -order.index(c) if c in order else -len(order))
    )
    chain = [Link(check=c, title=bad[c].title) for c in chains[lead][1:]]
    summary = bad[lead].title + "".join(f" → {link.title}" for link in chain)
    others = [Link(check=c, title=bad[c].title) for c in roots if c != lead]
    return RootCause(
        check=lead, title=bad[lead].title, chain=chain, summary=summary, other_causes=others
    )


def where_time_goes(report: Report) -> str | None:
    """For the perf runbook: one sentence saying which layer the time goes to."""
    if report.runbook != "perf":
        return None
    by_id = {f.check: f for f in report.findings}
    slow = by_id.get("perf.target_response_time")
    layers = []
    db = [
        f
        for cid, f in by_id.items()
        if cid.startswith("db.") and f.status in (Status.FAIL, Status.WARN)
    ]
    if db:
        layers.append(f"the database ({db[0].title})")
    app = [
        by_id[c]
        for c in ("perf.ecs_cpu", "perf.ecs_memory")
        if c in by_id and by_id[c].status in (Status.FAIL, Status.WARN)
    ]
    if app:
        layers.append(f"the ECS tasks ({app[0].title})")
    if slow is None or slow.status in (Status.OK, Status.SKIPPED):
        return "Responses are not slow." + (
            f" Still under pressure: {'; '.join(layers)}." if layers else ""
        )
    if layers:
        return f"{slow.title}: the time goes to " + " and ".join(layers) + "."
    return f"{slow.title}, but neither the tasks' CPU/memory nor the database is strained: look at the application's own downstream calls."
