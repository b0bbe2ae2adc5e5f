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


def check_expectations(name: str, outcome: Outcome, expect: Expect) -> None:
    findings = outcome.findings
    for check_id, want in expect.checks.items():
        f = findings[check_id]
        assert f.status is (Status.FAIL if want == "F" else Status.WARN), (
            check_id,
            f.status,
            f.title,
            f.detail,
        )
        assert f.evidence, check_id
    errors = [(f.check, f.title) for f in findings.values() if f.status is Status.ERROR]
    assert not errors, errors
    if expect.root is None:
        fails = [(f.check, f.title) for f in findings.values() if f.status is Status.FAIL]
        assert not fails, fails
    assert outcome.root == expect.root, (outcome.root, outcome.analysis.root)
    if expect.fix is not None:
        assert outcome.fixes and outcome.fixes[0] == expect.fix, outcome.fixes
    named = {c.get("who") for f in findings.values() for c in f.changes}
    if expect.changed_by is not None:
        root = outcome.analysis.root
        assert root is not None and expect.changed_by in {c.get("who") for c in root.changes}, (
            root.changes if root else None
        )
    elif expect.root is None:
        assert not named, named  # a control names nobody


def declared_services(settings: Settings, outputs: dict[str, Any], runbooks: list[str]) -> None:
    """Each runbook, alone, calls only the AWS services its area declares (the list a fresh
    process builds clients from while its first calls are on the wire)."""
    for name in runbooks:
        ctx = make_context(settings, shared_pool(), outputs=outputs)
        run_runbooks([name], ctx)
        used = {call.split(".", 1)[0] for call in ctx.aws.calls}
        assert used, name
        undeclared = used - set(services_for([name]))
        assert not undeclared, (
            f"runbook {name} calls {undeclared}: add them to the services its area declares"
        )


def run_scenario(settings: Settings, stack: Stack, name: str) -> None:
    """The scenario, judged: diagnose all, then its alarm's triage when it has one."""
    scenario = apply_scenario(name, stack)
    expect = EXPECTED[name]
    check_expectations(name, diagnose_all(settings, stack), expect)
    if scenario.alarm:
        _, outcome = alarm_triage(settings, stack, scenario.alarm)
        assert outcome.root == expect.root, (name, outcome.root)
        if expect.fix is not None:
            assert outcome.fixes and outcome.fixes[0] == expect.fix, outcome.fixes
    if scenario.area != "all":
        declared_services(settings_for(settings, stack), stack.outputs, [scenario.area])


def names(*kinds: str) -> list[str]:
    return sorted(n for n, s in discover().items() if s.kind in kinds)
