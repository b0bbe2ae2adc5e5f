"""Run runbooks: every check concurrently, each isolated, all within a deadline."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from .analysis import where_time_goes
from .aws import AwsCaller, ClientPool
from .context import CheckContext
from .errors import AwsCallError, CheckError, ResourceNotFound
from .models import Finding, Report, Status
from .names import Names
from .registry import CheckSpec, checks_for, services_for
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
        names=Names.from_settings(settings, environment),
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
    deadline_s: float | None = None,
    max_workers: int | None = None,
) -> list[Report]:
    """Run several runbooks at once; checks shared between them run once."""
    deadline_s = deadline_s if deadline_s is not None else ctx.settings.runbook_deadline_s
    workers = max_workers or ctx.settings.aws_max_concurrency
    plan: dict[str, list[CheckSpec]] = {name: checks_for(name) for name in names}
    unique: dict[str, CheckSpec] = {s.id: s for specs in plan.values() for s in specs}

    started = time.monotonic()
    ctx.aws.prepare(services_for(names))  # no-op in a warm worker
    outer = ThreadPoolExecutor(
        max_workers=min(workers, max(len(unique), 1)), thread_name_prefix="omni-check"
    )
    inner = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omni-aws")
    ctx._inner = inner
    futures: dict[str, Future[Finding]] = {
        cid: outer.submit(run_check, spec, ctx) for cid, spec in unique.items()
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
                title=f"{unique[cid].title}: did not finish within {deadline_s:g}s",
                detail="The runbook's deadline passed before this check answered; "
                "the AWS calls it was waiting on are slow or hanging.",
                evidence={"deadline_s": deadline_s},
            )
    outer.shutdown(wait=False, cancel_futures=True)
    inner.shutdown(wait=False, cancel_futures=True)
    duration_ms = int((time.monotonic() - started) * 1000)
    reports = [
        Report(
            runbook=name,
            environment=ctx.names.environment,
            region=ctx.region,
            duration_ms=duration_ms,
            findings=[results[s.id] for s in specs],
        )
        for name, specs in plan.items()
    ]
    for report in reports:
        report.summary = where_time_goes(report)
    return reports


def run_runbook(name: str, ctx: CheckContext, **kwargs: Any) -> Report:
    return run_runbooks([name], ctx, **kwargs)[0]
