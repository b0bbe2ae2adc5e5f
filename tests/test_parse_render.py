from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot import render
from bot.parse import areas, parse
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
    assert cmd.kind in {"help", "diagnose"}
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
    messages = render.report_messages(_huge_report(60))
    assert len(messages) > 1
    for text, blocks in messages:
        assert len(blocks) <= 50
        assert len(text) < 40000
        for block in blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
            Block.parse(block)  # slack_sdk validates on the way back in
    joined = json.dumps([b for _, bl in messages for b in bl])
    assert "truncated" in joined


def test_verdict_is_one_line() -> None:
    report = _huge_report(4)
    report.findings[1].title = "Aurora\ncluster is stopped " + "z" * 900
    line = render.verdict_text(report, "U1")
    assert "\n" not in line and "<@U1>" in line and "+1 more failing" in line
    assert len(line) < 400


def test_help_lists_areas() -> None:
    text, blocks = render.help_blocks("unknown area `kafka`", areas())
    assert "kafka" in text and "`db`" in text and "/omni diagnose" in text
    assert blocks[0]["type"] == "section"
