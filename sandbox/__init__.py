"""The sandbox: development only, never imported by ``commands``, ``bot`` or ``workers``.

What ``omni demo``, the tests and the benchmarks stand on: the guide's stack seeded in moto
(:mod:`sandbox.stack`), its faults and benign-noise controls (:mod:`sandbox.scenarios`, one
module per area), what moto lacks (:mod:`sandbox.moto_ext`, :mod:`sandbox.cloudtrail`), a fake
Slack Web API that records every call (:mod:`sandbox.fakeslack`), requests signed as Slack
signs them (:mod:`sandbox.requests`), the demo itself (:mod:`sandbox.demo`) and the recording
of the runbooks' AWS calls for the IAM policy (:mod:`sandbox.iam_record`).  It needs the
``demo`` extra (moto, fakeredis).
"""

from __future__ import annotations

from .scenarios import Scenario, apply_scenario, discover
from .stack import DB_PASSWORD, DB_USER, Stack, seed

__all__ = ["DB_PASSWORD", "DB_USER", "Scenario", "Stack", "apply_scenario", "discover", "seed"]
