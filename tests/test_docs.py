"""The documentation stays true: links resolve, every setting is documented, the README is short."""

from __future__ import annotations

import re

from pydantic import AliasChoices

from commands.settings import Settings

from .helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_readme_opens_with_the_two_commands_and_stays_short() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert [line.split()[:2] for line in first_block] == [["make", "demo"], ["make", "test"]]


def test_relative_links_resolve() -> None:
    broken = []
    for page in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} → {target}")
    assert not broken, broken


def test_every_setting_is_documented() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    missing = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names = (
            [a for a in alias.choices if isinstance(a, str) and a.isupper()]
            if isinstance(alias, AliasChoices)
            else [f"OMNI_{name.upper()}"]
        )
        if not any(f"`{n}`" in text for n in names):
            missing.append(names[0])
    assert not missing, missing


def test_every_fix_and_area_is_documented() -> None:
    from commands.fixes import catalogue
    from commands.registry import runbook_names

    fixes = (REPO / "docs" / "fixes.md").read_text()
    catalogued = {spec.id: spec.risk.value for spec in catalogue().values()}
    rows = dict(re.findall(r"^\| `([a-z0-9_.]+)` \| (low|medium|high) \|", fixes, re.M))
    assert rows == catalogued  # every fix, at its declared risk, and nothing that is not one
    readme = (REPO / "README.md").read_text()
    assert all(f"`{area}`" in readme for area in runbook_names())
