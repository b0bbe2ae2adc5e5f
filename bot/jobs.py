"""The contracts between the bot and the workers: versioned job models and the job functions.

The bot never imports ``workers``: it enqueues a job by the dotted path of its function with
one keyword argument, ``job``, the JSON of one of these models.  The worker validates the job
against its model before doing anything (a job of a newer version than it knows fails with
that reason), and runs only the functions named in :data:`JOB_FUNCTIONS` (``omni worker``
refuses any other job before importing anything: Redis is not a door to the worker).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from commands.alarm import Alarm

DIAGNOSTICS_QUEUE = "omni-diagnostics"
FIXES_QUEUE = "omni-fixes"

RUN_DIAGNOSIS = "workers.jobs.run_diagnosis"
RUN_TRIAGE = "workers.jobs.run_triage"
RECEIVE_ALARM = "workers.jobs.receive_alarm"
REDELIVER = "workers.jobs.redeliver"
ON_FAILURE = "workers.jobs.on_job_failure"
RUN_FIX = "workers.fixes.run_fix"
RUN_FOLLOW_UP = "workers.fixes.run_follow_up"
RUN_VERIFY = "workers.fixes.run_verify"
ON_FIX_FAILURE = "workers.fixes.on_fix_failure"

# Every function a worker may run for a job (callbacks included), and nothing else.
JOB_FUNCTIONS = frozenset(
    {RUN_DIAGNOSIS, RUN_TRIAGE, RECEIVE_ALARM, REDELIVER, RUN_FIX, RUN_FOLLOW_UP, RUN_VERIFY}
)
CALLBACKS = frozenset({ON_FAILURE, ON_FIX_FAILURE})


class Job(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = 1

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class DiagnoseJob(Job):
    """``/omni diagnose AREA [ENV]``: run it, post the findings in a thread (the worker posts
    the thread root when ``thread_ts`` is None)."""

    kind: Literal["diagnose"] = "diagnose"
    area: str
    environment: str | None = None  # None: the default environment
    channel: str
    thread_ts: str | None = None
    user: str | None = None
    request_id: str | None = None
    response_url: str | None = None


class TriageJob(Job):
    """An alarm's triage: its runbooks (and what they lead to), in the alarm's thread."""

    kind: Literal["triage"] = "triage"
    alarm: Alarm
    runbooks: list[str]
    environment: str | None = None  # None: the default environment
    channel: str
    thread_ts: str
    reply_ts: str | None = None
    storm: str | None = None


class AlarmJob(Job):
    """An alarm received over HTTP (``/sns``, ``/pagerduty``): announce it, then triage it."""

    kind: Literal["alarm"] = "alarm"
    source: str
    alarm: Alarm
    headline: str
    delivery: str | None = None


class FixJob(Job):
    """Run an approved plan once."""

    kind: Literal["fix"] = "fix"
    plan_id: str
    approver: str


AnyJob = DiagnoseJob | TriageJob | AlarmJob | FixJob


def job_of(payload: dict[str, Any]) -> AnyJob:
    """The model of a job's payload, by its ``kind`` (raises pydantic's ValidationError)."""
    models: dict[str, type[AnyJob]] = {
        "diagnose": DiagnoseJob,
        "triage": TriageJob,
        "alarm": AlarmJob,
        "fix": FixJob,
    }
    kind = str(payload.get("kind"))
    if kind not in models:
        raise ValueError(f"unknown job kind {kind!r}")
    return models[kind].model_validate(payload)
