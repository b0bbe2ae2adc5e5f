"""The repository stands alone, and the image's plain install (no extras) works.

`.ci/run` does the real thing (a clone in an empty folder, then `pip install .` in a new venv);
these tests keep the same promises checked on every `make test`: nothing reads outside the
repository, and without the demo extra the product modules import, `omni iam-policy` writes
the committed policies, and `omni demo` names the extra in one line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .helpers import REPO, clean_env

# moto and fakeredis made unimportable, as in `pip install .`
_WITHOUT_EXTRAS = "import sys; sys.modules['moto'] = None; sys.modules['fakeredis'] = None; "


def _omni_without_extras(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    code = _WITHOUT_EXTRAS + f"from commands.cli import main; sys.exit(main({list(args)!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(PYTHONPATH=str(REPO)),
        cwd=cwd,
        timeout=120,
    )


def test_nothing_in_the_repository_reads_outside_it() -> None:
    pattern = re.compile(r"""(\.\./shared|["']shared["']\s*/|parents\[2\])""")
    offenders = []
    for path in REPO.rglob("*"):
        if (
            path.suffix not in {".py", ".sh", ".toml", ".cfg"}
            and path.name not in {"Makefile", "run"}
        ) or any(
            part.startswith(".") and part not in {".ci"} for part in path.parts[len(REPO.parts) :]
        ):
            continue
        if path == Path(__file__):
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert not offenders, offenders


def test_ci_clones_into_an_empty_folder_and_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert "git clone" in ci and "mktemp -d" in ci
    assert "make test" in ci and "make test" in readme.split("\n\n", 2)[1]


def test_product_modules_import_without_the_demo_extra() -> None:
    code = _WITHOUT_EXTRAS + (
        "import importlib, pkgutil\n"
        "for pkg in ('commands', 'bot', 'workers'):\n"
        "    mod = importlib.import_module(pkg)\n"
        "    for info in pkgutil.walk_packages(mod.__path__, pkg + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=clean_env(PYTHONPATH=str(REPO)),
        cwd=REPO,
        timeout=120,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_iam_policy_without_the_emulator_writes_the_committed_policies(tmp_path: Path) -> None:
    out = _omni_without_extras("iam-policy", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    for name in ("omni-diagnostics-policy.json", "omni-fixes-policy.json"):
        assert (tmp_path / name).read_text() == (REPO / "deploy" / "iam" / name).read_text()


def test_demo_without_the_extra_names_it_in_one_line() -> None:
    out = _omni_without_extras("demo")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "pip install 'omni[demo]'" in lines[0] and "Traceback" not in out.stderr


def test_recording_again_without_the_emulator_names_the_extra(tmp_path: Path) -> None:
    out = _omni_without_extras("iam-policy", "--record", "--out", str(tmp_path))
    assert out.returncode != 0
    assert out.stderr.strip().splitlines() == [
        line for line in out.stderr.strip().splitlines() if "pip install 'omni[demo]'" in line
    ]
