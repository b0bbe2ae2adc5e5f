"""The shape of the code, enforced: contracts between packages, no import cycle, settings in one
place, and a worker that runs only Omni's own jobs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis
from rq import Callback, Queue
from rq.serializers import JSONSerializer

from bot.jobs import CALLBACKS, DIAGNOSTICS_QUEUE, JOB_FUNCTIONS
from workers.worker import OmniWorker

from .helpers import REPO


def test_import_contracts_hold() -> None:
    """`make lint` runs lint-imports too; here it also proves the contracts are loaded."""
    out = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 kept, 0 broken" in out.stdout


def _graph() -> dict[str, set[str]]:
    import grimp

    graph = grimp.build_graph("commands", exclude_type_checking_imports=True)
    return {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}


def test_commands_has_no_import_cycle() -> None:
    """Cycles make import order matter and modules impossible to load alone.  Packages that
    discover their own submodules (runbooks, fixes, sources) are their children's parents,
    which grimp counts as an edge; those are not cycles of ours."""
    edges = _graph()
    found: list[list[str]] = []

    def visit(node: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own modules
            if nxt in on_path:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in done:
                on_path.add(nxt)
                visit(nxt, [*path, nxt], on_path, done)
                on_path.discard(nxt)
        done.add(node)

    done: set[str] = set()
    for module in sorted(edges):
        if module not in done:
            visit(module, [module], {module}, done)
    assert not found, found[:5]


def test_every_setting_is_read_through_settings() -> None:
    """No OMNI_* variable read behind Settings' back (OMNI_CONFIG names the file it reads)."""
    pattern = re.compile(r"""environ(?:\.get)?\(?\[?["'](OMNI_\w+|PORT|REDIS_URL|SLACK_\w+)""")
    offenders = []
    for package in ("commands", "bot", "workers"):
        for path in (REPO / package).rglob("*.py"):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                m = pattern.search(line)
                if m and m.group(1) != "OMNI_CONFIG":
                    offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_settings_read_omni_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from commands.settings import Settings

    for name, value in {
        "OMNI_SLOW_QUERY_S": "12",
        "OMNI_HEALTH_PORT": "9100",
        "OMNI_LOG_FORMAT": "text",
        "OMNI_HTTP_WORKERS": "3",
        "PORT": "4000",
        "AWS_DEFAULT_REGION": "eu-west-2",
    }.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    assert (s.slow_query_s, s.health_port, s.log_format, s.http_workers, s.port, s.region) == (
        12.0,
        9100,
        "text",
        3,
        4000,
        "eu-west-2",
    )


@pytest.mark.parametrize(
    ("func", "callback"),
    [
        ("tests.helpers.forbidden_side_effect", None),
        ("workers.jobs.run_diagnosis", "tests.helpers.forbidden_side_effect"),
    ],
)
def test_the_worker_runs_only_omnis_jobs(
    redis_url: str,
    tmp_path: Path,
    func: str,
    callback: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Anyone who can write to Redis can enqueue a job naming any importable function; the
    worker, which holds the AWS credentials, refuses it before importing anything for it."""
    assert (func not in JOB_FUNCTIONS) or (callback not in CALLBACKS)
    redis = Redis.from_url(redis_url)
    queue = Queue(DIAGNOSTICS_QUEUE, connection=redis, serializer=JSONSerializer)
    marker = tmp_path / "ran"
    kwargs = {"path": str(marker)} if callback is None else {"job": {"area": "db"}}
    job = queue.enqueue(func, kwargs=kwargs, on_failure=Callback(callback) if callback else None)
    with caplog.at_level("WARNING", logger="omni.audit"):
        OmniWorker([queue], connection=redis, serializer=JSONSerializer).work(
            burst=True, logging_level="WARNING"
        )
    job.refresh()
    assert job.get_status() == "failed"
    assert "not one of Omni's" in str(job.latest_result().exc_string)  # type: ignore[union-attr]
    assert not marker.exists()
    assert any("refused job" in r.getMessage() for r in caplog.records)
