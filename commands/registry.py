"""The check registry: a check is a function registered under a stable id (DESIGN.md §5).

    @check("db.cluster_status", title="Aurora cluster status")
    def cluster_status(ctx: CheckContext) -> Finding: ...

A check belongs to the area named by its id's prefix (declared in
``commands/runbooks/<area>/__init__.py``, see :mod:`commands.areas`), and to any extra
runbooks it lists (the perf runbook reuses the db load checks).  :func:`discover` imports each
area's ``checks`` module; a test asserts that every one of them registered something.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import areas
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

    @property
    def area(self) -> str:
        return self.runbooks[0]


_CHECKS: dict[str, CheckSpec] = {}


def check(
    check_id: str, *, title: str, also_in: tuple[str, ...] = ()
) -> Callable[[CheckFn], CheckFn]:
    if "." not in check_id:
        raise ValueError(f"check id {check_id!r} must look like 'area.name'")
    area = check_id.split(".", 1)[0]
    unknown = [a for a in (area, *also_in) if areas.get(a) is None]
    if unknown:
        raise ValueError(f"check {check_id!r} names undeclared area(s): {', '.join(unknown)}")

    def register(fn: CheckFn) -> CheckFn:
        if check_id in _CHECKS and _CHECKS[check_id].fn is not fn:
            raise ValueError(f"check id {check_id!r} registered twice")
        _CHECKS[check_id] = CheckSpec(check_id, title, (area, *also_in), fn, fn.__module__)
        return fn

    return register


def discover() -> None:
    """Import every area's ``checks`` module so its checks register."""
    for declared in areas.discover().values():
        importlib.import_module(f"{declared.module}.checks")


def services_for(runbooks: list[str]) -> list[str]:
    """The AWS services these runbooks call, first needed first, each once."""
    return areas.services_for(runbooks)


def all_checks() -> dict[str, CheckSpec]:
    discover()
    return dict(_CHECKS)


def runbook_names() -> list[str]:
    return areas.names()


def checks_for(runbook: str) -> list[CheckSpec]:
    discover()
    specs = [s for s in _CHECKS.values() if runbook in s.runbooks]
    if not specs:
        raise UnknownRunbook(
            f"no runbook {runbook!r}; known: {', '.join(runbook_names()) or 'none'}"
        )
    return sorted(specs, key=lambda s: s.id)
