"""Fixes: what Omni may change in AWS, each declared once with everything derived from it.

    class Restart(Params):
        Identifier: str

    @fix(
        "thing.restart",
        title="Restart the thing",
        risk=Risk.LOW,
        calls=[Call("thing:RestartThing", ("arn:aws:thing:*:*:thing/{project}-*",))],
        reads=("thing:DescribeThings",),
        target="Identifier",
        terraform="Nothing to change: a restart is not Terraform drift.",
    )
    def restart(ctx: FixContext, p: Restart) -> FixResult: ...

A fix reads the state it changes before and after, so the thread shows ``before → after``,
and refuses (:class:`FixRefused`) when that state moved since the plan.  Fixes run with no
blind retries (the pool they get has retries off); only the WAF fixes retry, and only on
WAF's optimistic-lock conflict, after re-reading the lock token.  A fix is reachable only
from a finding that proposed it (:func:`propose`), through an approved plan.

One module per AWS service below; a test asserts that each registered something.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._registry import (
    ROLE_FOR_RISK,
    Call,
    FixContext,
    FixRefused,
    FixResult,
    FixSpec,
    FollowUp,
    Params,
    fix,
    propose,
    registered,
    run_fix,
)

__all__ = [
    "ROLE_FOR_RISK",
    "Call",
    "FixContext",
    "FixRefused",
    "FixResult",
    "FixSpec",
    "FollowUp",
    "Params",
    "catalogue",
    "fix",
    "propose",
    "run_fix",
]


def catalogue() -> dict[str, FixSpec]:
    """Every declared fix, by id."""
    return registered()


for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
