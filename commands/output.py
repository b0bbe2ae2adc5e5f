"""Reports for a terminal: readable text (colour on a TTY) or the JSON of DESIGN.md §4."""

from __future__ import annotations

import json
from typing import Any

from .analysis import root_cause
from .models import Report, Status

_COLOUR = {
    Status.OK: "\033[32m",
    Status.WARN: "\033[33m",
    Status.FAIL: "\033[31m",
    Status.ERROR: "\033[35m",
    Status.SKIPPED: "\033[90m",
}
_RESET = "\033[0m"


def to_json(reports: list[Report], *, single: bool) -> str:
    if single:
        return reports[0].model_dump_json(indent=2)
    cause = root_cause(reports)
    return json.dumps(
        {
            "reports": [r.model_dump(mode="json") for r in reports],
            "root_cause": cause.model_dump(mode="json") if cause else None,
        },
        indent=2,
    )


def _value(v: Any, limit: int = 160) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_text(reports: list[Report], *, colour: bool) -> str:
    lines: list[str] = []
    cause = root_cause(reports) if len(reports) > 1 else None
    if cause:
        lines.append(f"Most probable cause: {cause.title} ({cause.check})")
        for link in cause.chain:
            lines.append(f"  → {link.title} ({link.check})")
        for other in cause.other_causes:
            lines.append(f"  also failing on its own: {other.title} ({other.check})")
        lines.append("")
    for report in reports:
        lines.append(
            f"{report.runbook} in {report.environment} ({report.region}), "
            f"{report.duration_ms} ms: {report.verdict()}"
        )
        if report.summary:
            lines.append(f"  {report.summary}")
        for f in report.sorted_findings():
            tag = f"[{f.status.value.upper():7}]"
            if colour:
                tag = f"{_COLOUR[f.status]}{tag}{_RESET}"
            lines.append(f"  {tag} {f.check}: {f.title}")
            if f.detail and f.status is not Status.OK:
                lines.append(f"            {f.detail}")
            if f.status is not Status.OK:
                for key, value in f.evidence.items():
                    lines.append(f"            {key}: {_value(value)}")
            for r in f.remediations:
                lines.append(f"            fix ({r.risk.value} risk): {r.title}")
                lines.append(f"              call: {r.call}")
                lines.append(f"              terraform: {r.terraform}")
                if r.caveat:
                    lines.append(f"              note: {r.caveat}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
