"""Every other single fault in the guide (test_scenarios has the rest): root cause and fix."""

from __future__ import annotations

import pytest

from commands.settings import Settings
from sandbox import Stack

from .scenario_runs import judge, names


@pytest.mark.parametrize(
    "scenario", [n for n in names("fault") if not n.startswith(("alb", "db", "aurora"))]
)
def test_fault(settings: Settings, stack: Stack, scenario: str) -> None:
    assert judge(settings, stack, scenario) == []
