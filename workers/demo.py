"""``omni demo``: the whole loop on a laptop, no Slack, no AWS, no Redis.

An in-process AWS emulator (moto) seeded with the guide's stack and one fault, the real Bolt
app fed a signed ``/omni diagnose`` request, the real RQ worker code on fakeredis, and the Slack
thread printed as a transcript.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from typing import Any

from pydantic import SecretStr

_EMOJI = {
    ":red_circle:": "🔴",
    ":large_green_circle:": "🟢",
    ":large_yellow_circle:": "🟡",
    ":warning:": "⚠️",
    ":white_circle:": "⚪",
    ":wrench:": "🔧",
    ":dart:": "🎯",
    ":mag:": "🔍",
    ":x:": "❌",
    ":stopwatch:": "⏱",
    ":thinking_face:": "🤔",
}


def _plain(text: str) -> str:
    for code, char in _EMOJI.items():
        text = text.replace(code, char)
    return text


def _transcript_lines(message: dict[str, Any], indent: str) -> list[str]:
    return [_plain(line) for line in _raw_lines(message, indent)]


def _raw_lines(message: dict[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    blocks = message.get("blocks") or []
    if not blocks:
        return [indent + line for line in str(message.get("text", "")).splitlines()]
    for block in blocks:
        kind = block.get("type")
        if kind == "section":
            text = (block.get("text") or {}).get("text", "")
            lines += [indent + line for line in text.splitlines()]
            for fld in block.get("fields") or []:
                lines.append(indent + fld.get("text", ""))
        elif kind == "context":
            lines.append(indent + " ".join(e.get("text", "") for e in block.get("elements", [])))
        elif kind == "actions":
            labels = [f"[ {e.get('text', {}).get('text', '')} ]" for e in block.get("elements", [])]
            lines.append(indent + "  ".join(labels))
        elif kind == "divider":
            lines.append(indent + "-" * 40)
    return lines


def main(args: argparse.Namespace) -> int:
    from commands.sandbox import SCENARIOS

    if getattr(args, "list", False):
        width = max(len(n) for n in SCENARIOS)
        for name in sorted(SCENARIOS):
            s = SCENARIOS[name]
            print(f"{name:<{width}}  [{s.area}] {s.summary}")
        return 0
    if args.scenario not in SCENARIOS:
        print(
            f"omni demo: unknown scenario {args.scenario!r}; see `omni demo --list`",
            file=sys.stderr,
        )
        return 2
    return run_demo(args.scenario, out=sys.stdout)


def run_demo(scenario_name: str, out: Any) -> int:
    # The emulator needs credentials of some kind; these never leave this process.
    for key, value in {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_SESSION_TOKEN": "demo",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import fakeredis
    from moto import mock_aws
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer
    from slack_bolt.request import BoltRequest

    from bot.app import create_app
    from bot.fakeslack import FakeSlack
    from bot.queue import DIAGNOSTICS_QUEUE, Enqueuer
    from bot.signing import signed_headers, slash_command_body
    from bot.slack_client import make_web_client
    from commands.aws import ClientPool
    from commands.names import Names
    from commands.sandbox import apply_scenario, seed
    from commands.settings import Settings

    from .runtime import Runtime, set_runtime

    channel, user = "C0INCIDENT", "U0ONCALL"
    scenario = None
    with mock_aws(), FakeSlack() as slack:
        settings = Settings(
            slack_bot_token=SecretStr("xoxb-demo-" + secrets.token_hex(8)),
            slack_signing_secret=SecretStr(secrets.token_hex(16)),
            slack_api_url=slack.url,
            region="us-east-1",
        )
        pool = ClientPool(retry_mode=settings.aws_retry_mode, max_attempts=2)
        print(
            f"Seeding the {settings.project}-{settings.environment} stack "
            "in an in-process AWS emulator…",
            file=out,
        )
        stack = seed(pool, Names.from_settings(settings), settings.region)
        scenario = apply_scenario(scenario_name, stack)
        print(f"Fault injected: {scenario.name}: {scenario.summary}\n", file=out)

        redis = fakeredis.FakeRedis()
        set_runtime(Runtime(settings=settings, pool=pool, slack=make_web_client(settings)))
        # Terraform outputs are known here; hand them to the worker through its settings' file.
        import json
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump({k: {"value": v} for k, v in stack.outputs.items()}, fh)
        settings.terraform_outputs = fh.name

        app = create_app(settings, enqueuer=Enqueuer(redis, settings))
        area = scenario.area
        text = f"diagnose {area}"
        body = slash_command_body(
            text, user=user, channel=channel, response_url=slack.url.replace("/api/", "/response/1")
        )
        assert settings.slack_signing_secret is not None
        headers = signed_headers(settings.slack_signing_secret.get_secret_value(), body)
        print(f"@oncall: /omni {text}", file=out)
        started = time.monotonic()
        response = app.dispatch(
            BoltRequest(body=body, headers={k.lower(): [v] for k, v in headers.items()})
        )
        ack_ms = (time.monotonic() - started) * 1000
        print(f"   (Omni acked in {ack_ms:.0f} ms, HTTP {response.status})\n", file=out)

        root_ts = slack.wait_for(lambda: slack.roots(channel), timeout=10)[0]["ts"]
        from rq import Queue

        queue = Queue(DIAGNOSTICS_QUEUE, connection=redis, serializer=JSONSerializer)
        slack.wait_for(lambda: queue.count > 0, timeout=10)
        SimpleWorker([queue], connection=redis, serializer=JSONSerializer).work(
            burst=True, logging_level="WARNING"
        )
        elapsed = time.monotonic() - started
        for i, message in enumerate(slack.thread(channel, root_ts)):
            who = "Omni" if i == 0 else "  └ Omni (in thread)"
            print(f"{who}:", file=out)
            for line in _transcript_lines(message, "    " if i == 0 else "      "):
                print(line, file=out)
            print(file=out)
        print(
            f"Done in {elapsed:.1f}s. Slack calls made: {len(slack.calls)} "
            f"({', '.join(sorted({c.method for c in slack.calls}))}).",
            file=out,
        )
        os.unlink(fh.name)
    return 0
