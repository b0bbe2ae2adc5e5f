"""A whole-run secret scanner (a pytest plugin): no secret value ever reaches Slack, a log line
or a CLI's output, in any test.

What counts as a secret: every ``SecretStr`` built during the run (bot tokens, signing secrets,
app tokens, PagerDuty secrets, the password inside a Redis URL), plus values registered with
:func:`register` (the sandbox's database password, the PostgreSQL DSN's password).

Where it looks: every request the fake Slack receives (bodies, not the Authorization header
where the token belongs), every record of Omni's own loggers (``commands``, ``bot``,
``workers``, ``omni``) from INFO up (the processes' own level), the captured stdout / stderr / log of every test, what
``capsys.readouterr()`` hands a test, the output of every ``subprocess.run`` and the log file of
every ``omni serve`` / ``omni worker`` process the tests start.  A leak fails the run and names
the test, the source and the secret's first characters.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MIN_LEN = 8
OMNI_LOGGERS = ("commands", "bot", "workers", "omni")
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@]*:([^@/]+)@", re.I)


@dataclass
class Scanner:
    secrets: set[str] = field(default_factory=set)
    scanned: int = 0
    leaks: list[tuple[str, str, str]] = field(default_factory=list)  # (test, source, secret)
    current: str = "(collection)"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, *values: str | None) -> None:
        for value in values:
            if not value:
                continue
            m = _URL_PASSWORD.match(value)
            if m:
                value = m.group(1)
            elif "://" in value:
                continue  # a URL without a password is not a secret
            if len(value) >= MIN_LEN:
                with self._lock:
                    self.secrets.add(value)

    def scan(self, source: str, text: Any) -> list[str]:
        if text is None:
            return []
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        elif not isinstance(text, str):
            text = json.dumps(text, default=str)
        with self._lock:
            self.scanned += 1
            found = [s for s in self.secrets if s in text]
            for secret in found:
                self.leaks.append((self.current, source, secret[:6] + "…"))
        return found


SCANNER = Scanner()


def register(*values: str | None) -> None:
    """Declare values the run must never show (beyond every ``SecretStr``)."""
    SCANNER.register(*values)


class _LogScan(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:
            text = str(record.msg)
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + str(record.exc_info[1])
        SCANNER.scan(f"log {record.name}", text)


_HANDLER = _LogScan(level=logging.DEBUG)


def _install() -> None:
    from pydantic import SecretStr

    from sandbox.fakeslack import FakeSlack

    original_init = SecretStr.__init__

    def init(self: SecretStr, secret_value: str) -> None:
        original_init(self, secret_value)
        SCANNER.register(str(secret_value))

    SecretStr.__init__ = init  # type: ignore[method-assign]

    original_answer = FakeSlack._answer

    def answer(self: FakeSlack, method: str, body: dict[str, Any], token: str | None) -> Any:
        SCANNER.scan(f"slack {method}", body)
        return original_answer(self, method, body, token)

    FakeSlack._answer = answer  # type: ignore[method-assign]

    original_run = subprocess.run

    def run(*args: Any, **kwargs: Any) -> Any:
        result = original_run(*args, **kwargs)
        SCANNER.scan("subprocess stdout", result.stdout)
        SCANNER.scan("subprocess stderr", result.stderr)
        return result

    subprocess.run = run  # type: ignore[assignment]

    original_readouterr = pytest.CaptureFixture.readouterr

    def readouterr(self: Any) -> Any:
        captured = original_readouterr(self)
        SCANNER.scan("capsys out", captured.out)
        SCANNER.scan("capsys err", captured.err)
        return captured

    pytest.CaptureFixture.readouterr = readouterr  # type: ignore[method-assign]

    from sandbox import DB_PASSWORD

    register(DB_PASSWORD)


def scan_file(path: Path, source: str) -> None:
    if path.exists():
        SCANNER.scan(source, path.read_bytes())


def _attach_log_handler() -> None:
    for name in OMNI_LOGGERS:
        logger = logging.getLogger(name)
        if _HANDLER not in logger.handlers:
            logger.addHandler(_HANDLER)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)  # what the processes log in production


def pytest_configure(config: pytest.Config) -> None:
    _install()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    SCANNER.current = item.nodeid
    _attach_log_handler()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for title, content in report.sections:
        SCANNER.scan(title.lower(), content)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    secrets, scanned, leaks = _TOTALS["secrets"], _TOTALS["scanned"], _TOTALS["leaks"]
    terminalreporter.write_line(
        f"secret scan: {secrets} secret values, {scanned} texts scanned "
        f"(Slack calls, Omni's log records, CLI and process output), {len(leaks)} leaks"
    )
    for test, source, secret in leaks[:50]:
        terminalreporter.write_line(f"  LEAK in {test}: {source} shows {secret}", red=True)


# totals over this process and, under pytest-xdist, every worker's
_TOTALS: dict[str, Any] = {"secrets": 0, "scanned": 0, "leaks": []}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _TOTALS["secrets"] += len(SCANNER.secrets)
    _TOTALS["scanned"] += SCANNER.scanned
    _TOTALS["leaks"] += SCANNER.leaks
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the figures to the controller
        workeroutput["secret_scan"] = json.dumps(
            {"secrets": len(SCANNER.secrets), "scanned": SCANNER.scanned, "leaks": SCANNER.leaks}
        )
    if _TOTALS["leaks"] and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    raw = getattr(node, "workeroutput", {}).get("secret_scan")
    if raw:
        doc = json.loads(raw)
        _TOTALS["secrets"] = max(_TOTALS["secrets"], doc["secrets"])
        _TOTALS["scanned"] += doc["scanned"]
        _TOTALS["leaks"] += [tuple(leak) for leak in doc["leaks"]]


def leaks_in(texts: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """For the scanner's own test: a fresh scanner over ``texts``."""
    scanner = Scanner()
    scanner.register(*secrets)
    return [s for text in texts for s in scanner.scan("test", text)]
