"""Benign noise: what a healthy production stack does every day, which must raise nothing."""

from __future__ import annotations

from ..stack import Stack
from . import scenario


@scenario("healthy", "Everything is fine (no fault).", area="all", kind="control")
def _healthy(stack: Stack) -> None:
    return None
