"""Running a sandbox scenario the ways a responder meets it: `diagnose all`, and its alarm."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from bench.accuracy import alarm_for
from bench.expectations import EXPECTED, Expect
from commands.analysis import Analysis, analyse
from commands.models import Finding, Report, Status
from commands.registry import runbook_names, services_for
from commands.routing import route
from commands.runner import make_context, run_runbooks
from commands.settings import Settings
from sandbox import Stack, apply_scenario, discover

from .conftest import shared_pool


@dataclass
class Outcome:
    reports: list[Report]
    analysis: Analysis

    @property
    def findings(self) -> dict[str, Finding]:
        return {f.check: f for r in self.reports for f in r.findings}

    @property
    def root(self) -> str | None:
        return self.analysis.root.check if self.analysis.root else None

    @property
    def fixes(self) -> list[str]:
        return [o.remediation.id for o in self.analysis.root_fixes]


def settings_for(settings: Settings, stack: Stack) -> Settings:
    return settings.model_copy(update={"terraform_state": stack.extra["state_url"]})


def diagnose_all(settings: Settings, stack: Stack) -> Outcome:
    ctx = make_context(
        settings_for(settings, stack),
        shared_pool(),
        outputs=stack.outputs,
    )
    reports = run_runbooks(runbook_names(), ctx)
    return Outcome(reports, analyse(reports))


def alarm_triage(settings: Settings, stack: Stack, suffix: str) -> tuple[list[str], Outcome]:
    """What the triage of the scenario's alarm runs (routed runbooks, what leads to them, the
    firing alarms) and concludes."""
    cloudwatch = boto3.client("cloudwatch", region_name=stack.region)
    alarm = alarm_for(cloudwatch, f"{stack.names.alarm_prefix}{suffix}")
    runbooks = route(alarm)
    ctx = make_context(
        settings_for(settings, stack),
        shared_pool(),
        outputs=stack.outputs,
    )
    reports = run_runbooks(
        runbooks, ctx, follow=True, expand=False, also=("alarms.in_alarm", "changes.recent")
    )
    return runbooks, Outcome(reports, analyse(reports))


def mismatches(path: str, outcome: Outcome, expect: Expect) -> list[str]:
    """Where one path's outcome differs from the answer sheet (empty: as expected)."""
    wrong: list[str] = []
    findings = outcome.findings
    for check_id, want in expect.checks.items():
        f = findings.get(check_id)
        status = Status.FAIL if want == "F" else Status.WARN
        if f is None or f.status is not status:
            wrong.append(f"{path}: {check_id} is {f.status if f else 'missing'}, not {status}")
        elif not f.evidence:
            wrong.append(f"{path}: {check_id} has no evidence")
    wrong += [
        f"{path}: {f.check} errored: {f.title}"
        for f in findings.values()
        if f.status is Status.ERROR
    ]
    if expect.root is None:
        wrong += [
            f"{path}: {f.check} fails: {f.title}"
            for f in findings.values()
            if f.status is Status.FAIL
        ]
    if outcome.root != expect.root:
        wrong.append(f"{path}: root cause {outcome.root}, not {expect.root}")
    if expect.fix is not None and outcome.fixes[:1] != [expect.fix]:
        wrong.append(f"{path}: fixes offered first {outcome.fixes[:1]}, not {expect.fix}")
    named = {c.get("who") for f in findings.values() for c in f.changes}
    if expect.changed_by is not None:
        root = outcome.analysis.root
        whos = {c.get("who") for c in root.changes} if root else set()
        if expect.changed_by not in whos:
            wrong.append(f"{path}: the verdict names {whos or 'nobody'}, not {expect.changed_by}")
    elif expect.root is None and named:
        wrong.append(f"{path}: a control names {named}")  # a control names nobody
    return wrong


def undeclared_services(
    settings: Settings, outputs: dict[str, Any], runbooks: list[str]
) -> dict[str, set[str]]:
    """The AWS services each runbook, alone, calls without its area declaring them (the list a
    fresh process builds clients from while its first calls are on the wire); a runbook that
    calls nothing at all is reported too."""
    found: dict[str, set[str]] = {}
    for name in runbooks:
        ctx = make_context(settings, shared_pool(), outputs=outputs)
        run_runbooks([name], ctx)
        used = {call.split(".", 1)[0] for call in ctx.aws.calls}
        extra = used - set(services_for([name])) if used else {"(no AWS call at all)"}
        if extra:
            found[name] = extra
    return found


def judge(settings: Settings, stack: Stack, name: str) -> list[str]:
    """The scenario, judged as a responder meets it: diagnose all, its alarm's triage when it has
    one, and the services its area calls.  What is wrong, one line each (empty: all right)."""
    scenario = apply_scenario(name, stack)
    expect = EXPECTED[name]
    wrong = mismatches("diagnose all", diagnose_all(settings, stack), expect)
    if scenario.alarm:
        _, outcome = alarm_triage(settings, stack, scenario.alarm)
        if outcome.root != expect.root:
            wrong.append(f"alarm: root cause {outcome.root}, not {expect.root}")
        if expect.fix is not None and outcome.fixes[:1] != [expect.fix]:
            wrong.append(f"alarm: fixes offered first {outcome.fixes[:1]}, not {expect.fix}")
    if scenario.area != "all":
        undeclared = undeclared_services(
            settings_for(settings, stack), stack.outputs, [scenario.area]
        )
        wrong += [f"runbook {rb} calls undeclared {sorted(s)}" for rb, s in undeclared.items()]
    return wrong


def names(*kinds: str) -> list[str]:
    return sorted(n for n, s in discover().items() if s.kind in kinds)
