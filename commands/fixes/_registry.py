"""The fix registry: a fix is one decorated function; everything else derives from it.

A declaration names the fix's id, title, risk (and so the role that may approve it), the AWS
calls it makes (IAM actions with the resources AWS lets us scope them to), the calls it reads
with, which parameter is its target, and the Terraform change that keeps the next ``apply``
from undoing it.  Its parameters are the pydantic model its signature takes.  From that one
declaration come the catalogue, the fixes IAM policy, a proposal's target, preview and
required role, and the circuit breaker's key; a proposal is validated when a check makes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

from pydantic import BaseModel, ConfigDict

from ..errors import AwsCallError, OmniError
from ..models import Remediation, Risk

logger = logging.getLogger(__name__)

ROLE_FOR_RISK = {Risk.LOW: "operator", Risk.MEDIUM: "operator", Risk.HIGH: "admin"}
P = TypeVar("P", bound=BaseModel)


class FixRefused(OmniError):
    """The fix will not run: the state it was planned against has changed."""


class Params(BaseModel):
    """Base of every fix's parameters: exact, frozen, nothing extra."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Call:
    """One AWS action a fix takes, and the resources (``{project}`` filled in) it may touch."""

    action: str  # IAM action, e.g. "rds:StartDBCluster"
    resources: tuple[str, ...] = ("*",)
    condition: dict[str, Any] | None = None
    note: str = ""  # shown in the preview, e.g. "conditional on the lock's Info"


@dataclass
class FixContext:
    """What a fix runs with: the pool of clients (retries off) for the environment's region."""

    pool: Any
    region: str
    dry_run: bool = False

    def client(self, service: str) -> Any:
        return self.pool.client(service, self.region)

    def call(self, service: str, method: str, /, **kwargs: Any) -> Any:
        """One AWS call; an AWS error becomes :class:`AwsCallError` naming the call."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client(service)
        try:
            return getattr(client, method)(**kwargs)
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise AwsCallError(
                service,
                client.meta.method_to_api_mapping.get(method, method),
                str(err.get("Code")),
                str(err.get("Message")),
            ) from exc
        except BotoCoreError as exc:
            raise AwsCallError(service, method, type(exc).__name__, str(exc)) from exc


@dataclass(frozen=True)
class FollowUp:
    """A fix to run later (a mute's end re-enables the alarms), by RQ's scheduler."""

    fix: str
    params: dict[str, Any]
    after_minutes: float
    note: str = ""


@dataclass
class FixResult:
    summary: str
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    follow_up: FollowUp | None = None


FixFn = Callable[[FixContext, Any], FixResult]


@dataclass(frozen=True)
class FixSpec:
    id: str
    title: str
    risk: Risk
    role: str
    calls: tuple[Call, ...]
    reads: tuple[str, ...]
    target: Callable[[BaseModel], str]
    terraform: str
    params: type[BaseModel]
    fn: FixFn
    module: str
    caveat: str = ""
    # minutes before the check can see the fix: a check that reads a metric (WAF blocks) still
    # sees the minutes before it; its verification is repeated after this long
    settles_min: int = 0

    @property
    def api(self) -> str:
        return " + ".join(c.action + (f" ({c.note})" if c.note else "") for c in self.calls)

    def preview(self, params: dict[str, Any]) -> str:
        """The exact call a proposal makes: ``rds:StartDBCluster {"DBClusterIdentifier": …}``."""
        return f"{self.api} {json.dumps(params, sort_keys=True, default=str, ensure_ascii=False)}"


_FIXES: dict[str, FixSpec] = {}


def fix(
    fix_id: str,
    *,
    title: str,
    risk: Risk,
    calls: list[Call],
    target: str | Callable[[Any], str],
    terraform: str,
    reads: tuple[str, ...] = (),
    role: str | None = None,
    caveat: str = "",
    settles_min: int = 0,
) -> Callable[[Callable[[FixContext, P], FixResult]], Callable[[FixContext, P], FixResult]]:
    """Declare a fix (see the module docstring); its parameters are its second argument's type."""
    if "." not in fix_id:
        raise ValueError(f"fix id {fix_id!r} must look like 'service.verb_object'")

    def register(
        fn: Callable[[FixContext, P], FixResult],
    ) -> Callable[[FixContext, P], FixResult]:
        hints = get_type_hints(fn)
        params = [v for k, v in hints.items() if k != "return"][1:2]
        if not params or not (isinstance(params[0], type) and issubclass(params[0], BaseModel)):
            raise TypeError(f"fix {fix_id}: its second parameter must be a pydantic model")
        model: type[BaseModel] = params[0]
        if isinstance(target, str) and target not in model.model_fields:
            raise ValueError(f"fix {fix_id}: target {target!r} is not one of its parameters")
        by_target = (lambda p: str(getattr(p, target))) if isinstance(target, str) else target
        if fix_id in _FIXES and _FIXES[fix_id].fn is not fn:
            raise ValueError(f"fix id {fix_id!r} registered twice")
        _FIXES[fix_id] = FixSpec(
            id=fix_id,
            title=title,
            risk=risk,
            role=role or ROLE_FOR_RISK[risk],
            calls=tuple(calls),
            reads=tuple(reads),
            target=by_target,
            terraform=terraform,
            params=model,
            fn=fn,
            module=fn.__module__,
            caveat=caveat,
            settles_min=settles_min,
        )
        return fn

    return register


def registered() -> dict[str, FixSpec]:
    return dict(_FIXES)


def propose(fix_id: str, **params: Any) -> Remediation:
    """A finding's proposal of a fix with its exact parameters, validated now.

    Raises ``KeyError`` for an unknown fix and pydantic's ``ValidationError`` for parameters
    the fix would refuse: a check that proposes nonsense fails where it does it.
    """
    spec = _FIXES[fix_id]
    model = spec.params.model_validate(params)
    exact = model.model_dump(mode="json")
    return Remediation(
        id=spec.id,
        title=spec.title,
        risk=spec.risk,
        params=exact,
        target=spec.target(model),
        role=spec.role,
        call=spec.preview(exact),
        terraform=spec.terraform,
        caveat=spec.caveat,
    )


def run_fix(fix_id: str, params: dict[str, Any], ctx: FixContext) -> FixResult:
    spec = _FIXES[fix_id]
    model = spec.params.model_validate(params)
    if ctx.dry_run:
        return FixResult(
            summary=f"dry run: would call {spec.preview(model.model_dump(mode='json'))}"
        )
    logger.info("running fix %s on %s", fix_id, spec.target(model))
    return spec.fn(ctx, model)
