"""The check registry: a check is a function registered under a stable id (DESIGN.md §5).

    @check("db.cluster_status", title="Aurora cluster status")
    def cluster_status(ctx: CheckContext) -> Finding: ...

A check belongs to the runbook named by its id's prefix, and to any extra ``runbooks`` it
lists (the perf runbook reuses the db load checks).  Modules under ``commands.runbooks`` are
imported by :func:`discover`; a test asserts that every one of them registered something.

Each runbook module also names the AWS services its runbook calls, first needed first::

    aws_services("db", "rds", "secretsmanager", "cloudwatch", "ec2")

so a fresh process can build the later clients while the first calls are on the wire (a test
runs every runbook over every sandbox scenario and fails on a service it did not declare).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import UnknownRunbook

if TYPE_CHECKING:
    from .context import CheckContext
    from .models import Finding

CheckFn = Callable[["CheckContext"], "Finding"]


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    runbooks: tuple[str, ...]
    fn: CheckFn
    module: str


_CHECKS: dict[str, CheckSpec] = {}
_SERVICES: dict[str, tuple[str, ...]] = {}


def aws_services(runbook: str, *services: str) -> None:
    """Declare the AWS services (boto3 names) ``runbook`` calls, in the order it first needs them."""
    _SERVICES[runbook] = services


def services_for(runbooks: list[str]) -> list[str]:
    """The AWS services these runbooks call, first needed first, each once."""
    discover()
    ordered: dict[str, None] = {}
    for name in runbooks:
        ordered.update(dict.fromkeys(_SERVICES.get(name, ())))
    return list(ordered)


def check(
    check_id: str, *, title: str, also_in: tuple[str, ...] = ()
) -> Callable[[CheckFn], CheckFn]:
    area = check_id.split(".", 1)[0]
    if "." not in check_id:
        raise ValueError(f"check id {check_id!r} must look like 'area.name'")

    def register(fn: CheckFn) -> CheckFn:
        if check_id in _CHECKS and _CHECKS[check_id].fn is not fn:
            raise ValueError(f"check id {check_id!r} registered twice")
        _CHECKS[check_id] = CheckSpec(check_id, title, (area, *also_in), fn, fn.__module__)
        return fn

    return register


def discover() -> None:
    """Import every module of ``commands.runbooks`` so their checks register."""
    from . import runbooks

    for info in pkgutil.iter_modules(runbooks.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{runbooks.__name__}.{info.name}")


def all_checks() -> dict[str, CheckSpec]:
    discover()
    return dict(_CHECKS)


def runbook_names() -> list[str]:
    discover()
    return sorted({rb for spec in _CHECKS.values() for rb in spec.runbooks})


def checks_for(runbook: str) -> list[CheckSpec]:
    discover()
    specs = [s for s in _CHECKS.values() if runbook in s.runbooks]
    if not specs:
        raise UnknownRunbook(
            f"no runbook {runbook!r}; known: {', '.join(runbook_names()) or 'none'}"
        )
    return sorted(specs, key=lambda s: s.id)
