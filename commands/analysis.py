"""Reading a run's findings once: the root cause, what it explains, and which fixes to offer.

The areas declare causal links between checks (:mod:`commands.areas`): a stopped cluster makes
the app log connection errors, crashing tasks make targets unhealthy, unhealthy targets make
the load balancer answer 503.  Among a run's findings, a link *holds* when its cause fails, its
effect fails or warns, and its evidence test, if it has one, agrees (an error line that names
the database's endpoint links the app's errors to the database; a ``TypeError`` does not).

The **root cause** is a failing check that no holding link explains.  When several are, the
lead is the one that explains the most failing checks, then the one with a fix, then the one in
the lower layer (network before database before tasks before load balancer), then by id; the
others are reported as failing on their own.  Checks in a cycle of holding links count as one.
The lead's **chain** is its longest path of holding links.  Findings it explains are symptoms:
their fixes are shown but not offered as buttons (fix the cause first).

:func:`analyse` is called once per run; everything shown (the verdict, the thread, the CLI, the
JSON) is rendered from its :class:`Analysis`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, Field

from .models import Finding, Remediation, Report, Status

ANY = "*"  # a link from any failing check (its evidence test decides)


class Step(BaseModel):
    check: str
    title: str
    status: Status


class Cause(BaseModel):
    """A failing check that nothing else explains, and what it explains."""

    check: str
    title: str
    detail: str = ""
    chain: list[Step] = Field(default_factory=list)
    explains: list[str] = Field(default_factory=list)
    changes: list[dict[str, Any]] = Field(default_factory=list)  # recent writes that touched it

    @property
    def summary(self) -> str:
        return self.title + "".join(f" → {s.title}" for s in self.chain)


class Offer(BaseModel):
    """A fix to show once in the thread (one per fix and target)."""

    remediation: Remediation
    check: str
    finding: str
    symptom_of: str | None = None  # shown without a button: the root cause comes first


class Analysis(BaseModel):
    root: Cause | None = None
    others: list[Cause] = Field(default_factory=list)
    explained_by: dict[str, str] = Field(default_factory=dict)
    offers: list[Offer] = Field(default_factory=list)

    @property
    def root_fixes(self) -> list[Offer]:
        root = self.root.check if self.root else None
        return [o for o in self.offers if o.check == root and o.symptom_of is None]

    def offer_for(self, check: str, remediation: Remediation) -> Offer | None:
        """The offer a finding's proposal became (the first one of its fix and target)."""
        key = (remediation.id, remediation.target or remediation.id)
        for offer in self.offers:
            if (offer.remediation.id, offer.remediation.target or offer.remediation.id) == key:
                return offer
        return None


def _layer(check: str) -> int:
    from .areas import get

    declared = get(check.split(".", 1)[0])
    return declared.layer if declared is not None else 99


def _sccs(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each a list of nodes."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return out


def _reach(start: Iterable[str], edges: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        node = todo.pop()
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _longest(start: str, edges: dict[str, set[str]], seen: frozenset[str]) -> list[str]:
    best: list[str] = []
    for nxt in sorted(edges.get(start, ())):
        if nxt not in seen:
            path = _longest(nxt, edges, seen | {nxt})
            if len(path) > len(best):
                best = path
    return [start, *best]


def analyse(reports: list[Report]) -> Analysis:
    """The run's root cause, what it explains, and the fixes to offer (see the module doc)."""
    from .areas import links

    findings: dict[str, Finding] = {}
    for report in reports:
        for f in report.findings:
            findings.setdefault(f.check, f)
    failing = {c: f for c, f in findings.items() if f.status is Status.FAIL}
    troubled = {c: f for c, f in findings.items() if f.status in (Status.FAIL, Status.WARN)}
    edges: dict[str, set[str]] = {}
    for link in links():
        effect = troubled.get(link.effect)
        sources = failing if link.cause == ANY else {link.cause: failing.get(link.cause)}
        for name, cause in sources.items():
            if cause is None or effect is None or name == link.effect:
                continue
            try:
                holds = link.holds(cause, effect)
            except Exception:  # an evidence test never breaks the analysis
                holds = False
            if holds:
                edges.setdefault(name, set()).add(link.effect)

    analysis = Analysis()
    if not failing:
        analysis.offers = _offers(reports, None, {})
        return analysis
    nodes = sorted(failing)
    components = _sccs(nodes, {n: {e for e in edges.get(n, ()) if e in failing} for n in nodes})
    owner = {n: i for i, comp in enumerate(components) for n in comp}
    incoming = {i: False for i in range(len(components))}
    for n in nodes:
        for e in edges.get(n, ()):
            if e in failing and owner[e] != owner[n]:
                incoming[owner[e]] = True

    def rank(check: str) -> tuple[int, int, int, int, str]:
        explained = _reach(components[owner[check]], edges) - set(components[owner[check]])
        has_fix = bool(failing[check].remediations)
        changed = bool(failing[check].changes)  # a recent write touched it: a strong lead
        return (-len(explained), 0 if changed else 1, 0 if has_fix else 1, _layer(check), check)

    roots = []
    for i, comp in enumerate(components):
        if not incoming[i]:
            roots.append(min(comp, key=rank))
    roots.sort(key=rank)
    causes: list[Cause] = []
    explained_by: dict[str, str] = {}
    for check in roots:
        group = set(components[owner[check]])
        explained = sorted((_reach(group, edges) | group) - {check})
        path = _longest(check, edges, frozenset({check}))[1:]
        f = failing[check]
        causes.append(
            Cause(
                check=check,
                title=f.title,
                detail=f.detail,
                chain=[
                    Step(check=c, title=findings[c].title, status=findings[c].status) for c in path
                ],
                explains=explained,
                changes=list(f.changes),
            )
        )
        for c in explained:
            explained_by.setdefault(c, check)
    analysis.root, analysis.others = causes[0], causes[1:]
    analysis.explained_by = explained_by
    analysis.offers = _offers(reports, analysis.root.check, explained_by)
    return analysis


def _offers(reports: list[Report], root: str | None, explained_by: dict[str, str]) -> list[Offer]:
    """Every proposed fix once, by (fix id, target): the root cause's first, then the fixes of
    failing checks nothing explains, then the rest (symptoms: no button)."""
    seen: set[tuple[str, str]] = set()
    candidates: list[tuple[int, Offer]] = []
    done: set[str] = set()
    for report in reports:
        for f in report.sorted_findings():
            if f.check in done:
                continue
            done.add(f.check)
            for r in f.remediations:
                symptom = explained_by.get(f.check)
                order = 0 if f.check == root else (2 if symptom else 1)
                candidates.append(
                    (
                        order,
                        Offer(remediation=r, check=f.check, finding=f.title, symptom_of=symptom),
                    )
                )
    offers = []
    for _, offer in sorted(candidates, key=lambda c: c[0]):
        key = (offer.remediation.id, offer.remediation.target or offer.remediation.id)
        if key not in seen:
            seen.add(key)
            offers.append(offer)
    return offers


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
    return (
        f"{slow.title}, but neither the tasks' CPU/memory nor the database is strained: look at "
        "the application's own downstream calls."
    )
