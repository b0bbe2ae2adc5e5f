"""The result models of a runbook: findings, proposed remediations and reports (DESIGN.md §4)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def rank(self) -> int:
        """Severity order used to sort findings and pick a verdict (higher is worse)."""
        return _RANK[self]


_RANK = {Status.SKIPPED: 0, Status.OK: 1, Status.WARN: 2, Status.ERROR: 3, Status.FAIL: 4}


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Remediation(BaseModel):
    """A fix a finding proposes: its id, the exact parameters it would run with, and what its
    declaration derives from them (target, approving role, the call's preview, the Terraform
    change, a caveat), so whoever shows or approves it needs no fix code."""

    model_config = ConfigDict(frozen=True)

    id: str
    title: str
    risk: Risk
    params: dict[str, Any]
    target: str = ""
    role: str = "operator"
    call: str = ""
    terraform: str = ""
    caveat: str = ""


class Finding(BaseModel):
    check: str = ""
    status: Status
    title: str
    detail: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict)
    remediations: list[Remediation] = Field(default_factory=list)
    resources: list[str] = Field(
        default_factory=list, description="ids, names or ARNs of what the finding is about"
    )
    changes: list[dict[str, Any]] = Field(
        default_factory=list, description="recent writes that touched it (commands.changes)"
    )


class Report(BaseModel):
    runbook: str
    environment: str
    region: str
    duration_ms: int
    findings: list[Finding]
    summary: str | None = None
    followed: bool = False  # only the checks followed upstream from the runbooks asked for

    @property
    def worst(self) -> Status:
        return max((f.status for f in self.findings), key=lambda s: s.rank, default=Status.OK)

    @property
    def failed(self) -> bool:
        return any(f.status is Status.FAIL for f in self.findings)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for f in self.findings:
            out[f.status.value] += 1
        return out

    def verdict(self) -> str:
        """One line a responder can read at 3 a.m.: the worst findings first."""
        fails = [f for f in self.findings if f.status is Status.FAIL]
        errors = [f for f in self.findings if f.status is Status.ERROR]
        warns = [f for f in self.findings if f.status is Status.WARN]
        if fails:
            head = " ".join(fails[0].title.split())
            if len(head) > 150:
                head = head[:149] + "…"
            more = len(fails) - 1
            return f"{head}" + (f" (+{more} more failing)" if more else "")
        if errors:
            return f"No failure found, but {len(errors)} check(s) could not run"
        if warns:
            return f"No failure found; {len(warns)} warning(s): {warns[0].title}"
        skipped = sum(f.status is Status.SKIPPED for f in self.findings)
        if skipped:
            passed = len(self.findings) - skipped
            return f"{passed} {self.runbook} checks passed; {skipped} not configured"
        return f"All {len(self.findings)} {self.runbook} checks passed"

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (-f.status.rank, f.check))
