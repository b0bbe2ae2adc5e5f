"""Block Kit for Omni's messages, built with slack_sdk's models and kept within Slack's limits.

Everything here renders from one :class:`~commands.analysis.Analysis`: the **verdict** (the root
cause, its chain, the change that caused it, the root cause's fix buttons), then the **details**
(one message per runbook with something to say).  Every piece of text that is not Omni's own —
finding titles and details built from AWS data and log lines, evidence, alarm names — goes
through :func:`commands.text.escape`, so ``<!channel>`` or a disguised link in a log line stays
text; Omni's own mentions and links are added after escaping.

Limits (notes/slack.md): 50 blocks and about 12,000 characters of text a message, 3,000 a
section, 75 a button, 300 a confirm dialog.  Long evidence is truncated with a note; a long
report is split over several messages by block count and by total text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
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

from commands.analysis import Analysis, Offer
from commands.models import Finding, Remediation, Report, Risk, Status
from commands.text import escape, mention

MAX_BLOCKS = 50
MAX_TEXT = 11_000  # Slack refuses about 12,000 characters of block text (msg_blocks_too_long)
SECTION_CHARS = 3000
TIMELINE_ACTION = "omni_timeline"
EMOJI = {
    Status.OK: ":large_green_circle:",
    Status.WARN: ":large_yellow_circle:",
    Status.FAIL: ":red_circle:",
    Status.ERROR: ":warning:",
    Status.SKIPPED: ":white_circle:",
}

Message = tuple[str, list[dict[str, Any]]]
ButtonRef = Callable[[Offer], str | None]


def truncate(text: str, limit: int = SECTION_CHARS) -> str:
    if len(text) <= limit:
        return text
    note = f"\n… (truncated, {len(text) - limit + 40} more characters)"
    return text[: limit - len(note)] + note


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text)))


def help_blocks(problem: str | None, areas: list[str]) -> Message:
    lines = []
    if problem:
        lines.append(f":thinking_face: I didn't understand that: {escape(problem)}.")
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
    return (
        f":mag: Diagnosing *{escape(area)}* in *{escape(environment)}*, asked by {mention(user)}…"
    )


def timeline_button() -> ActionsBlock:
    return ActionsBlock(
        block_id="omni-timeline",
        elements=[ButtonElement(text="Timeline", action_id=TIMELINE_ACTION, value="timeline")],
    )


def with_timeline_button(text: str) -> list[dict[str, Any]]:
    """A thread's root (or first reply) with its "Timeline" button."""
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=truncate(text, 2900))),
        timeline_button(),
    ]
    return [b.to_dict() for b in blocks]


# -- the verdict -----------------------------------------------------------------------------
@dataclass
class Header:
    """What the verdict is the verdict of."""

    kind: str  # "diagnose" | "triage"
    environment: str
    asked: list[str]  # the runbooks asked for (routed, for a triage)
    followed: list[str] = field(default_factory=list)  # areas followed upstream
    user: str | None = None
    alarm: str | None = None
    state: str | None = None
    duration_ms: int = 0
    region: str = ""

    def context(self) -> str:
        where = ", ".join(self.asked)
        if self.followed:
            where += f", followed upstream to {', '.join(self.followed)}"
        if self.kind == "triage":
            head = f"Triage of *{escape(self.alarm or '?')}* ({escape(self.state or '?')})"
        else:
            head = "Diagnosis" + (f", asked by {mention(self.user)}" if self.user else "")
        region = f" ({escape(self.region)})" if self.region else ""
        return f"{head} in *{escape(self.environment)}*{region}: {where} · {self.duration_ms} ms"


def _short_call(r: Remediation) -> str:
    return r.call.split(" {", 1)[0]


def fix_button(offer: Offer, ref: str, index: int, environment: str) -> ActionsBlock:
    r = offer.remediation
    confirm = ConfirmObject(
        title="Run this fix?",
        text=truncate(
            f"In *{escape(environment)}*: {escape(r.title)} on `{escape(r.target or r.id)}` — "
            f"`{escape(_short_call(r))}` ({r.risk.value} risk).",
            300,
        ),
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


def _change_line(change: dict[str, Any]) -> str:
    return f":pencil2: Changed: {escape(change.get('summary', ''))}"


def verdict_message(
    header: Header,
    analysis: Analysis,
    reports: list[Report],
    buttons: list[tuple[Offer, str]],
) -> Message:
    """The first thing the thread says: the root cause, what it explains, who changed what, and
    the root cause's fix buttons (``buttons``: its offers with their plan references)."""
    root = analysis.root
    if root is None:
        counts = {s: sum(r.counts()[s] for r in reports) for s in ("warn", "error", "ok")}
        worst = next(
            (f for r in reports for f in r.sorted_findings() if f.status is not Status.OK), None
        )
        if counts["error"]:
            lead = f":warning: No failing check, but {counts['error']} could not run"
        elif counts["warn"] and worst is not None:
            lead = (
                f":large_yellow_circle: No failing check; {counts['warn']} warning(s): "
                f"{escape(_one_line(worst.title))}"
            )
        else:
            lead = f":large_green_circle: No failing check ({counts['ok']} ok)"
        lines = [lead]
        fallback = f"{lead} · {', '.join(header.asked)} in {header.environment}"
    else:
        lines = [f":red_circle: *Root cause:* {escape(_one_line(root.title))}  `{root.check}`"]
        lines += [
            f"      → {escape(_one_line(step.title, 150))}  `{step.check}`"
            for step in root.chain[:6]
        ]
        if len(root.chain) > 6:
            lines.append(f"      → … and {len(root.chain) - 6} more")
        lines += [_change_line(c) for c in root.changes[:3]]
        if analysis.others:
            lines.append(
                "Also failing on its own: "
                + "; ".join(
                    f"{escape(_one_line(o.title, 120))} `{o.check}`" for o in analysis.others[:4]
                )
            )
        if root.check and not buttons and not any(o.check == root.check for o in analysis.offers):
            lines.append("_No fix in Omni's catalogue for this one: see the details below._")
        fallback = f"Root cause: {_one_line(root.title)}"
    blocks: list[Block] = [_section("\n".join(lines))]
    blocks += [fix_button(o, ref, i, header.environment) for i, (o, ref) in enumerate(buttons)]
    blocks.append(
        ContextBlock(elements=[MarkdownTextObject(text=truncate(header.context(), 2900))])
    )
    blocks.append(timeline_button())
    return truncate(fallback, 3000), [b.to_dict() for b in blocks]


# -- the details -----------------------------------------------------------------------------
def _evidence(f: Finding, limit: int = 1800) -> str:
    if not f.evidence:
        return ""
    body = json.dumps(f.evidence, indent=1, default=str, ensure_ascii=False)
    if len(body) > limit:
        body = body[: limit - 30] + "\n… (evidence truncated)"
    return f"\n```{escape(body)}```"


def finding_blocks(
    f: Finding,
    analysis: Analysis,
    button_of: Callable[[Remediation], tuple[Offer, str] | None],
    environment: str,
    start: int = 0,
) -> list[Block]:
    text = f"{EMOJI[f.status]} *{escape(f.title)}*  `{f.check}`"
    if f.detail:
        text += f"\n{escape(f.detail)}"
    text += "".join(f"\n{_change_line(c)}" for c in f.changes[:3])
    cause = analysis.explained_by.get(f.check)
    if cause:
        text += f"\n_A symptom of `{cause}`: fix the cause first._"
    blocks: list[Block] = [_section(truncate(text, 1100) + _evidence(f))]
    root = analysis.root.check if analysis.root else None
    for i, r in enumerate(f.remediations):
        approval = "an admin and a second person" if r.role == "admin" else "an operator"
        lines = [
            f":wrench: *Proposed fix* ({r.risk.value} risk, needs {approval}): {escape(r.title)}",
            f"Call: `{escape(r.call)}`",
            f"Terraform: {escape(r.terraform)}",
        ]
        if r.caveat:
            lines.append(f"_{escape(r.caveat)}_")
        offer = analysis.offer_for(f.check, r)
        button = button_of(r)
        if offer is not None and offer.check != f.check:
            lines.append(f"_The same fix as `{offer.check}` above._")
        elif f.check == root and offer is not None and offer.symptom_of is None:
            lines.append("_Its button is on the verdict, the first message of this thread._")
        elif cause:
            lines.append("_No button: it treats a symptom._")
        blocks.append(_section("\n".join(lines)))
        if button is not None and f.check != root and offer is not None and offer.check == f.check:
            blocks.append(fix_button(button[0], button[1], start + i, environment))
    return blocks


def _text_size(block: Block) -> int:
    return len(json.dumps(block.to_dict(), ensure_ascii=False))


def split(blocks: list[Block], head: list[Block] | None = None) -> list[list[Block]]:
    """Messages of at most :data:`MAX_BLOCKS` blocks and about :data:`MAX_TEXT` characters."""
    messages: list[list[Block]] = []
    current: list[Block] = list(head or [])
    size = sum(_text_size(b) for b in current)
    for block in blocks:
        n = _text_size(block)
        if current and (len(current) >= MAX_BLOCKS or size + n > MAX_TEXT):
            messages.append(current)
            current, size = [], 0
        current.append(block)
        size += n
    if current:
        messages.append(current)
    return messages


def report_messages(
    report: Report,
    analysis: Analysis,
    button_of: Callable[[Remediation], tuple[Offer, str] | None] = lambda r: None,
) -> list[Message]:
    """The thread replies for a report: (fallback text, blocks) per message, worst first."""
    counts = report.counts()
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    label = f"{report.runbook} (followed upstream)" if report.followed else report.runbook
    head_text = f"*{label}* in *{escape(report.environment)}* ({report.region}): {summary}"
    if report.summary:
        head_text += f"\n:stopwatch: {escape(report.summary)}"
    body: list[Block] = []
    quiet: list[str] = []
    buttons = 0
    for f in report.sorted_findings():
        if f.status in (Status.OK, Status.SKIPPED):
            quiet.append(f"{EMOJI[f.status]} {escape(f.title)} `{f.check}`")
        else:
            body.extend(finding_blocks(f, analysis, button_of, report.environment, buttons))
            buttons += len(f.remediations)
            body.append(DividerBlock())
    if quiet:
        body.append(_section("\n".join(quiet)))
    body.append(ContextBlock(elements=[MarkdownTextObject(text=f"{report.duration_ms} ms · Omni")]))
    messages = split(body, [_section(head_text)])
    out = []
    for i, blocks in enumerate(messages):
        fallback = f"{report.runbook}: {_one_line(report.verdict(), 300)}" + (
            f" ({i + 1}/{len(messages)})" if len(messages) > 1 else ""
        )
        out.append((fallback, [b.to_dict() for b in blocks]))
    return out


def quiet_line(reports: list[Report]) -> Message | None:
    """One line for the runbooks that found nothing."""
    names = [f"{r.runbook} ({len(r.findings)} ok)" for r in reports]
    if not names:
        return None
    text = ":large_green_circle: Nothing wrong in " + ", ".join(names) + "."
    return text, [_section(text).to_dict()]


def error_text(what: str, reason: str) -> str:
    return f":x: {escape(what)} failed: {escape(truncate(reason, 1500))}"


def fix_outcome_text(
    plan_fix: str, summary: str, before: dict[str, Any], after: dict[str, Any], user: str | None
) -> str:
    who = f" (approved by {mention(user)})" if user else ""

    def show(value: Any) -> str:
        return escape(json.dumps(value, default=str, ensure_ascii=False))

    changes = "\n".join(
        f"• `{escape(k)}`: {show(before.get(k))} → {show(after.get(k))}"
        for k in sorted(set(before) | set(after))
    )
    return truncate(f":white_check_mark: *{escape(summary)}* `{plan_fix}`{who}\n{changes}")
