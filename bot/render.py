"""Block Kit for Omni's messages, built with slack_sdk's models and kept within Slack's limits.

Limits (notes/slack.md): 50 blocks a message, 3,000 characters a section text, ~40,000 for
``text``.  Long evidence is truncated with a note; a long report is split over several messages.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    MarkdownTextObject,
    SectionBlock,
)

from commands.analysis import RootCause
from commands.models import Finding, Remediation, Report, Risk, Status

MAX_BLOCKS = 50
SECTION_CHARS = 3000
EMOJI = {
    Status.OK: ":large_green_circle:",
    Status.WARN: ":large_yellow_circle:",
    Status.FAIL: ":red_circle:",
    Status.ERROR: ":warning:",
    Status.SKIPPED: ":white_circle:",
}


def truncate(text: str, limit: int = SECTION_CHARS) -> str:
    if len(text) <= limit:
        return text
    note = f"\n… (truncated, {len(text) - limit + 40} more characters)"
    return text[: limit - len(note)] + note


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text)))


def help_blocks(problem: str | None, areas: list[str]) -> tuple[str, list[dict[str, Any]]]:
    lines = []
    if problem:
        lines.append(f":thinking_face: I didn't understand that: {problem}.")
    lines += [
        "*Omni runs the troubleshooting guide for you.*",
        "`/omni diagnose AREA [ENV]`: run a runbook and post the findings in a thread.",
        f"Areas: {', '.join(f'`{a}`' for a in areas)}",
        "Examples: `/omni diagnose db`, `/omni diagnose ecs staging`, `/omni diagnose all`",
        "`/omni audit`: the last fixes, approvals and refusals.",
        "`/omni help`: this message.",
    ]
    text = "\n".join(lines)
    return text, [_section(text).to_dict()]


def root_text(area: str, environment: str, user: str) -> str:
    return f":mag: Diagnosing *{area}* in *{environment}*, asked by <@{user}>…"


def verdict_text(report: Report, user: str | None) -> str:
    asked = f", asked by <@{user}>" if user else ""
    verdict = " ".join(report.verdict().split())
    if len(verdict) > 250:
        verdict = verdict[:249] + "…"
    return (
        f"{EMOJI[report.worst if report.findings else Status.OK]} *{report.runbook}* in "
        f"*{report.environment}*: {verdict} ({report.duration_ms} ms){asked}"
    )


def all_verdict_text(cause: RootCause | None, reports: list[Report], user: str | None) -> str:
    asked = f", asked by <@{user}>" if user else ""
    ms = max((r.duration_ms for r in reports), default=0)
    if cause is None:
        return f":large_green_circle: *all* runbooks: no failing check ({ms} ms){asked}"
    title = " ".join(cause.title.split())[:200]
    return f":red_circle: *all* runbooks: most probable cause: {title} ({ms} ms){asked}"


def triage_verdict_text(
    name: str | None,
    state: str | None,
    runbooks: list[str],
    worst: str,
    failing: bool,
    reports: list[Report],
) -> str:
    ms = max((r.duration_ms for r in reports), default=0)
    emoji = ":red_circle:" if failing else ":large_green_circle:"
    verdict = " ".join(worst.split())[:200]
    return f"{emoji} Triage of *{name}* ({state}) — {', '.join(runbooks)}: {verdict} ({ms} ms)"


def _evidence(f: Finding, limit: int = 1800) -> str:
    if not f.evidence:
        return ""
    body = json.dumps(f.evidence, indent=1, default=str, sort_keys=False)
    if len(body) > limit:
        body = body[: limit - 30] + "\n… (evidence truncated)"
    return f"\n```{body}```"


PlanRef = Callable[[Finding, Remediation], str | None]
TIMELINE_ACTION = "omni_timeline"


def with_timeline_button(text: str) -> list[dict[str, Any]]:
    """A thread's root (or first reply) with its "Timeline" button."""
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=truncate(text, 2900))),
        ActionsBlock(
            block_id="omni-timeline",
            elements=[ButtonElement(text="Timeline", action_id=TIMELINE_ACTION, value="timeline")],
        ),
    ]
    return [b.to_dict() for b in blocks]


def fix_button(r: Remediation, ref: str, index: int, environment: str) -> ActionsBlock:
    confirm = ConfirmObject(
        title="Run this fix?",
        text=truncate(f"In *{environment}*: {r.call} ({r.risk.value} risk).", 290),
        confirm="Run it",
        deny="Cancel",
    )
    button = ButtonElement(
        text=truncate(f"Fix: {r.title}", 75),
        action_id=f"remediate:{r.id}:{index}",
        value=ref,
        style="danger" if r.risk is Risk.HIGH else "primary",
        confirm=confirm,
    )
    return ActionsBlock(block_id=f"fix-{index}", elements=[button])


def finding_blocks(
    f: Finding, plan_ref: PlanRef | None = None, environment: str = "", start: int = 0
) -> list[Block]:
    text = f"{EMOJI[f.status]} *{f.title}*  `{f.check}`"
    if f.detail:
        text += f"\n{f.detail}"
    blocks: list[Block] = [_section(truncate(text, 1100) + _evidence(f))]
    for i, r in enumerate(f.remediations):
        approval = "an admin and a second person" if r.risk is Risk.HIGH else "an operator"
        blocks.append(
            _section(
                f":wrench: *Proposed fix* ({r.risk.value} risk, needs {approval}): {r.title}\n"
                f"Call: `{r.call}`\nTerraform: {r.terraform}"
                + (f"\n_{r.caveat}_" if r.caveat else "")
            )
        )
        ref = plan_ref(f, r) if plan_ref else None
        if ref:
            blocks.append(fix_button(r, ref, start + i, environment))
    return blocks


def report_messages(
    report: Report, plan_ref: PlanRef | None = None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The thread replies for a report: (fallback text, blocks) per message, worst first."""
    counts = report.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    head_text = f"*{report.runbook}* in *{report.environment}* ({report.region}): {summary}"
    if report.summary:
        head_text += f"\n:stopwatch: {report.summary}"
    head: list[Block] = [_section(head_text)]
    body: list[Block] = []
    quiet: list[str] = []
    buttons = 0
    for f in report.sorted_findings():
        if f.status in (Status.OK, Status.SKIPPED):
            quiet.append(f"{EMOJI[f.status]} {f.title} `{f.check}`")
        else:
            body.extend(finding_blocks(f, plan_ref, report.environment, buttons))
            buttons += len(f.remediations)
            body.append(DividerBlock())
    if quiet:
        body.append(_section("\n".join(quiet)))
    body.append(ContextBlock(elements=[MarkdownTextObject(text=f"{report.duration_ms} ms · Omni")]))

    messages: list[list[Block]] = []
    current = list(head)
    for block in body:
        if len(current) >= MAX_BLOCKS:
            messages.append(current)
            current = []
        current.append(block)
    messages.append(current)
    out = []
    for i, blocks in enumerate(messages):
        fallback = f"{report.runbook}: {report.verdict()}" + (
            f" ({i + 1}/{len(messages)})" if len(messages) > 1 else ""
        )
        out.append((fallback, [b.to_dict() for b in blocks]))
    return out


def root_cause_message(
    cause: RootCause | None, reports: list[Report]
) -> tuple[str, list[dict[str, Any]]]:
    """The first reply of a ``diagnose all``: the most probable cause and its chain of evidence."""
    counts = {s: sum(r.counts()[s] for r in reports) for s in ("fail", "error", "warn", "ok")}
    tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    if cause is None:
        text = f":large_green_circle: *No failing check* across {len(reports)} runbooks ({tally})."
        return text, [_section(text).to_dict()]
    lines = [f":dart: *Most probable cause:* {cause.title}  `{cause.check}`"]
    lines += [f"      → {link.title}  `{link.check}`" for link in cause.chain]
    if cause.other_causes:
        lines.append(
            "Also failing on its own: "
            + "; ".join(f"{o.title} `{o.check}`" for o in cause.other_causes[:5])
        )
    lines.append(f"_{len(reports)} runbooks: {tally}_")
    text = "\n".join(lines)
    return f"Most probable cause: {cause.title}", [_section(text).to_dict()]


def error_text(what: str, reason: str) -> str:
    return f":x: {what} failed: {truncate(reason, 1500)}"


def fix_outcome_text(
    plan_fix: str, summary: str, before: dict[str, Any], after: dict[str, Any], user: str | None
) -> str:
    who = f" (approved by <@{user}>)" if user else ""
    changes = "\n".join(
        f"• `{k}`: {json.dumps(before.get(k), default=str)} → {json.dumps(after.get(k), default=str)}"
        for k in sorted(set(before) | set(after))
    )
    return truncate(f":white_check_mark: *{summary}* `{plan_fix}`{who}\n{changes}")
