"""``make bench``: Omni's figures on this machine, side by side in one run.

1. ``diagnose db`` with 0 and 100 ms added to every AWS call (a proxy in front of moto),
   against the sum of its calls (what running them one after another costs) and against its
   critical path (the longest chain of dependent calls × the added latency).
2. Ack latency of signed ``/omni diagnose db`` slash commands at the real ``omni serve``.

Writes ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DB_CRITICAL_PATH_CALLS = 2  # describe_db_clusters → describe_security_groups


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_runbook(iterations: int) -> list[dict[str, Any]]:
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from commands.aws import ClientPool
    from commands.names import Names
    from commands.runner import make_context, run_runbook
    from commands.sandbox import seed
    from commands.settings import Settings

    from .latency_proxy import LatencyProxy

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address[:2]  # type: ignore[union-attr]
    moto_url = f"http://{host}:{port}"
    settings = Settings()
    os.environ["AWS_ENDPOINT_URL"] = moto_url
    stack = seed(ClientPool(boto3.session.Session()), Names.from_settings(settings), "us-east-1")
    rows = []
    for delay in (0.0, 0.1):
        with LatencyProxy(moto_url, delay) as proxy:
            os.environ["AWS_ENDPOINT_URL"] = proxy.url
            pool = ClientPool(boto3.session.Session())
            pool.warm(["rds", "ec2", "ecs", "secretsmanager", "cloudwatch"], "us-east-1")
            times, calls = [], 0
            for i in range(iterations + 1):
                before = proxy.requests
                started = time.perf_counter()
                report = run_runbook("db", make_context(settings, pool, outputs=stack.outputs))
                elapsed = time.perf_counter() - started
                if i:  # the first run warms connections
                    times.append(elapsed)
                    calls = proxy.requests - before
                assert not report.failed, report
            median = statistics.median(times)
            rows.append(
                {
                    "delay_ms": int(delay * 1000),
                    "calls": calls,
                    "median_s": median,
                    "sequential_s": calls * delay,
                    "critical_s": DB_CRITICAL_PATH_CALLS * delay,
                }
            )
    server.stop()
    os.environ.pop("AWS_ENDPOINT_URL", None)
    return rows


def bench_ack(requests_n: int, concurrency: int) -> dict[str, Any]:
    import requests
    from redis import Redis

    from bot.fakeslack import FakeSlack
    from bot.signing import signed_headers, slash_command_body

    secret = "bench-signing-secret-1234567890"
    redis_url = "redis://127.0.0.1:6379/14"
    Redis.from_url(redis_url).flushdb()
    with FakeSlack() as slack, tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "OMNI_"))}
        env.update(
            OMNI_HTTP_WORKERS=os.environ.get("BENCH_HTTP_WORKERS", "2"),
            REDIS_URL=redis_url,
            OMNI_SLACK_API_URL=slack.url,
            SLACK_BOT_TOKEN="xoxb-bench",
            SLACK_SIGNING_SECRET=secret,
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        log = open(Path(tmp) / "serve.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "commands.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    if requests.get(url + "/healthz", timeout=1).ok:
                        break
                except requests.RequestException:
                    time.sleep(0.1)
            response_url = slack.url.replace("/api/", "/response/1")

            def one(i: int) -> tuple[float, int]:
                body = slash_command_body(
                    "diagnose db", response_url=response_url, trigger_id=f"bench.{i}"
                )
                headers = signed_headers(secret, body)
                started = time.perf_counter()
                r = requests.post(url + "/slack/events", data=body, headers=headers, timeout=10)
                return (time.perf_counter() - started) * 1000, r.status_code

            for i in range(5):
                one(-i)  # warm-up
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                results = list(pool.map(one, range(requests_n)))
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()
    Redis.from_url(redis_url).flushdb()
    latencies = [ms for ms, _ in results]
    return {
        "requests": requests_n,
        "concurrency": concurrency,
        "p50_ms": statistics.median(latencies),
        "p99_ms": _pct(latencies, 99),
        "errors": sum(1 for _, code in results if code != 200),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--ack-requests", type=int, default=200)
    parser.add_argument("--output", default=str(REPO / "docs" / "benchmarks.md"))
    args = parser.parse_args()

    runbook = bench_runbook(args.iterations)
    acks = [bench_ack(args.ack_requests, c) for c in (1, 10, 50)]

    lines = [
        "# Benchmarks",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}",
        "- command: `make bench` (`python -m bench.run`)",
        "",
        "## `diagnose db`: Omni against the sum of its calls and against its critical path",
        "",
        "AWS is a moto server; a proxy in front of it adds the stated delay to every call. "
        "'Sequential' is the calls made one after another (what the guide's steps cost at that "
        f"latency); the critical path is the longest chain of dependent calls ({DB_CRITICAL_PATH_CALLS}) × the delay.",
        "",
        "| added latency | AWS calls | Omni (median) | sequential | speed-up | critical path | Omni / critical path |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runbook:
        speedup = f"{r['sequential_s'] / r['median_s']:.1f}×" if r["sequential_s"] else "–"
        ratio = f"{r['median_s'] / r['critical_s']:.2f}" if r["critical_s"] else "–"
        lines.append(
            f"| {r['delay_ms']} ms | {r['calls']} | {r['median_s'] * 1000:.0f} ms | {r['sequential_s'] * 1000:.0f} ms | {speedup} | {r['critical_s'] * 1000:.0f} ms | {ratio} |"
        )
    lines += [
        "",
        "## Ack latency of `/omni diagnose db` at the real `omni serve`",
        "",
        "Signed slash commands over HTTP to `omni serve` (gunicorn, 2 processes × 16 threads); the "
        "ack only verifies, parses and answers — the root post and the enqueue happen after it.",
        "",
        "| requests | concurrency | p50 | p99 | errors |",
        "|---|---|---|---|---|",
    ]
    for a in acks:
        lines.append(
            f"| {a['requests']} | {a['concurrency']} | {a['p50_ms']:.1f} ms | {a['p99_ms']:.1f} ms | {a['errors']} |"
        )
    text = "\n".join(lines) + "\n"
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
