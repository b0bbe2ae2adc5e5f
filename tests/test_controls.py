"""Benign noise a healthy stack makes every day raises nothing: no failing check, no verdict."""

from __future__ import annotations

import pytest

from commands.registry import runbook_names
from commands.settings import Settings
from sandbox import Stack

from .scenario_runs import judge, names, undeclared_services


@pytest.mark.parametrize("scenario", names("control"))
def test_control_raises_nothing(settings: Settings, stack: Stack, scenario: str) -> None:
    assert judge(settings, stack, scenario) == []


def test_runbooks_call_only_the_services_they_declare(settings: Settings, stack: Stack) -> None:
    assert undeclared_services(settings, stack.outputs, runbook_names()) == {}
    # resources found without outputs
    assert undeclared_services(settings, {}, runbook_names()) == {}
