"""``omni demo``: the whole loop on a laptop, no Slack, no AWS, no Redis.

``omni`` loads this module by name; it needs the ``demo`` extra.

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
    ":gear:": "⚙️",
    ":white_check_mark:": "✅",
    ":raised_hand:": "✋",
    ":rotating_light:": "🚨",
}


def _plain(text: str) -> str:
    for code, char in _EMOJI.items():
        text = text.replace(code, char)
    return text


def _transcript_lines(message: dict[str, Any], indent: str) -> list[str]:
    return [_plain(line) for line in _raw_lines(message, indent)]


def _raw_lines(message: dict[str, Any], indent: str) -> list[str]:
    lines: list[str] = []
    for f in message.get("files") or []:
        lines.append(
            f"{indent}📎 {f.get('title')} ({f.get('name')}, {f.get('size', 0) // 1024} KB)"
        )
        if f.get("alt_txt"):
            lines.append(f"{indent}   alt text: {f['alt_txt']}")
    blocks = message.get("blocks") or []
    if not blocks:
        return lines + [indent + line for line in str(message.get("text", "")).splitlines()]
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
    from .scenarios import discover

    scenarios = discover()
    if getattr(args, "list", False):
        width = max(len(n) for n in scenarios)
        for name in sorted(scenarios):
            s = scenarios[name]
            print(f"{name:<{width}}  [{s.area}] {s.summary}")
        return 0
    if args.scenario not in scenarios:
        print(
            f"omni demo: unknown scenario {args.scenario!r}; see `omni demo --list`",
            file=sys.stderr,
        )
        return 2
    return run_demo(args.scenario, out=sys.stdout)


CHANNEL, ONCALL, TEAMMATE = "C0INCIDENT", "U0ONCALL", "U0TEAMMATE"


def run_demo(scenario_name: str, out: Any, *, redis: Any = None, slack: Any = None) -> int:
    """The loop, printed to ``out``; ``redis`` / ``slack`` replace fakeredis / a new fake Slack
    (the tests pass the real Redis)."""
    # The emulator needs credentials of some kind; these never leave this process.
    for key, value in {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_SESSION_TOKEN": "demo",
    }.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import contextlib
    import json
    import tempfile

    import fakeredis
    from moto import mock_aws
    from rq import Queue
    from rq.serializers import JSONSerializer
    from slack_bolt.request import BoltRequest

    from bot.app import create_app
    from bot.queue import DIAGNOSTICS_QUEUE, FIXES_QUEUE, Enqueuer
    from bot.slack_client import make_web_client
    from commands.aws import ClientPool
    from commands.names import Names
    from commands.settings import Settings
    from workers.runtime import Runtime, set_runtime
    from workers.worker import OmniWorker

    from .fakeslack import FakeSlack
    from .requests import (
        block_actions_body,
        chatbot_alarm_event,
        signed_headers,
        slash_command_body,
    )
    from .scenarios import apply_scenario
    from .stack import seed

    owned = contextlib.nullcontext(slack) if slack is not None else FakeSlack()
    with mock_aws(), owned as slack, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            slack_bot_token=SecretStr("xoxb-demo-" + secrets.token_hex(8)),
            slack_signing_secret=SecretStr(secrets.token_hex(16)),
            slack_api_url=slack.url,
            region="us-east-1",
            role_bindings={"operator": [TEAMMATE], "admin": [ONCALL]},
            post_interval_ms=0,  # a transcript needs no pacing
        )
        pool = ClientPool(retry_mode=settings.aws_retry_mode, max_attempts=2)
        print(
            f"Seeding the {settings.project}-{settings.environment} stack in an in-process AWS emulator…",
            file=out,
        )
        stack = seed(pool, Names.from_settings(settings), settings.region)
        scenario = apply_scenario(scenario_name, stack)
        print(f"Fault injected: {scenario.name}: {scenario.summary}\n", file=out)
        outputs = os.path.join(tmp, "outputs.json")
        with open(outputs, "w") as fh:
            json.dump({k: {"value": v} for k, v in stack.outputs.items()}, fh)
        settings.terraform_outputs = outputs

        redis = redis if redis is not None else fakeredis.FakeRedis()
        set_runtime(
            Runtime.with_redis(settings, pool, make_web_client(settings, redis=redis), redis)
        )
        app = create_app(settings, enqueuer=Enqueuer(redis, settings))
        assert settings.slack_signing_secret is not None
        secret = settings.slack_signing_secret.get_secret_value()
        queues = [
            Queue(FIXES_QUEUE, connection=redis, serializer=JSONSerializer),
            Queue(DIAGNOSTICS_QUEUE, connection=redis, serializer=JSONSerializer),
        ]
        started = time.monotonic()
        shown: set[str] = set()

        def send(body: str, content_type: str = "application/x-www-form-urlencoded") -> float:
            t = time.monotonic()
            headers = signed_headers(secret, body, content_type=content_type)
            response = app.dispatch(
                BoltRequest(body=body, headers={k.lower(): [v] for k, v in headers.items()})
            )
            assert response.status == 200, response.body
            return (time.monotonic() - t) * 1000

        def work() -> None:
            slack.wait_for(lambda: any(q.count for q in queues), timeout=10)
            OmniWorker(queues, connection=redis, serializer=JSONSerializer).work(
                burst=True, logging_level="WARNING"
            )

        def show(thread_ts: str) -> None:
            for message in slack.thread(CHANNEL, thread_ts):
                if message["ts"] in shown:
                    continue
                shown.add(message["ts"])
                root = message["ts"] == thread_ts
                print(f"{'Omni' if root else '  └ Omni (in thread)'}:", file=out)
                for line in _transcript_lines(message, "    " if root else "      "):
                    print(line, file=out)
                print(file=out)

        alarm = scenario.alarm
        if alarm:
            name = f"{stack.names.alarm_prefix}{alarm}"
            thread_ts = f"{time.time():.6f}"  # the alarm post's ts: now, as Slack would give
            print(
                f"AWS Chatbot posts: :rotating_light: CloudWatch Alarm | {name} | ALARM\n", file=out
            )
            send(
                json.dumps(chatbot_alarm_event(name, "ALARM", thread_ts, CHANNEL, "EvDemo1")),
                "application/json",
            )
            slack.wait_for(lambda: slack.thread(CHANNEL, thread_ts), timeout=10)
        else:
            text = f"diagnose {scenario.area}"
            print(f"@oncall: /omni {text}", file=out)
            ms = send(
                slash_command_body(
                    text,
                    user=ONCALL,
                    channel=CHANNEL,
                    response_url=slack.url.replace("/api/", "/response/1"),
                )
            )
            print(f"   (Omni acked in {ms:.0f} ms)\n", file=out)
        work()
        if not alarm:  # the worker posted the thread root
            thread_ts = slack.wait_for(lambda: slack.roots(CHANNEL), timeout=10)[0]["ts"]
        show(thread_ts)

        button = _first_button(slack.thread(CHANNEL, thread_ts))
        if button is not None:
            message_ts, element = button
            print(f"@oncall clicks [ {element['text']['text']} ] and confirms\n", file=out)
            send(block_actions_body(ONCALL, CHANNEL, message_ts, thread_ts, element))
            if element.get("style") == "danger":  # high risk: a second, different person confirms
                slack.wait_for(
                    lambda: len(slack.thread(CHANNEL, thread_ts)) > len(shown), timeout=10
                )
                show(thread_ts)
                print(f"@teammate clicks [ {element['text']['text']} ] and confirms\n", file=out)
                send(block_actions_body(TEAMMATE, CHANNEL, message_ts, thread_ts, element))
            work()
            show(thread_ts)
        timeline_button = _first_button(slack.thread(CHANNEL, thread_ts), "omni_timeline")
        if timeline_button is not None:
            message_ts, element = timeline_button
            print(f"@oncall clicks [ {element['text']['text']} ]\n", file=out)
            send(block_actions_body(ONCALL, CHANNEL, message_ts, thread_ts, element))
            posted = slack.wait_for(
                lambda: [f for f in slack.files if str(f["name"]).startswith("timeline-")],
                timeout=10,
            )
            show(thread_ts)
            print(posted[-1]["data"].decode(), file=out)
        print(
            f"Done in {time.monotonic() - started:.1f}s. Slack calls made: {len(slack.calls)} "
            f"({', '.join(sorted({c.method for c in slack.calls}))}).",
            file=out,
        )
        set_runtime(None)
    return 0


def _first_button(
    messages: list[dict[str, Any]], action: str = "remediate:"
) -> tuple[str, dict[str, Any]] | None:
    for message in messages:
        for block in message.get("blocks") or []:
            if block.get("type") == "actions":
                for element in block.get("elements", []):
                    if str(element.get("action_id", "")).startswith(action):
                        return str(message["ts"]), dict(element)
    return None
