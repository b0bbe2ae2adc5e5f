from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot import render
from bot.parse import areas, parse
from commands.analysis import analyse
from commands.fixes import propose
from commands.models import Finding, Report, Status


def test_diagnose_forms() -> None:
    assert parse("diagnose db") == parse("  DIAGNOSE   db ")
    cmd = parse("diagnose db staging")
    assert (cmd.kind, cmd.area, cmd.environment) == ("diagnose", "db", "staging")
    assert parse("diagnose all").area == "all"


def test_everything_else_is_help_with_a_reason() -> None:
    assert parse("").kind == "help" and parse("").problem is None
    assert parse("help").problem is None
    assert "unknown subcommand" in (parse("reboot prod").problem or "")
    assert "unknown area" in (parse("diagnose kafka").problem or "")
    assert "needs an area" in (parse("diagnose").problem or "")
    assert "environment" in (parse("diagnose db prod; rm -rf /").problem or "")


@given(st.text(max_size=300))
@settings(max_examples=300, deadline=None)
def test_parser_never_raises(text: str) -> None:
    cmd = parse(text)
    assert cmd.kind in {"help", "diagnose", "audit"}
    if cmd.kind == "diagnose":
        assert cmd.area in areas()


def _huge_report(n: int) -> Report:
    findings = [
        Finding(
            check=f"db.check_{i}",
            status=Status.FAIL if i % 2 else Status.WARN,
            title=f"Problem {i} " + "x" * 200,
            detail="d" * 5000,
            evidence={"rows": ["y" * 500] * 50},
            remediations=[propose("rds.start_cluster", DBClusterIdentifier="c" * 300)],
        )
        for i in range(n)
    ]
    return Report(
        runbook="db", environment="production", region="us-east-1", duration_ms=5, findings=findings
    )


def test_long_reports_respect_slack_limits() -> None:
    report = _huge_report(60)
    messages = render.report_messages(report, analyse([report]))
    assert len(messages) > 1
    for text, blocks in messages:
        assert len(blocks) <= 50
        assert len(text) < 40000
        # Slack refuses about 12,000 characters of block text (msg_blocks_too_long)
        assert len(json.dumps(blocks, ensure_ascii=False)) <= render.MAX_TEXT + 3500
        for block in blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
            Block.parse(block)  # slack_sdk validates on the way back in
    joined = json.dumps([b for _, bl in messages for b in bl])
    assert "truncated" in joined


def test_the_verdict_leads_with_the_root_cause_in_one_line() -> None:
    report = _huge_report(4)
    report.findings[1].title = "Aurora\ncluster is stopped " + "z" * 900
    analysis = analyse([report])
    header = render.Header(
        kind="diagnose", environment="production", asked=["db"], user="U024BE7LH"
    )
    text, blocks = render.verdict_message(header, analysis, [report], [])
    assert text.startswith("Root cause: Aurora cluster is stopped") and "\n" not in text
    first = blocks[0]["text"]["text"].splitlines()[0]
    assert (
        first.startswith(":red_circle: *Root cause:* Aurora cluster is stopped")
        and len(first) < 300
    )
    assert "<@U024BE7LH>" in json.dumps(blocks)  # who asked: Omni's own mention stays live
    assert blocks[-1]["elements"][0]["action_id"] == render.TIMELINE_ACTION


def test_help_lists_areas() -> None:
    text, blocks = render.help_blocks("unknown area `kafka`", areas())
    assert "kafka" in text and "`db`" in text and "/omni diagnose" in text
    assert blocks[0]["type"] == "section"
