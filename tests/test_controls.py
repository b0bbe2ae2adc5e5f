"""Benign noise a healthy stack makes every day raises nothing: no failing check, no verdict."""

from __future__ import annotations

import pytest

from commands.registry import runbook_names
from commands.settings import Settings
from sandbox import Stack

from .scenario_runs import declared_services, names, run_scenario


@pytest.mark.parametrize("scenario", names("control"))
def test_control_raises_nothing(settings: Settings, stack: Stack, scenario: str) -> None:
    run_scenario(settings, stack, scenario)


def test_runbooks_call_only_the_services_they_declare(settings: Settings, stack: Stack) -> None:
    declared_services(settings, stack.outputs, runbook_names())
    declared_services(settings, {}, runbook_names())  # resources found without outputs
