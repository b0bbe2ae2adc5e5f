"""The ``omni`` command line (DESIGN.md §4).

``commands`` is the composition root's home: ``serve``, ``worker`` and ``demo`` are loaded by
dotted path only when asked for, so ``omni diagnose`` never imports Slack, Redis or RQ.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from .errors import ConfigError, OmniError, UnknownRunbook

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANNOT_RUN = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="omni", description="Omni: the troubleshooting guide, run for you."
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    d = sub.add_parser("diagnose", help="run a runbook against the configured AWS account")
    from . import areas

    d.add_argument("area", metavar="AREA", help="one of: " + ", ".join([*areas.names(), "all"]))
    d.add_argument(
        "--env", dest="environment", help="environment (default: the configured default)"
    )
    d.add_argument("--format", choices=("text", "json"), default="text")

    s = sub.add_parser("serve", help="the Slack app (HTTP, or Socket Mode with SLACK_APP_TOKEN)")
    s.add_argument("--port", type=int, help="default: PORT, else 3000")
    s.add_argument("--host", help="default: OMNI_HOST, else 0.0.0.0")
    s.add_argument("--workers", type=int, help="gunicorn processes (OMNI_HTTP_WORKERS, 2)")
    s.add_argument("--threads", type=int, help="threads a process (OMNI_HTTP_THREADS, 16)")

    w = sub.add_parser("worker", help="an RQ worker on Omni's queues, with the scheduler")
    w.add_argument("--burst", action="store_true", help="exit when the queues are empty")

    alarm = sub.add_parser("alarm", help="alarm tools")
    alarm_sub = alarm.add_subparsers(dest="alarm_cmd", required=True, metavar="SUBCOMMAND")
    explain = alarm_sub.add_parser(
        "explain", help="what Omni reads from an alarm payload, and where it routes it"
    )
    explain.add_argument(
        "file",
        metavar="FILE",
        help="SNS envelope, CloudWatch alarm JSON, Lambda event, Slack event, PagerDuty webhook ('-' for stdin)",
    )
    explain.add_argument("--format", choices=("text", "json"), default="text")

    audit = sub.add_parser("audit", help="the audit trail of proposals, clicks, approvals, fixes")
    audit.add_argument("--since", default="24h", help="how far back: 30m, 24h, 7d")
    audit.add_argument("--format", choices=("text", "json"), default="text")

    tl = sub.add_parser("timeline", help="an incident thread's timeline, for the postmortem")
    tl.add_argument("channel", metavar="CHANNEL", help="channel id, e.g. C0123ABCD")
    tl.add_argument("thread_ts", metavar="THREAD_TS", help="the thread root's ts")
    tl.add_argument("--format", choices=("md", "json"), default="md")

    iam = sub.add_parser(
        "iam-policy", help="write the least-privilege IAM policies generated from the registries"
    )
    iam.add_argument("--project", help="default: OMNI_PROJECT, else omnirapeutic")
    iam.add_argument("--out", default="deploy/iam")
    iam.add_argument(
        "--record",
        action="store_true",
        help="first record the runbooks' calls again over the sandbox (needs the demo extra)",
    )

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_cmd", required=True, metavar="SUBCOMMAND")
    check = config_sub.add_parser(
        "check",
        help="preflight: resolve each environment (roles, Terraform outputs, resources) "
        "and print what was found and what is missing",
    )
    check.add_argument("--format", choices=("text", "json"), default="text")

    sub.add_parser(
        "healthcheck", help="exit 0 when this container's bot or worker answers /healthz"
    )

    demo = sub.add_parser("demo", help="the whole loop on this laptop: no Slack, no AWS, no Redis")
    demo.add_argument("--scenario", default="outage-db-down")
    demo.add_argument("--list", action="store_true", help="list the scenarios")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.cmd == "diagnose":
            return _diagnose(args)
        if args.cmd == "alarm":
            return _explain(args)
        if args.cmd == "iam-policy":
            from . import iam

            if args.record:  # development: the sandbox records the calls again
                recorder = importlib.import_module("sandbox.iam_record")
                print(iam.write_recorded(recorder.record_runbook_calls()))
            from .settings import get_settings

            settings = get_settings()
            project = args.project or settings.project
            states = tuple(
                filter(
                    None,
                    (
                        settings.for_environment(n).state_location
                        for n in settings.environment_names()
                    ),
                )
            )
            log_groups = tuple(
                g
                for g in (
                    settings.for_environment(n).log_group for n in settings.environment_names()
                )
                if g and not g.startswith(f"/ecs/{project}-")
            )
            for path in iam.write_policies(args.out, project, states, log_groups):
                print(path)
            return EXIT_OK
        if args.cmd == "healthcheck":
            return _healthcheck()
        if args.cmd == "config":
            return _config_check(args)
        if args.cmd == "serve" and (args.workers or _http_workers()) > 1:
            # gunicorn's processes share metrics through files; set up before any metric exists
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", f"/tmp/omni-metrics-{os.getpid()}")
        if args.cmd in ("serve", "worker") and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            _prepare_metrics_dir(os.environ["PROMETHEUS_MULTIPROC_DIR"])
        module = {
            "serve": "bot.server",
            "worker": "workers.worker",
            "demo": "sandbox.demo",
            "audit": "bot.audit",
            "timeline": "bot.timeline",
        }[args.cmd]
        code: int = importlib.import_module(module).main(args)
        return code
    except ConfigError as exc:
        print(f"omni: configuration error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except OmniError as exc:
        print(f"omni: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        return 130
    except ModuleNotFoundError as exc:
        extra = _OPTIONAL.get((exc.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"omni {args.cmd}: needs {exc.name}, which is not installed: "
            f"pip install 'omni[{extra}]'",
            file=sys.stderr,
        )
        return EXIT_CANNOT_RUN


# Optional dependencies, by the extra that installs them: a command that needs one of them
# says what to install instead of a traceback.
_OPTIONAL = {"moto": "demo", "fakeredis": "demo", "sandbox": "demo"}


def _http_workers() -> int:
    from .settings import get_settings

    return get_settings().http_workers


def _prepare_metrics_dir(path: str) -> None:
    """Create (and empty) the metrics directory before any metric is created."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.unlink(os.path.join(path, name))


def _healthcheck() -> int:
    import urllib.request

    from .settings import get_settings

    settings = get_settings()
    for port in (settings.port, settings.health_port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
                if response.status == 200:
                    return EXIT_OK
        except OSError:
            continue
    print("omni: neither the bot nor the worker answers /healthz", file=sys.stderr)
    return EXIT_FAILED


def _config_check(args: argparse.Namespace) -> int:
    import json

    from . import preflight
    from .settings import get_settings

    settings = get_settings()
    lines = preflight.run(settings)
    if args.format == "json":
        print(json.dumps(preflight.as_json(lines), indent=2))
    else:
        channels = {n: e.channels for n, e in settings.environments.items()}
        sys.stdout.write(preflight.table(lines, settings.default_env, channels))
    return EXIT_FAILED if any(line.status == preflight.FAIL for line in lines) else EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from .routing import route
    from .settings import get_settings
    from .sources import parse_any, source_of

    try:
        raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        doc = json.loads(raw)
    except (OSError, ValueError) as exc:
        print(f"omni: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from .environments import for_alarm

    settings = get_settings()
    alarm = parse_any(doc)
    runbooks = route(alarm, settings.routes()) if alarm else []
    where = (
        for_alarm(
            settings,
            account=alarm.account,
            region=alarm.region,
            alarm_name=alarm.name,
            channel=None,
            pagerduty_services=(alarm.service, alarm.service_name),
        )
        if alarm
        else None
    )
    empty = dict.fromkeys(
        ("name", "state", "namespace", "metric", "dimensions", "region", "account")
    )
    result = {
        "source": alarm.source if alarm else source_of(doc),
        "alarm": alarm.explain() if alarm else empty,
        "runbooks": runbooks,
        "environment": where.name if where else None,
        "environment_reason": where.reason if where else None,
    }
    if args.format == "json":
        print(json.dumps(result, indent=2))
    else:
        if alarm is None:
            print("Not an alarm Omni can read.")
        else:
            for key, value in result["alarm"].items():  # type: ignore[union-attr]
                print(f"{key:>10}: {value if value is not None else '-'}")
            print(
                f"  runbooks: {', '.join(runbooks) or 'none (no routing rule matches: see OMNI_ALARM_ROUTES)'}"
            )
            if where is not None:
                print(f"       env: {where.name or 'unknown: not triaged'} ({where.reason})")
    return EXIT_OK if alarm else EXIT_FAILED


def _diagnose(args: argparse.Namespace) -> int:
    from .analysis import analyse
    from .aws import ClientPool
    from .credentials import Sessions
    from .output import to_json, to_text
    from .registry import runbook_names
    from .runner import make_context, run_runbooks
    from .settings import get_settings

    known = runbook_names()
    if args.area != "all" and args.area not in known:
        print(
            f"omni: unknown area {args.area!r}; choose one of: {', '.join([*known, 'all'])}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    settings = get_settings().for_environment(args.environment)
    session = Sessions().for_role(settings.role_arn, region=settings.region)
    pool = ClientPool(
        session, retry_mode=settings.aws_retry_mode, max_attempts=settings.aws_max_attempts
    )
    ctx = make_context(settings, pool)
    names = known if args.area == "all" else [args.area]
    try:  # one runbook: follow the cause upstream, as a triage does
        reports = run_runbooks(names, ctx, follow=args.area != "all", also=("changes.recent",))
    except UnknownRunbook as exc:
        print(f"omni: {exc}", file=sys.stderr)
        return EXIT_USAGE
    analysis = analyse(reports)
    single = args.area != "all"
    if args.format == "json":
        print(to_json(reports, analysis, single=single))
    else:
        sys.stdout.write(to_text(reports, analysis, colour=sys.stdout.isatty()))
    statuses = {f.status.value for r in reports for f in r.findings}
    if "error" in statuses and not statuses & {"ok", "warn", "fail"}:
        print(
            "omni: no check could run: check AWS credentials, region and endpoint", file=sys.stderr
        )
        return EXIT_CANNOT_RUN
    return EXIT_FAILED if any(r.failed for r in reports) else EXIT_OK


def run() -> NoReturn:
    """The ``omni`` executable: :func:`main`, then exit without the interpreter's teardown.

    Freeing every module and object one by one at exit cost a fresh ``omni diagnose`` 80-100 ms
    (measured, docs/benchmarks.md) for memory the OS takes back anyway.  Output is flushed and
    logging shut down first; an exception or ``SystemExit`` (serve's signal handling) leaves the
    normal way.
    """
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to write
            stream.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()
