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
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


CHAIN_DELAY_S = 0.25  # large enough that moto's own time does not round into an extra call


def _chains(settings: Any, pool: Any, outputs: dict[str, Any]) -> dict[str, int]:
    """Each check's chain of dependent calls: the check alone, cold memo, 250 ms per call."""
    from concurrent.futures import ThreadPoolExecutor as Pool

    from commands.registry import all_checks
    from commands.runner import make_context, run_check
    from workers.runtime import warm_services

    pool.warm(warm_services(), settings.region)  # building a client is not an AWS call
    chains = {}
    for spec in all_checks().values():
        ctx = make_context(settings, pool, outputs=outputs)
        ctx._inner = Pool(max_workers=16)
        started = time.perf_counter()
        run_check(spec, ctx)
        chains[spec.id] = round((time.perf_counter() - started) / CHAIN_DELAY_S)
        ctx._inner.shutdown()
    return chains


def _critical_path(area: str, chains: dict[str, int]) -> tuple[int, str]:
    from commands.registry import checks_for, runbook_names

    areas = runbook_names() if area == "all" else [area]
    ids = {s.id for a in areas for s in checks_for(a)}
    which = max(sorted(ids), key=lambda c: chains[c])
    return chains[which], which


def _awscli() -> str | None:
    """The aws CLI (v1, from PyPI) in its own virtual environment (its botocore pin would clash
    with ours), in the user's cache rather than the repository: a third-party tree inside the
    clone would be read as the project's own files."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = cache / "omni-bench" / "awscli"
    aws = venv / "bin" / "aws"
    if not aws.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "awscli"], check=True)
    return str(aws) if aws.exists() else None


def _run_guide(aws: str, area: str, stack: Any, endpoint: str) -> tuple[float, int]:
    from .guide import commands

    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_PAGER": "",
    }
    task_arn = "None"
    started = time.perf_counter()
    cmds = commands(area, stack.names, stack.outputs, stack.extra)
    for argv in cmds:
        argv = [task_arn if a == "$TASK_ARN" else a for a in argv]
        out = subprocess.run(
            [aws, *argv, "--endpoint-url", endpoint],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if "--desired-status" in argv and "text" in argv:
            task_arn = out.stdout.strip() or "None"
    return time.perf_counter() - started, len(cmds)


def _cli_env(endpoint: str, outputs_file: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OMNI_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        OMNI_TERRAFORM_OUTPUTS=outputs_file,
    )
    return env


def _median_run(argv: list[str], env: dict[str, str], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, cwd=REPO, capture_output=True, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _run_omni_cli(area: str, stack: Any, endpoint: str) -> float:
    """A fresh ``omni diagnose AREA`` process, start to exit (median of 3)."""
    import json

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({k: {"value": v} for k, v in stack.outputs.items()}, fh)
    try:
        return _median_run(
            [sys.executable, "-m", "commands.cli", "diagnose", area, "--format", "json"],
            _cli_env(endpoint, fh.name),
        )
    finally:
        os.unlink(fh.name)


def _fresh_floor(service: str, endpoint: str) -> float:
    """The least a fresh Python process must do before its first AWS call: start, import
    botocore, build one client (median of 3).  Plus the critical path, no fresh process — the
    guide's ``aws`` commands or ``omni diagnose`` — can finish sooner."""
    code = (
        "import botocore.session; "
        f"botocore.session.get_session().create_client({service!r}, region_name='us-east-1')"
    )
    return _median_run([sys.executable, "-c", code], _cli_env(endpoint, ""))


def _compile_bytecode() -> None:
    """Omni's modules as an installed image has them: compiled (``PYTHONDONTWRITEBYTECODE`` in
    the benchmark's environment would otherwise have every fresh process compile them)."""
    import compileall

    for package in ("commands", "bot", "workers"):
        compileall.compile_dir(str(REPO / package), quiet=1)


def _omni(args: list[str], env: dict[str, str], stdout: Any = subprocess.DEVNULL) -> Any:
    """An ``omni`` process (serve, worker) of this checkout."""
    return subprocess.Popen(
        [sys.executable, "-m", "commands.cli", *args],
        env=env,
        cwd=REPO,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not subprocess.DEVNULL else subprocess.DEVNULL,
    )


def _serve_args(port: int) -> list[str]:
    return ["serve", "--host", "127.0.0.1", "--port", str(port)]


def _aws_stand_in(
    delays: tuple[float, ...],
) -> tuple[subprocess.Popen[str], str, dict[float, str], dict[str, Any]]:
    """moto, the latency proxies and the seeded stack in their own process
    (bench/aws_server.py); the stack's outputs and handles come back as data."""
    import json

    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.aws_server", *map(str, delays)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    proxies = {float(d): url for d, url in info["proxies"].items()}
    return proc, info["moto"], proxies, {"outputs": info["outputs"], "extra": info["extra"]}


def bench_runbook(
    iterations: int, areas: tuple[str, ...] = ("db", "ecs", "alb", "all")
) -> list[dict[str, Any]]:

    import boto3

    from commands.aws import ClientPool
    from commands.names import Names
    from commands.registry import runbook_names, services_for
    from commands.runner import make_context, run_runbooks
    from commands.settings import Settings
    from workers.runtime import warm_services

    stand_in, _, proxies, seeded = _aws_stand_in((0.0, 0.1, CHAIN_DELAY_S))
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    settings = Settings()

    def pool_for(url: str) -> ClientPool:
        os.environ["AWS_ENDPOINT_URL"] = url  # botocore binds the endpoint when it builds a client
        pool = ClientPool(boto3.session.Session())
        pool.warm(warm_services(), "us-east-1")
        return pool

    stack = SimpleNamespace(names=Names.from_settings(settings), **seeded)
    pools = {delay: pool_for(url) for delay, url in proxies.items()}
    rows = []
    chains: dict[str, int] = {}
    awscli = _awscli()
    try:
        for area in areas:
            names = runbook_names() if area == "all" else [area]
            row: dict[str, Any] = {"area": area}
            for delay in (0.0, 0.1):
                times, calls = [], 0
                for i in range(iterations + 1):
                    ctx = make_context(settings, pools[delay], outputs=stack.outputs)
                    started = time.perf_counter()
                    reports = run_runbooks(names, ctx)
                    elapsed = time.perf_counter() - started
                    if i:  # the first run warms connections
                        times.append(elapsed)
                        calls = len(ctx.aws.calls)
                    assert not any(r.failed for r in reports), [
                        f.title for r in reports for f in r.findings if f.status.value == "fail"
                    ]
                row[f"median_{int(delay * 1000)}ms_s"] = statistics.median(times)
                row["calls"] = calls
            if area in ("db", "ecs", "alb") and awscli:
                _compile_bytecode()
                row["floor_start_s"] = _fresh_floor(services_for([area])[0], proxies[0.1])
                for delay in (0.0, 0.1):
                    row[f"guide_{int(delay * 1000)}ms_s"], row["guide_calls"] = _run_guide(
                        awscli, area, stack, proxies[delay]
                    )
                    row[f"cli_{int(delay * 1000)}ms_s"] = _run_omni_cli(area, stack, proxies[delay])
            if not chains:
                chains = _chains(settings, pools[CHAIN_DELAY_S], stack.outputs)
            row["chain"], row["chain_check"] = _critical_path(area, chains)
            row["clients_built"] = pools[0.1].created
            rows.append(row)
    finally:
        stand_in.terminate()
        stand_in.wait(timeout=15)
        os.environ.pop("AWS_ENDPOINT_URL", None)
    return rows


def _load(
    url: str, secret: str, response_url: str, requests_n: int, concurrency: int, out: Any
) -> None:
    """The load generator, in its own process so its threads do not share the GIL with anything."""
    import requests

    from sandbox.requests import signed_headers, slash_command_body

    session = requests.Session()
    session.mount(
        "http://",
        requests.adapters.HTTPAdapter(pool_connections=concurrency, pool_maxsize=concurrency),
    )
    # unique requests, as Slack sends them: an identical signed body twice is a replay (401)
    bodies = [
        slash_command_body(
            "diagnose db", response_url=response_url, trigger_id=f"bench.{uuid.uuid4().hex}"
        )
        for _ in range(requests_n + 5)
    ]

    def one(body: str) -> tuple[float, int]:
        headers = signed_headers(secret, body)
        started = time.perf_counter()
        r = session.post(url + "/slack/events", data=body, headers=headers, timeout=10)
        return (time.perf_counter() - started) * 1000, r.status_code

    for body in bodies[:5]:
        one(body)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        out.put(list(pool.map(one, bodies[5:])))


_WRK_LUA = r"""
local reqs, n = {}, 0
setup = function(thread)
  thread:set("tid", n)
  n = n + 1
end
init = function(args)
  local k, f = 0, io.open(args[1], "r")
  for line in f:lines() do
    if k % tonumber(args[2]) == tid then
      local ts, sig, body = line:match("^(%d+)\t([^\t]+)\t(.*)$")
      table.insert(reqs, wrk.format("POST", "/slack/events", {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Slack-Request-Timestamp"] = ts,
        ["X-Slack-Signature"] = sig,
      }, body))
    end
    k = k + 1
  end
  f:close()
  i = 0
end
request = function()
  i = i + 1
  return reqs[i]
end
"""


def _wrk_ack(
    url: str,
    secret: str,
    response_url: str,
    concurrency: int,
    seconds: int,
    baseline: bool = False,
) -> dict[str, Any] | None:
    """Closed-loop load from wrk (C, a second process): ``concurrency`` requests always in
    flight for ``seconds``, every one a unique signed ``/omni diagnose db`` (``baseline``:
    ``GET /healthz``)."""
    import re
    import shutil

    from sandbox.requests import signed_headers, slash_command_body

    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    threads = 2
    with tempfile.TemporaryDirectory() as tmp:
        data, script = Path(tmp) / "requests.tsv", Path(tmp) / "ack.lua"
        with open(data, "w") as fh:
            for _ in range(0 if baseline else seconds * 1500):
                body = slash_command_body(
                    "diagnose db", response_url=response_url, trigger_id=f"wrk.{uuid.uuid4().hex}"
                )
                h = signed_headers(secret, body)
                fh.write(f"{h['X-Slack-Request-Timestamp']}\t{h['X-Slack-Signature']}\t{body}\n")
        script.write_text(_WRK_LUA)
        load = ["-s", str(script), url, "--", str(data), str(threads)]
        out = subprocess.run(
            [
                wrk,
                "-t",
                str(threads),
                "-c",
                str(concurrency),
                "-d",
                f"{seconds}s",
                "--latency",
                *([url + "/healthz"] if baseline else load),
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            raise RuntimeError(f"cannot read wrk's {label}% from:\n{out}")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "requests": total,
        "concurrency": concurrency,
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
        "errors": (int(bad.group(1)) if bad else 0)
        + (sum(map(int, errors.groups())) if errors else 0),
        "generator": f"wrk, {concurrency} connections for {seconds} s",
    }


def _bursts(
    url: str,
    secret: str,
    response_url: str,
    size: int,
    bursts: int,
    out: Any,
    baseline: bool = False,
) -> None:
    """In its own process: ``bursts`` times, ``size`` signed commands sent at the same moment
    (``baseline``: ``GET /healthz`` instead, what the server does for no work at all)."""
    from urllib.parse import urlparse

    from sandbox.requests import signed_headers, slash_command_body

    from .burst import burst, http_request

    target = urlparse(url)
    host, port = str(target.hostname), int(target.port or 80)
    results: list[tuple[float, int]] = []
    for _ in range(bursts):
        requests = []
        for _ in range(size):
            if baseline:
                requests.append(http_request(host, port, "/healthz", {}, "", method="GET"))
                continue
            body = slash_command_body(
                "diagnose db", response_url=response_url, trigger_id=f"burst.{uuid.uuid4().hex}"
            )
            requests.append(
                http_request(host, port, "/slack/events", signed_headers(secret, body), body)
            )
        results += burst(host, port, requests)
        time.sleep(1.0)  # the work after each ack drains before the next burst
    out.put(results)


def bench_ack(requests_n: int, concurrencies: tuple[int, ...]) -> tuple[list[dict[str, Any]], int]:
    import multiprocessing

    from redis import Redis

    from sandbox.fakeslack import FakeSlack

    secret = "bench-signing-secret-1234567890"
    redis_url = "redis://127.0.0.1:6379/12"
    Redis.from_url(redis_url).flushdb()
    rows = []
    with FakeSlack() as slack, tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SLACK_", "OMNI_"))}
        env.update(
            OMNI_HTTP_WORKERS=os.environ.get("BENCH_HTTP_WORKERS", "2"),
            OMNI_HTTP_THREADS=os.environ.get("BENCH_HTTP_THREADS", "16"),
            REDIS_URL=redis_url,
            OMNI_SLACK_API_URL=slack.url,
            SLACK_BOT_TOKEN="xoxb-bench",
            SLACK_SIGNING_SECRET=secret,
            OMNI_POST_INTERVAL_MS="0",
            OMNI_COMMAND_RATE_PER_MIN="0",  # the ack's pace is measured, not the per-user limit
            OMNI_LOG_FORMAT="text",
        )
        port = _free_port()
        log = open(Path(tmp) / "serve.log", "wb")  # noqa: SIM115
        proc = _omni(_serve_args(port), env, stdout=log)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_http(url + "/healthz")
            response_url = slack.url.replace("/api/", "/response/1")
            spawn = multiprocessing.get_context("spawn")
            for concurrency in concurrencies:
                if concurrency == 1:
                    continue
                for baseline in (False, True):
                    queue_b: Any = spawn.Queue()
                    bursts = max(1, 500 // concurrency)
                    gen_b = spawn.Process(
                        target=_bursts,
                        args=(url, secret, response_url, concurrency, bursts, queue_b, baseline),
                    )
                    gen_b.start()
                    results_b = queue_b.get(timeout=300)
                    gen_b.join()
                    latencies_b = [ms for ms, _ in results_b]
                    rows.append(
                        {
                            "mode": "burst",
                            "baseline": baseline,
                            "requests": len(results_b),
                            "concurrency": concurrency,
                            "p50_ms": statistics.median(latencies_b),
                            "p99_ms": _pct(latencies_b, 99),
                            "errors": sum(1 for _, code in results_b if code != 200),
                            "generator": f"{bursts} bursts of {concurrency} at once "
                            "(bench/burst.py)",
                        }
                    )
            for concurrency in concurrencies:
                if concurrency > 1:
                    found = False
                    for baseline in (False, True):
                        row = _wrk_ack(url, secret, response_url, concurrency, 3, baseline)
                        if row is not None:
                            rows.append({"mode": "sustained", "baseline": baseline, **row})
                            found = True
                    if found:
                        continue
                queue: Any = multiprocessing.get_context("spawn").Queue()
                gen = multiprocessing.get_context("spawn").Process(
                    target=_load,
                    args=(
                        url,
                        secret,
                        slack.url.replace("/api/", "/response/1"),
                        requests_n,
                        concurrency,
                        queue,
                    ),
                )
                gen.start()
                results = queue.get(timeout=300)
                gen.join()
                latencies = [ms for ms, _ in results]
                rows.append(
                    {
                        "mode": "sequential" if concurrency == 1 else "sustained",
                        "baseline": False,
                        "requests": requests_n,
                        "concurrency": concurrency,
                        "p50_ms": statistics.median(latencies),
                        "p99_ms": _pct(latencies, 99),
                        "errors": sum(1 for _, code in results if code != 200),
                        "generator": "python, one thread per connection",
                    }
                )
            rss = _peak_rss_tree(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            log.close()
    Redis.from_url(redis_url).flushdb()
    order = {"sequential": 0, "burst": 1, "sustained": 2}
    rows.sort(key=lambda r: (order[r["mode"]], r["concurrency"], r["baseline"]))
    return rows, rss


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


def _peak_rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _peak_rss_tree(pid: int) -> int:
    """The largest peak RSS (KiB) among a process and its children (gunicorn's processes)."""
    return max([_peak_rss_kib(pid), *[_peak_rss_kib(c) for c in _children(pid)]])


def _free_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


def _wait_http(url: str) -> None:
    import requests

    for _ in range(300):
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(url)


def bench_alarms(samples: int) -> dict[str, Any]:
    """Alarm event → first threaded reply → verdict, at 100 ms per AWS call; and a storm."""
    import json
    import logging

    import requests
    from redis import Redis
    from rq import Queue
    from rq.serializers import JSONSerializer

    from bot.queue import DIAGNOSTICS_QUEUE
    from sandbox import apply_scenario
    from sandbox.fakeslack import FakeSlack
    from sandbox.requests import chatbot_alarm_event, signed_headers

    from .latency_proxy import LatencyProxy

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    secret = "bench-alarm-secret"
    redis_url = "redis://127.0.0.1:6379/12"
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    server, moto_url, stack = _moto_with_stack()
    os.environ["AWS_ENDPOINT_URL"] = moto_url
    apply_scenario("alb-targets-unhealthy", stack)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    result: dict[str, Any] = {}
    with (
        FakeSlack() as slack,
        LatencyProxy(moto_url, 0.1) as proxy,
        tempfile.TemporaryDirectory() as tmp,
    ):
        outputs = Path(tmp) / "outputs.json"
        outputs.write_text(json.dumps({k: {"value": v} for k, v in stack.outputs.items()}))
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "SLACK_", "OMNI_", "REDIS_"))
        }
        common = {
            "REDIS_URL": redis_url,
            "OMNI_SLACK_API_URL": slack.url,
            "SLACK_BOT_TOKEN": "xoxb-bench",
            "SLACK_SIGNING_SECRET": secret,
            "OMNI_ALARM_DEDUP_S": "1",
            "OMNI_TRIAGE_WINDOW_S": "1",
            "OMNI_POST_INTERVAL_MS": "1000",
        }
        worker_env = {
            **base,
            **common,
            "AWS_ENDPOINT_URL": proxy.url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "OMNI_TERRAFORM_OUTPUTS": str(outputs),
        }
        http_port = _free_port()
        procs = [
            _omni(["worker"], worker_env),
            _omni(_serve_args(http_port), {**base, **common}),
        ]
        try:
            url = f"http://127.0.0.1:{http_port}/slack/events"
            _wait_http(f"http://127.0.0.1:{http_port}/healthz")
            name = f"{stack.names.alarm_prefix}alb-unhealthy-hosts"
            diagnostics = Queue(DIAGNOSTICS_QUEUE, connection=redis, serializer=JSONSerializer)
            first, full = [], []
            for i in range(samples + 1):
                channel, ts = f"CBENCH{i}", f"1700001{i:03d}.000100"
                body = json.dumps(chatbot_alarm_event(name, "ALARM", ts, channel, f"EvBench{i}"))
                time.sleep(1.1)  # past the dedup and triage windows
                # an idle worker: the previous sample's job posts its details at Slack's pace
                # (one a second) and its graph after the verdict; an alarm arriving meanwhile
                # waits for it (more alarms at once want more worker replicas, see Scale-out)
                idle_by = time.monotonic() + 30
                while time.monotonic() < idle_by and (
                    diagnostics.count or diagnostics.started_job_registry.count
                ):
                    time.sleep(0.02)
                started = time.perf_counter()
                requests.post(
                    url,
                    data=body,
                    headers=signed_headers(secret, body, content_type="application/json"),
                    timeout=10,
                )
                slack.wait_for(
                    lambda c=channel, t=ts: [
                        x for x in slack.find("chat.postMessage", channel=c) if x.thread_ts == t
                    ],
                    timeout=20,
                    interval=0.005,
                )
                t_first = time.perf_counter() - started
                slack.wait_for(
                    lambda c=channel: [
                        x
                        for x in slack.find("chat.update", channel=c)
                        if "Triage of" in x.all_text()
                    ],
                    timeout=30,
                    interval=0.01,
                )
                t_full = time.perf_counter() - started
                if i:
                    first.append(t_first * 1000)
                    full.append(t_full * 1000)
            result.update(
                first_p50=statistics.median(first),
                first_p99=_pct(first, 99),
                full_p50=statistics.median(full),
                full_p99=_pct(full, 99),
                samples=samples,
            )

            # storm: 1,000 events, 100 distinct alarms, as fast as 20 senders go, at a bot with
            # the default dedup and triage windows (the samples above shortened them to 1 s so
            # that each sample is triaged afresh)
            procs[1].terminate()
            procs[1].wait(timeout=15)
            http_port = _free_port()
            storm_env = {
                k: v
                for k, v in {**base, **common}.items()
                if k not in ("OMNI_ALARM_DEDUP_S", "OMNI_TRIAGE_WINDOW_S")
            }
            procs[1] = _omni(_serve_args(http_port), storm_env)
            url = f"http://127.0.0.1:{http_port}/slack/events"
            _wait_http(f"http://127.0.0.1:{http_port}/healthz")
            redis.flushdb()
            before = int(redis.info("memory")["used_memory"])
            kinds = [
                "api-5xx-high",
                "ecs-cpu-high",
                "rds-cpu-high",
                "waf-blocked-high",
                "nat-errors",
            ]
            names = [f"omnirapeutic-production-{kinds[i % 5]}-{i}" for i in range(100)]
            bodies = [
                json.dumps(
                    chatbot_alarm_event(
                        names[i % 100], "ALARM", f"17100{i:05d}.000100", "CSTORM", f"EvStorm{i}"
                    )
                )
                for i in range(1000)
            ]
            session = requests.Session()
            session.mount(
                "http://", requests.adapters.HTTPAdapter(pool_connections=20, pool_maxsize=20)
            )
            calls_before = len(slack.calls)
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=20) as pool:
                codes = list(
                    pool.map(
                        lambda b: (
                            session.post(
                                url,
                                data=b,
                                headers=signed_headers(secret, b, content_type="application/json"),
                                timeout=20,
                            ).status_code
                        ),
                        bodies,
                    )
                )
            sent_s = time.perf_counter() - started
            deadline = time.monotonic() + 60
            storm_names = set(names)

            def absorbed_now() -> int:
                seen = {k.decode().rsplit(":", 1)[-1] for k in redis.scan_iter("omni:alarm-seen:*")}
                return len(seen & storm_names)

            while time.monotonic() < deadline and absorbed_now() < 100:
                time.sleep(0.1)
            absorbed = absorbed_now()
            # omni:run:{env}:{runbook}:{window}: one key per runbook run claimed in the storm
            runs = sum(1 for _ in redis.scan_iter("omni:run:*"))
            time.sleep(20)  # let the triage results arrive
            posts = [
                c
                for c in slack.calls[calls_before:]
                if c.method == "chat.postMessage" and c.channel == "CSTORM"
            ]
            span = (max(c.at for c in posts) - min(c.at for c in posts)) if len(posts) > 1 else 1.0
            result.update(
                storm_sent_s=sent_s,
                storm_ok=codes.count(200),
                storm_absorbed=absorbed,
                storm_runs=runs,
                storm_posts=len(posts),
                # N posts a second apart span N - 1 seconds: the rate is intervals over time
                storm_posts_per_s=(len(posts) - 1) / max(span, 1.0),
                storm_redis_growth_kib=(int(redis.info("memory")["used_memory"]) - before) / 1024,
            )
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=15)
    server.stop()
    redis.flushdb()
    return result


def _moto_with_stack() -> tuple[Any, str, Any]:
    """A fresh ThreadedMotoServer (backends are per process: reset) with the guide's stack."""
    import logging

    import boto3
    import requests
    from moto.server import ThreadedMotoServer

    from commands.aws import ClientPool
    from commands.names import Names
    from commands.settings import Settings
    from sandbox import seed

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server._server.server_address[:2]
    moto_url = f"http://{host}:{port}"
    requests.post(f"{moto_url}/moto-api/reset", timeout=10)
    os.environ.update(
        AWS_ENDPOINT_URL=moto_url,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    stack = seed(ClientPool(boto3.session.Session()), Names.from_settings(Settings()), "us-east-1")
    os.environ.pop("AWS_ENDPOINT_URL", None)
    return server, moto_url, stack


def bench_scale_out(jobs: int = 40) -> dict[str, Any]:
    """``jobs`` queued diagnoses at 100 ms per AWS call, on 1 and on 4 worker processes."""
    import json
    import logging

    from redis import Redis
    from rq import Queue, Worker
    from rq.serializers import JSONSerializer

    from bot.queue import DIAGNOSTICS_QUEUE, RUN_DIAGNOSIS
    from sandbox.fakeslack import FakeSlack

    from .latency_proxy import LatencyProxy

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    redis_url = "redis://127.0.0.1:6379/12"
    redis = Redis.from_url(redis_url)
    server, moto_url, stack = _moto_with_stack()
    result: dict[str, Any] = {"jobs": jobs}
    with (
        FakeSlack() as slack,
        LatencyProxy(moto_url, 0.1) as proxy,
        tempfile.TemporaryDirectory() as tmp,
    ):
        outputs = Path(tmp) / "outputs.json"
        outputs.write_text(json.dumps({k: {"value": v} for k, v in stack.outputs.items()}))
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "SLACK_", "OMNI_", "REDIS_"))
        }
        env.update(
            REDIS_URL=redis_url,
            OMNI_SLACK_API_URL=slack.url,
            SLACK_BOT_TOKEN="xoxb-bench",
            OMNI_POST_INTERVAL_MS="0",
            OMNI_HEALTH_PORT="0",
            AWS_ENDPOINT_URL=proxy.url,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_DEFAULT_REGION="us-east-1",
            OMNI_TERRAFORM_OUTPUTS=str(outputs),
            OMNI_LOG_FORMAT="text",
            OMNI_GRAPHS="false",  # the same work as before graphs existed: the runbook and its posts
        )
        for workers in (1, 4):
            redis.flushdb()
            before = len(slack.find("chat.update"))
            queue = Queue(DIAGNOSTICS_QUEUE, connection=redis, serializer=JSONSerializer)
            procs = [_omni(["worker"], env) for _ in range(workers)]
            # throughput of running workers: each has imported, warmed its clients and
            # registered with RQ before the first job is queued (start-up is not throughput)
            slack.wait_for(
                lambda n=workers: len(Worker.all(connection=redis)) == n, timeout=120, interval=0.1
            )
            started = time.perf_counter()
            for i in range(jobs):
                queue.enqueue(
                    RUN_DIAGNOSIS,
                    kwargs={
                        "job": {
                            "kind": "diagnose",
                            "area": "db",
                            "environment": "production",
                            "channel": f"CS{i}",
                            "thread_ts": f"1.{i}",
                            "user": "U",
                        }
                    },
                )
            try:
                slack.wait_for(
                    lambda b=before: len(slack.find("chat.update")) - b >= jobs,
                    timeout=300,
                    interval=0.02,
                )
                result[f"workers_{workers}_s"] = time.perf_counter() - started
                result[f"worker_rss_{workers}_kib"] = max(_peak_rss_kib(p.pid) for p in procs)
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(timeout=30)
    server.stop()
    redis.flushdb()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--ack-requests", type=int, default=200)
    parser.add_argument("--alarm-samples", type=int, default=20)
    parser.add_argument("--output", default=str(REPO / "docs" / "benchmarks.md"))
    parser.add_argument(
        "--only",
        choices=("scale", "ack", "alarms", "runbook"),
        help="run one section and print it (docs/benchmarks.md is not rewritten)",
    )
    args = parser.parse_args()
    if args.only == "scale":
        print(bench_scale_out())
        return 0
    if args.only == "runbook":
        for row in bench_runbook(args.iterations):
            print(row)
        return 0
    if args.only == "alarms":
        print(bench_alarms(args.alarm_samples))
        return 0
    if args.only == "ack":
        print(bench_ack(args.ack_requests, (1, 50, 200)))
        return 0

    runbook = bench_runbook(args.iterations)
    acks, serve_rss = bench_ack(args.ack_requests, (1, 50, 200))
    alarms = bench_alarms(args.alarm_samples)
    scale = bench_scale_out()

    lines = [
        "# Benchmarks",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}",
        "- command: `make bench` (`python -m bench.run`)",
        "",
        "## Runbooks: Omni against the sum of their calls and against their critical path",
        "",
        "AWS is a moto server behind a proxy that adds 100 ms to every call, both in their own process (`bench/aws_server.py`).  *Sequential* is the "
        "same calls made one after another (what running the guide's steps in order costs at that "
        "latency). The *critical path* is the longest chain of dependent calls, found by running "
        "each check alone on a cold memo (at 250 ms per call, so moto's own time does not count as "
        "a call), × 100 ms; the runbook cannot finish sooner.",
        "",
        "| runbook | AWS calls | Omni, 0 ms added | Omni, 100 ms added | sequential at 100 ms | speed-up | critical path (check) | Omni / critical path |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runbook:
        seq = r["calls"] * 0.1
        crit = r["chain"] * 0.1
        lines.append(
            f"| {r['area']} | {r['calls']} | {r['median_0ms_s'] * 1000:.0f} ms | {r['median_100ms_s'] * 1000:.0f} ms | "
            f"{seq * 1000:.0f} ms | {seq / r['median_100ms_s']:.1f}× | {crit * 1000:.0f} ms ({r['chain_check']}) | {r['median_100ms_s'] / crit:.2f} |"
        )
    lines.append("")
    lines.append(
        f"boto3 clients built in the whole run: {runbook[-1]['clients_built']} (one per service, reused by every run)."
    )
    guide_rows = [r for r in runbook if "guide_100ms_s" in r]
    if guide_rows:
        lines += [
            "",
            "## The guide's steps by hand against Omni",
            "",
            "The guide's literal `aws` CLI commands for each area (awscli v1 from PyPI, in its own "
            "virtual environment), run one after another against the same moto server and proxy. "
            "*Omni in the worker* is the runbook as a Slack user gets it (warm process, shared "
            "clients); *`omni diagnose` CLI* is a fresh process, start to exit (interpreter, imports, "
            "clients; median of 3). *Fresh-process floor* is the least any fresh Python process "
            "needs: start, import botocore and build one client (measured, median of 3), plus the "
            "critical path; *guide / floor* is therefore the best ratio a fresh process could show "
            "against the guide's commands, each of which is a fresh process too.",
            "",
            "| area | guide commands | guide, 0 ms | guide, 100 ms | `omni diagnose` CLI, 100 ms | Omni in the worker, 100 ms | guide / worker | guide / CLI | fresh-process floor | guide / floor |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in guide_rows:
            floor = r["floor_start_s"] + r["chain"] * 0.1
            lines.append(
                f"| {r['area']} | {r['guide_calls']} | {r['guide_0ms_s']:.1f} s | {r['guide_100ms_s']:.1f} s | {r['cli_100ms_s']:.2f} s | "
                f"{r['median_100ms_s'] * 1000:.0f} ms | {r['guide_100ms_s'] / r['median_100ms_s']:.0f}× | {r['guide_100ms_s'] / r['cli_100ms_s']:.1f}× | "
                f"{floor:.2f} s | {r['guide_100ms_s'] / floor:.1f}× |"
            )
    lines += [
        "",
        "## Ack latency of `/omni diagnose db` at the real `omni serve`",
        "",
        "Signed slash commands over HTTP to `omni serve` (gunicorn, 2 processes × 16 threads). The "
        "ack verifies the signature, checks for a replay, parses, enqueues the job (one Redis round "
        "trip) and answers; nothing else runs in the bot's process (the worker posts the thread "
        "root). *Burst*: N commands written at the same moment from one thread over N open "
        "connections (`bench/burst.py`, its own process), 1 s apart — what a channel sends when "
        "everyone types `/omni` at once. *Sustained*: N requests always in flight for 3 s from "
        "`wrk` (C, its own process) — the server saturated. *Sequential*: one at a time. Every "
        "request is a distinct signed command (a repeated one would be refused as a replay). "
        "*Baseline*: the same load, in the same run, on `GET /healthz` (gunicorn and Flask, no "
        "work): what this host gives a request that does nothing at that moment; *× baseline* "
        "is the command's p99 over it.",
        "",
        "| load | endpoint | requests | concurrency | p50 | p99 | × baseline | errors | generator |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    base = {(a["mode"], a["concurrency"]): a for a in acks if a["baseline"]}
    for a in acks:
        ref = base.get((a["mode"], a["concurrency"]))
        ratio = f"{a['p99_ms'] / ref['p99_ms']:.1f}" if ref and not a["baseline"] else ""
        endpoint = "baseline `/healthz`" if a["baseline"] else "`/omni diagnose db`"
        lines.append(
            f"| {a['mode']} | {endpoint} | {a['requests']} | {a['concurrency']} | {a['p50_ms']:.1f} ms | {a['p99_ms']:.1f} ms | {ratio} | {a['errors']} | {a['generator']} |"
        )
    lines += [
        "",
        "## Alarm post → thread",
        "",
        "A signed AWS Chatbot alarm event at the real `omni serve`, with `omni worker` running the "
        "routed runbooks (alb, ecs) and what leads to them against moto with 100 ms added to every "
        f"AWS call; one alarm at a time on an idle worker, {alarms['samples']} samples. *First "
        "reply* is the 'Triaging…' post in the alarm's thread; *verdict* is that reply edited into "
        "the root cause and its fix button, before any detail is posted (the details then follow "
        "at one post a second, and hold the worker meanwhile: alarms that arrive together want "
        "more worker replicas, see Scale-out).",
        "",
        "| | p50 | p99 | target |",
        "|---|---|---|---|",
        f"| alarm → first threaded reply | {alarms['first_p50']:.0f} ms | {alarms['first_p99']:.0f} ms | < 1 s |",
        f"| alarm → verdict | {alarms['full_p50']:.0f} ms | {alarms['full_p99']:.0f} ms | < 1 s |",
        "",
        "Accuracy of that verdict on every sandbox scenario: [accuracy.md](accuracy.md).",
        "",
        "## Alarm storm",
        "",
        "1,000 alarm events (100 distinct alarms, each posted ten times) from 20 concurrent senders.",
        "",
        "| sent in | answered 200 | distinct alarms absorbed | triage runs | posts in the channel | posts per second | Redis memory growth |",
        "|---|---|---|---|---|---|---|",
        f"| {alarms['storm_sent_s']:.1f} s | {alarms['storm_ok']} / 1000 | {alarms['storm_absorbed']} / 100 | {alarms['storm_runs']} (one per runbook) | "
        f"{alarms['storm_posts']} | {alarms['storm_posts_per_s']:.2f} | {alarms['storm_redis_growth_kib']:.0f} KiB |",
    ]
    lines += [
        "",
        "## Scale-out",
        "",
        f"{scale['jobs']} `diagnose db` jobs queued at once, 100 ms added to every AWS call, on 1 and on 4 running `omni worker` processes (each started, warmed and registered with RQ before the jobs are queued: start-up is not throughput); two cores, moto and the latency proxy in the benchmark's process, graphs off (a graph adds about 0.1 s of matplotlib CPU per job, after the findings).",
        "",
        "| 1 worker | 4 workers | throughput ratio | target |",
        "|---|---|---|---|",
        f"| {scale['workers_1_s']:.1f} s | {scale['workers_4_s']:.1f} s | {scale['workers_1_s'] / scale['workers_4_s']:.2f}× | ≥ 3× |",
        "",
        "## Memory",
        "",
        "| process | peak RSS | target |",
        "|---|---|---|",
        f"| `omni serve` (largest gunicorn process, after the ack loads above) | {serve_rss / 1024:.0f} MiB | ≤ 150 MB |",
        f"| `omni worker` (largest of 4, after the scale-out run) | {scale['worker_rss_4_kib'] / 1024:.0f} MiB | ≤ 250 MB |",
    ]
    text = "\n".join(lines) + "\n"
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
