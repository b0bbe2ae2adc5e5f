"""Every fault in the guide, single and compound: the verdict names the root cause first and
offers its fix, through `diagnose all` and through the alarm a real stack would fire."""

from __future__ import annotations

import pytest

from bench.expectations import EXPECTED
from commands.settings import Settings
from sandbox import Stack, discover

from .scenario_runs import judge, names


def test_every_scenario_has_an_expected_outcome() -> None:
    assert set(EXPECTED) == set(discover())


@pytest.mark.parametrize("scenario", names("compound"))
def test_compound_fault(settings: Settings, stack: Stack, scenario: str) -> None:
    assert judge(settings, stack, scenario) == []


@pytest.mark.parametrize(
    "scenario", [n for n in names("fault") if n.startswith(("alb", "db", "aurora"))]
)
def test_fault_of_the_load_balancer_or_the_database(
    settings: Settings, stack: Stack, scenario: str
) -> None:
    assert judge(settings, stack, scenario) == []
