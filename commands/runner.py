"""Run runbooks: every check concurrently, each isolated, all within a deadline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from .analysis import where_time_goes
from .areas import expansions, upstream_of
from .aws import AwsCaller, ClientPool
from .changes import tie
from .context import CheckContext
from .errors import AwsCallError, CheckError, ResourceNotFound
from .models import Finding, Report, Status
from .names import Names
from .registry import CheckSpec, all_checks, checks_for, services_for
from .settings import Settings

logger = logging.getLogger(__name__)


def make_context(
    settings: Settings,
    pool: ClientPool,
    *,
    environment: str | None = None,
    outputs: dict[str, Any] | None = None,
    on_call: Callable[[str, str, float, str | None], None] | None = None,
) -> CheckContext:
    from .terraform import load_outputs

    region = settings.region
    if outputs is None:
        outputs = load_outputs(settings.terraform_outputs, lambda: pool.client("s3", region))
    return CheckContext(
        settings=settings,
        names=Names.from_settings(settings, environment).with_outputs(settings, outputs),
        region=region,
        aws=AwsCaller(pool, region, on_call=on_call),
        outputs=outputs,
    )


def run_check(spec: CheckSpec, ctx: CheckContext) -> Finding:
    """Run one check; whatever goes wrong becomes a finding with status ``error``."""
    try:
        finding = spec.fn(ctx)
    except AwsCallError as exc:
        what = (
            "throttled past retries"
            if exc.throttled
            else ("access denied" if exc.access_denied else "AWS error")
        )
        finding = Finding(
            status=Status.ERROR,
            title=f"{spec.title}: could not run ({what})",
            detail=f"{exc.service}:{exc.operation} failed with {exc.code}: {exc.message}",
            evidence={"failed_call": f"{exc.service}:{exc.operation}", "error_code": exc.code},
        )
    except ResourceNotFound as exc:
        finding = Finding(
            status=Status.ERROR,
            title=f"{spec.title}: could not run ({exc.kind} not found)",
            detail=f"Looked for {exc.kind} {exc.name!r} in {exc.where}.",
            evidence={"looked_for": exc.name, "kind": exc.kind, "where": exc.where},
        )
    except CheckError as exc:
        finding = Finding(
            status=Status.ERROR,
            title=f"{spec.title}: could not run",
            detail=str(exc)[:500],
            evidence={"error": type(exc).__name__},
        )
    except Exception as exc:
        logger.exception("check %s crashed", spec.id)
        finding = Finding(
            status=Status.ERROR,
            title=f"{spec.title}: could not run ({type(exc).__name__})",
            detail=str(exc)[:500],
            evidence={"exception": type(exc).__name__},
        )
    return finding.model_copy(update={"check": spec.id})


def run_runbooks(
    names: list[str],
    ctx: CheckContext,
    *,
    follow: bool = False,
    expand: bool = True,
    also: tuple[str, ...] = (),
    deadline_s: float | None = None,
    max_workers: int | None = None,
) -> list[Report]:
    """Run several runbooks at once; checks shared between them run once.

    With ``follow``, every check that can lead to one of theirs (the areas' causal links,
    walked upstream) runs in the same round; its results come as one more report per area,
    marked ``followed`` (a round takes its longest chain of dependent calls, so following the
    cause costs no extra time, only calls).  ``also``: more check ids to run in the round
    (``changes.recent``: the account's recent writes, then tied to the failing checks).

    With ``follow`` and ``expand``, a failing check with an ``expand`` hook (a firing alarm,
    whose links would otherwise pull in every runbook) names the runbooks to run next: they and
    what leads to them run in a second round, only then.  A triage passes ``expand=False``: it
    was routed from its alarm already.
    """
    deadline_s = deadline_s if deadline_s is not None else ctx.settings.runbook_deadline_s
    started = time.monotonic()
    plan: dict[str, list[CheckSpec]] = {name: checks_for(name) for name in names}
    unique: dict[str, CheckSpec] = {s.id: s for specs in plan.values() for s in specs}
    followed: dict[str, list[CheckSpec]] = {}
    known = all_checks()

    def add(wanted: set[str]) -> dict[str, CheckSpec]:
        new = {}
        for cid in sorted(wanted - set(unique)):
            spec = known[cid]
            followed.setdefault(spec.area, []).append(spec)
            unique[cid] = new[cid] = spec
        return new

    if follow or also:
        add((upstream_of(unique) if follow else set(unique)) | set(also))
    ctx.aws.prepare(services_for([*names, *followed]))  # no-op in a warm worker
    results = _round(unique, ctx, deadline_s, max_workers)
    if follow and expand:
        hooks = expansions()
        more = {
            s.id
            for cid, hook in hooks.items()
            if cid in results and results[cid].status in (Status.FAIL, Status.WARN)
            for rb in hook(results[cid])
            if rb not in plan
            for s in checks_for(rb)
        }
        second = add(upstream_of(more)) if more else {}
        if second:
            ctx.aws.prepare(services_for(sorted({s.area for s in second.values()})))
            left = max(deadline_s - (time.monotonic() - started), 1.0)
            results.update(_round(second, ctx, left, max_workers))
    duration_ms = int((time.monotonic() - started) * 1000)
    reports = [
        Report(
            runbook=name,
            environment=ctx.names.environment,
            region=ctx.region,
            duration_ms=duration_ms,
            findings=[results[s.id] for s in specs],
            followed=name in followed,
        )
        for name, specs in [*plan.items(), *followed.items()]
    ]
    if "changes.recent" in results:  # who changed what broke, and the exact undo
        tie(reports, ctx)
    for report in reports:
        report.summary = where_time_goes(report)
    return reports


def _round(
    specs: dict[str, CheckSpec], ctx: CheckContext, deadline_s: float, max_workers: int | None
) -> dict[str, Finding]:
    """Run ``specs`` concurrently; a check still running at the deadline is an error finding."""
    workers = max_workers or ctx.settings.aws_max_concurrency
    outer = ThreadPoolExecutor(
        max_workers=min(workers, max(len(specs), 1)), thread_name_prefix="omni-check"
    )
    inner = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omni-aws")
    ctx._inner = inner
    futures: dict[str, Future[Finding]] = {
        cid: outer.submit(run_check, spec, ctx) for cid, spec in specs.items()
    }
    wait(list(futures.values()), timeout=deadline_s)
    results: dict[str, Finding] = {}
    for cid, future in futures.items():
        if future.done():
            results[cid] = future.result()
        else:
            future.cancel()
            results[cid] = Finding(
                check=cid,
                status=Status.ERROR,
                title=f"{specs[cid].title}: did not finish within {deadline_s:g}s",
                detail="The runbook's deadline passed before this check answered; "
                "the AWS calls it was waiting on are slow or hanging.",
                evidence={"deadline_s": deadline_s},
            )
    outer.shutdown(wait=False, cancel_futures=True)
    inner.shutdown(wait=False, cancel_futures=True)
    return results


def run_runbook(name: str, ctx: CheckContext, **kwargs: Any) -> Report:
    return run_runbooks([name], ctx, **kwargs)[0]
