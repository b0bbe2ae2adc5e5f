"""Areas: each runbook declared once, beside its checks.

An area is a package under :mod:`commands.runbooks` whose ``__init__`` declares it::

    # commands/runbooks/db/__init__.py
    AREA = area(
        "db",
        title="Database connectivity and performance",
        services=("rds", "secretsmanager", "cloudwatch", "ec2", "ecs"),
        routes=[Route(namespace="AWS/RDS", metric="CPUUtilization")],
        links={"db.cluster_status": ["ecs.container_errors", "alb.targets_healthy"]},
        graph=graph,
    )

and whose ``checks`` module holds its ``@check`` functions (:mod:`commands.registry`).

- ``services``: the AWS services (boto3 names) the runbook calls, first needed first; a fresh
  process builds the later clients while the first calls are on the wire.
- ``routes``: the alarms that call for this runbook (:class:`~commands.routing.Route`; its
  ``runbooks`` default to this area).
- ``links``: how a failing check of this area causes failures elsewhere (cause check id →
  effect check ids, or :class:`Link` with an evidence test).  Triage walks them upstream from
  an alarm's runbooks, and the analysis names the failing check that no other explains.
- ``graph``: the key metrics drawn in the thread (a function of the check context).
- ``expand``: check id → a function of its failing finding naming the runbooks to run next
  (the alarms area: a firing alarm names the runbooks its metric routes to, so ``/omni diagnose
  alarms`` goes on to why it fires; links into such a sink would pull in every runbook).
- ``layer``: where the area sits in the stack (network 0, database 1, … alarms 9): between two
  root causes that explain as much, the lower layer leads.

Importing an area imports no AWS SDK: the Slack-facing process reads area names and alarm
routes here.  A test fails on a link or a route that names an unknown check or area.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .graphs import GraphSpec
    from .models import Finding
    from .routing import Route

Evidence = Callable[["Finding", "Finding"], bool]


@dataclass(frozen=True)
class Link:
    """A failing ``cause`` check can make ``effect`` fail; ``when`` (cause, effect findings)
    tells from the evidence whether it did (no test: the link always holds)."""

    cause: str
    effect: str
    when: Evidence | None = None
    why: str = ""

    def holds(self, cause: Finding, effect: Finding) -> bool:
        return self.when is None or bool(self.when(cause, effect))


@dataclass(frozen=True)
class Area:
    name: str
    title: str
    services: tuple[str, ...]
    routes: tuple[Route, ...]
    links: tuple[Link, ...]
    graph: Callable[[Any], GraphSpec | None] | None = None
    module: str = ""
    layer: int = 5  # where it sits: lower layers are upstream (ties between root causes)
    # check id → the runbooks worth running when that check fails, read from its finding (a
    # firing alarm names its own: the runbooks its metric routes to); see runner.run_runbooks
    expand: dict[str, Callable[[Finding], list[str]]] = field(default_factory=dict)


_AREAS: dict[str, Area] = {}
_discovered = False


def area(
    name: str,
    *,
    title: str,
    services: Sequence[str],
    routes: Iterable[Route] = (),
    links: dict[str, Sequence[str | Link]] | None = None,
    graph: Callable[[Any], GraphSpec | None] | None = None,
    module: str = "",
    layer: int = 5,
    expand: dict[str, Callable[[Finding], list[str]]] | None = None,
) -> Area:
    """Declare (register) an area; returns it."""
    flat: list[Link] = []
    for cause, effects in (links or {}).items():
        for effect in effects:
            if isinstance(effect, Link):  # the cause is the key it is listed under
                flat.append(Link(cause, effect.effect, effect.when, effect.why))
            else:
                flat.append(Link(cause, effect))
    declared = Area(
        name=name,
        title=title,
        services=tuple(services),
        routes=tuple(
            r if r.runbooks else r.model_copy(update={"runbooks": [name]}) for r in routes
        ),
        links=tuple(flat),
        graph=graph,
        module=module,
        layer=layer,
        expand=dict(expand or {}),
    )
    if name in _AREAS and _AREAS[name].module != module:
        raise ValueError(f"area {name!r} declared twice ({_AREAS[name].module}, {module})")
    _AREAS[name] = declared
    return declared


def discover() -> dict[str, Area]:
    """Import every area package's ``__init__`` (not its checks) and return the areas."""
    global _discovered
    if not _discovered:
        from . import runbooks

        for info in pkgutil.iter_modules(runbooks.__path__):
            if info.ispkg and not info.name.startswith("_"):
                importlib.import_module(f"{runbooks.__name__}.{info.name}")
        _discovered = True
    return dict(_AREAS)


def names() -> list[str]:
    """Every area's name, sorted."""
    return sorted(discover())


def get(name: str) -> Area | None:
    return discover().get(name)


def services_for(runbooks: Iterable[str]) -> list[str]:
    """The AWS services these runbooks call, first needed first, each once."""
    known = discover()
    ordered: dict[str, None] = {}
    for name in runbooks:
        if name in known:
            ordered.update(dict.fromkeys(known[name].services))
    return list(ordered)


def links() -> list[Link]:
    """Every causal link of every area."""
    return [link for a in discover().values() for link in a.links]


def default_routes() -> list[Route]:
    """The areas' alarm routes, most specific first: namespace and metric, metric, namespace,
    then name patterns (for posts that carry no metric); areas in name order within each."""

    def tier(r: Route) -> int:
        if r.metric and r.namespace:
            return 0
        if r.metric:
            return 1
        if r.namespace:
            return 2
        return 3

    ordered = [r for a in sorted(discover()) for r in _AREAS[a].routes]
    return sorted(ordered, key=tier)  # stable: declaration order within a tier


def expansions() -> dict[str, Callable[[Finding], list[str]]]:
    """Every area's ``expand`` hooks, by check id."""
    return {cid: fn for a in discover().values() for cid, fn in a.expand.items()}


def upstream_of(checks: Iterable[str]) -> set[str]:
    """The checks, and every check that can lead to one of them through the areas' links
    (a link from any check, ``*``, does not pull every check in)."""
    causes: dict[str, set[str]] = {}
    for link in links():
        if link.cause != "*":
            causes.setdefault(link.effect, set()).add(link.cause)
    found = set(checks)
    todo = list(found)
    while todo:
        for cause in causes.get(todo.pop(), ()):
            if cause not in found:
                found.add(cause)
                todo.append(cause)
    return found
