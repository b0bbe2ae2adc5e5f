"""Reports for a terminal: readable text (colour on a TTY) or the JSON of DESIGN.md §4.

Both are rendered from one :class:`~commands.analysis.Analysis`: the root cause first, then the
reports.  One runbook asked for prints its report as one object (with the analysis, and the
checks followed upstream, as extra keys); ``all`` prints ``{"reports": [...]}``.
"""

from __future__ import annotations

import json
from typing import Any

from .analysis import Analysis
from .models import Report, Status

_COLOUR = {
    Status.OK: "\033[32m",
    Status.WARN: "\033[33m",
    Status.FAIL: "\033[31m",
    Status.ERROR: "\033[35m",
    Status.SKIPPED: "\033[90m",
}
_RESET = "\033[0m"


def _analysis_json(analysis: Analysis) -> dict[str, Any]:
    return {
        "root_cause": analysis.root.model_dump(mode="json") if analysis.root else None,
        "other_causes": [c.model_dump(mode="json") for c in analysis.others],
    }


def to_document(reports: list[Report], analysis: Analysis, *, single: bool) -> dict[str, Any]:
    """The JSON report of DESIGN.md §4 as a dict: what the CLI prints and a job returns."""
    if single:
        asked = [r for r in reports if not r.followed]
        doc: dict[str, Any] = asked[0].model_dump(mode="json")
        doc.update(_analysis_json(analysis))
        doc["upstream"] = [r.model_dump(mode="json") for r in reports if r.followed]
        return doc
    return {"reports": [r.model_dump(mode="json") for r in reports], **_analysis_json(analysis)}


def to_json(reports: list[Report], analysis: Analysis, *, single: bool) -> str:
    return json.dumps(to_document(reports, analysis, single=single), indent=2, ensure_ascii=False)


def _value(v: Any, limit: int = 160) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_text(reports: list[Report], analysis: Analysis, *, colour: bool) -> str:
    lines: list[str] = []
    if analysis.root is not None:
        root = analysis.root
        lines.append(f"Root cause: {root.title} ({root.check})")
        lines += [f"  → {s.title} ({s.check})" for s in root.chain]
        lines += [f"  changed: {c.get('summary')}" for c in root.changes]
        for fix in analysis.root_fixes:
            lines.append(f"  fix: {fix.remediation.title} — {fix.remediation.call}")
        for other in analysis.others:
            lines.append(f"  also failing on its own: {other.title} ({other.check})")
        lines.append("")
    for report in reports:
        troubled = [
            f for f in report.findings if f.status in (Status.FAIL, Status.WARN, Status.ERROR)
        ]
        if report.followed and not troubled:
            names = ", ".join(f.check for f in report.findings)
            lines.append(f"{report.runbook} (followed upstream): all ok ({names})")
            lines.append("")
            continue
        label = f"{report.runbook} (followed upstream)" if report.followed else report.runbook
        lines.append(
            f"{label} in {report.environment} ({report.region}), "
            f"{report.duration_ms} ms: {report.verdict()}"
        )
        if report.summary:
            lines.append(f"  {report.summary}")
        for f in report.sorted_findings():
            if report.followed and f.status in (Status.OK, Status.SKIPPED):
                continue
            tag = f"[{f.status.value.upper():7}]"
            if colour:
                tag = f"{_COLOUR[f.status]}{tag}{_RESET}"
            lines.append(f"  {tag} {f.check}: {f.title}")
            if f.detail and f.status is not Status.OK:
                lines.append(f"            {f.detail}")
            if f.status is not Status.OK:
                for key, value in f.evidence.items():
                    lines.append(f"            {key}: {_value(value)}")
            cause = analysis.explained_by.get(f.check)
            if cause:
                lines.append(f"            (a symptom of {cause})")
            for r in f.remediations:
                lines.append(f"            fix ({r.risk.value} risk): {r.title}")
                lines.append(f"              call: {r.call}")
                lines.append(f"              terraform: {r.terraform}")
                if r.caveat:
                    lines.append(f"              note: {r.caveat}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
