"""``python -m bench.accuracy`` (and ``make bench``): is the verdict right, and how soon?

Every sandbox scenario (single faults, compound faults, benign-noise controls) is met the ways a
responder meets it, against moto with 100 ms added to every AWS call by a proxy (``--latency``):

- **the alarm path**: the alarm a real stack fires for the fault (its ``alarm``), routed to its
  runbooks as the bot routes it, run with what leads to them, then analysed — what the worker
  does before it edits the alarm's first reply into the verdict;
- **``/omni diagnose AREA``**: the scenario's area, followed upstream (faults without an alarm
  are found this way);
- **``diagnose all``**: every runbook.

For each: is the root cause named first (top-1), is its fix offered first, and on the controls
how many checks fail (must be 0) or warn.  *Time to the verdict* is the alarm path's wall time
from the first AWS call to the analysis, in a warm worker (clients built, as ``omni worker``
builds them at start); posting it is one Slack call on top.  Writes ``docs/accuracy.md``.

The answer sheet is :mod:`bench.expectations`, kept outside the sandbox so the faults stay
honest; ``tests/test_scenarios*.py`` hold every scenario to it on every test run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from commands.alarm import Alarm
from commands.analysis import Analysis, analyse
from commands.models import Report, Status

from .expectations import EXPECTED, Expect

REPO = Path(__file__).resolve().parent.parent


def alarm_for(cloudwatch: Any, alarm_name: str) -> Alarm:
    """The alarm as the bot reads it from its notification: name, state, metric."""
    found = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
    return Alarm(
        source="cloudwatch",
        name=found["AlarmName"],
        state="ALARM",
        namespace=found.get("Namespace"),
        metric=found.get("MetricName"),
    )


@dataclass
class Verdict:
    path: str  # "alarm" | "diagnose AREA" | "diagnose all"
    root: str | None
    fixes: list[str]
    fails: list[str]
    warns: list[str]
    errors: list[str]
    seconds: float
    named: list[str] = field(default_factory=list)  # who the root cause's changes name
    anyone: list[str] = field(default_factory=list)  # who any finding's changes name

    @classmethod
    def of(cls, path: str, reports: list[Report], analysis: Analysis, seconds: float) -> Verdict:
        findings = [f for r in reports for f in r.findings]
        return cls(
            path=path,
            root=analysis.root.check if analysis.root else None,
            fixes=[o.remediation.id for o in analysis.root_fixes],
            fails=sorted(f.check for f in findings if f.status is Status.FAIL),
            warns=sorted(f.check for f in findings if f.status is Status.WARN),
            errors=sorted(f.check for f in findings if f.status is Status.ERROR),
            seconds=seconds,
            named=sorted(
                {str(c.get("who")) for c in (analysis.root.changes if analysis.root else [])}
            ),
            anyone=sorted({str(c.get("who")) for f in findings for c in f.changes}),
        )

    def top1(self, expect: Expect) -> bool:
        return self.root == expect.root

    def who_named(self, expect: Expect) -> bool | None:
        """The recorded change, and who made it, on the verdict (None: nothing was changed)."""
        if expect.changed_by is None:
            return None
        return expect.changed_by in self.named

    def fix_offered(self, expect: Expect) -> bool | None:
        if expect.fix is None:
            return None
        return bool(self.fixes) and self.fixes[0] == expect.fix


@dataclass
class Row:
    scenario: str
    kind: str
    expect: Expect
    verdicts: list[Verdict] = field(default_factory=list)


def _run(
    ctx_of: Any, names: list[str], *, follow: bool, expand: bool, also: tuple[str, ...]
) -> Any:
    from commands.runner import run_runbooks

    ctx = ctx_of()
    started = time.perf_counter()
    reports = run_runbooks(names, ctx, follow=follow, expand=expand, also=also)
    analysis = analyse(reports)
    return reports, analysis, time.perf_counter() - started


def evaluate(latency_s: float = 0.1, repeats: int = 3) -> tuple[list[Row], list[float]]:
    """Every scenario through every path that applies; the alarm path ``repeats`` times."""
    import boto3
    import requests
    from moto.server import ThreadedMotoServer

    from commands.aws import ClientPool
    from commands.changes import forget as forget_changes
    from commands.names import Names
    from commands.registry import runbook_names
    from commands.routing import route
    from commands.runner import make_context
    from commands.settings import Settings
    from sandbox import apply_scenario, discover, seed
    from workers.runtime import warm_services

    from .latency_proxy import LatencyProxy

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address[:2]
    moto_url = f"http://{host}:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    settings = Settings(region="us-east-1")
    names = Names.from_settings(settings)
    rows: list[Row] = []
    alarm_times: list[float] = []
    try:
        with LatencyProxy(moto_url, latency_s) as proxy:
            os.environ["AWS_ENDPOINT_URL"] = proxy.url
            checks_pool = ClientPool(boto3.session.Session(), max_attempts=2)
            checks_pool.warm(warm_services(), settings.region)  # a warm worker
            os.environ["AWS_ENDPOINT_URL"] = moto_url
            seed_pool = ClientPool(boto3.session.Session())
            for name, scenario in sorted(discover().items()):
                requests.post(f"{moto_url}/moto-api/reset", timeout=30)
                forget_changes()  # a new world: no CloudTrail read of the last one
                stack = seed(seed_pool, names, settings.region)
                apply_scenario(name, stack)
                env = settings.model_copy(update={"terraform_state": stack.extra["state_url"]})

                def ctx_of(env: Settings = env, outputs: dict[str, Any] = stack.outputs) -> Any:
                    return make_context(env, checks_pool, outputs=outputs)

                row = Row(name, scenario.kind, EXPECTED[name])
                if scenario.alarm:
                    alarm = alarm_for(
                        stack.client("cloudwatch"), f"{names.alarm_prefix}{scenario.alarm}"
                    )
                    for _ in range(repeats):
                        reports, analysis, s = _run(
                            ctx_of,
                            route(alarm),
                            follow=True,
                            expand=False,
                            also=("alarms.in_alarm", "changes.recent"),
                        )
                        alarm_times.append(s)
                    row.verdicts.append(Verdict.of("alarm", reports, analysis, s))
                if scenario.area != "all":
                    reports, analysis, s = _run(
                        ctx_of,
                        [scenario.area],
                        follow=True,
                        expand=True,
                        also=("changes.recent",),
                    )
                    row.verdicts.append(
                        Verdict.of(f"diagnose {scenario.area}", reports, analysis, s)
                    )
                reports, analysis, s = _run(
                    ctx_of, runbook_names(), follow=False, expand=False, also=()
                )
                row.verdicts.append(Verdict.of("diagnose all", reports, analysis, s))
                rows.append(row)
                print(f"{name}: " + ", ".join(f"{v.path} → {v.root}" for v in row.verdicts))
    finally:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        server.stop()
    return rows, alarm_times


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def _share(hits: list[bool]) -> str:
    return f"{sum(hits)}/{len(hits)} ({100 * sum(hits) / max(len(hits), 1):.0f} %)"


def report(rows: list[Row], alarm_times: list[float], latency_s: float) -> str:
    faults = [r for r in rows if r.kind == "fault"]
    compound = [r for r in rows if r.kind == "compound"]
    controls = [r for r in rows if r.kind == "control"]

    def all_paths(group: list[Row]) -> list[bool]:
        return [v.top1(r.expect) for r in group for v in r.verdicts]

    def fixes(group: list[Row]) -> list[bool]:
        return [
            bool(v.fix_offered(r.expect))
            for r in group
            for v in r.verdicts
            if v.fix_offered(r.expect) is not None
        ]

    who = [
        bool(v.who_named(r.expect))
        for r in rows
        for v in r.verdicts
        if v.who_named(r.expect) is not None
    ]
    changed = sum(1 for r in rows if r.expect.changed_by is not None)
    control_named = sum(len(v.anyone) for r in controls for v in r.verdicts)
    control_fails = sum(len(v.fails) for r in controls for v in r.verdicts)
    control_warns = sum(len(v.warns) for r in controls for v in r.verdicts)
    lines = [
        "# Accuracy",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        f"- command: `python -m bench.accuracy` (in `make bench`); AWS is moto with "
        f"{latency_s * 1000:.0f} ms added to every call",
        "- how: see the docstring of `bench/accuracy.py`; the answer sheet is "
        "`bench/expectations.py`",
        "",
        "## Summary",
        "",
        "| | scenarios | root cause named first (top-1), every path | its fix offered first |",
        "|---|---|---|---|",
        f"| single faults | {len(faults)} | {_share(all_paths(faults))} | {_share(fixes(faults))} |",
        f"| compound faults | {len(compound)} | {_share(all_paths(compound))} | "
        f"{_share(fixes(compound))} |",
        "",
        f"Benign-noise controls: {len(controls)} scenarios, {control_fails} failing finding(s), "
        f"{control_warns} warning(s) across every path (a warning is the expected one where the "
        "answer sheet names it: a deployment's SIGTERM-ignoring task, a live apply's lock, a few "
        "client errors).",
        "",
        f"What changed, and who: in the {changed} scenarios where a recorded write caused the "
        f"fault, the verdict names that change and its principal on {_share(who)} paths; the "
        f"controls' unrelated writes (a tag, a log export, a scheduled scale-in) are tied to a "
        f"finding {control_named} time(s).",
        "",
        "| time to the verdict, alarm path | p50 | p99 | max | samples | target |",
        "|---|---|---|---|---|---|",
        f"| at {latency_s * 1000:.0f} ms per AWS call | "
        f"{statistics.median(alarm_times) * 1000:.0f} ms | {_pct(alarm_times, 99) * 1000:.0f} ms | "
        f"{max(alarm_times) * 1000:.0f} ms | {len(alarm_times)} | < 1 s |",
        "",
        "## Every scenario",
        "",
        "| scenario | kind | expected root cause | path | verdict | fix offered first | "
        "fail / warn | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for v in r.verdicts:
            ok = "✅" if v.top1(r.expect) else "❌"
            fix = v.fix_offered(r.expect)
            fix_cell = "—" if fix is None else ("✅ " if fix else "❌ ") + str(r.expect.fix)
            lines.append(
                f"| {r.scenario} | {r.kind} | {r.expect.root or '(none)'} | {v.path} | "
                f"{ok} {v.root or '(none)'} | {fix_cell} | {len(v.fails)} / {len(v.warns)} | "
                f"{v.seconds * 1000:.0f} ms |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added per AWS call")
    parser.add_argument("--repeats", type=int, default=3, help="alarm-path runs per scenario")
    parser.add_argument("--output", default=str(REPO / "docs" / "accuracy.md"))
    args = parser.parse_args()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    rows, alarm_times = evaluate(args.latency, args.repeats)
    text = report(rows, alarm_times, args.latency)
    Path(args.output).write_text(text)
    print(text)
    wrong = [
        (r.scenario, v.path, v.root)
        for r in rows
        for v in r.verdicts
        if not v.top1(r.expect) or (r.kind == "control" and v.fails)
    ]
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
