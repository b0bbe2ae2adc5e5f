"""Recording the IAM actions the runbooks call, for ``commands/recorded_actions.json``.

Every check is run over the healthy sandbox and each scenario (so every branch that calls AWS
is taken), without Terraform outputs too (so the resolvers' discovery calls are taken), plus
the graphs' metric reads and ``omni config check``; a botocore hook notes each call's IAM
action.  ``omni iam-policy --record`` writes the result; ``tests/test_iam.py`` fails when the
committed file differs from what this records.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

# botocore's signing names that differ from IAM's action prefixes
_SIGNING_TO_IAM = {"monitoring": "cloudwatch"}


def record_runbook_calls(project: str = "omnirapeutic") -> set[str]:
    """The IAM actions of every call the runbooks make over every sandbox scenario."""
    import boto3
    from moto import mock_aws

    from commands.aws import ClientPool
    from commands.names import Names
    from commands.registry import runbook_names
    from commands.runner import make_context, run_runbooks
    from commands.settings import Settings

    from .scenarios import apply_scenario, discover
    from .stack import seed

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "iam-recording")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "iam-recording")
    actions: set[str] = set()

    def record(model: Any, **_: Any) -> None:
        prefix = model.service_model.signing_name
        actions.add(f"{_SIGNING_TO_IAM.get(prefix, prefix)}:{model.name}")

    settings = Settings(project=project, region="us-east-1", db_diag_secret=None)
    # clients cost ~90 ms each to build: one pool for the seeding, one (recorded) for the checks,
    # reused over every scenario (moto intercepts clients built before its context too)
    seed_pool = ClientPool(boto3.session.Session(region_name="us-east-1"))
    session = boto3.session.Session(region_name="us-east-1")
    session.events.register("before-call", record)
    pool = ClientPool(session)
    for scenario in sorted(discover()):
        with mock_aws():
            stack = seed(seed_pool, Names.from_settings(settings), "us-east-1")
            apply_scenario(scenario, stack)
            s = settings.model_copy(update={"terraform_state": stack.extra["state_url"]})
            ctx = make_context(s, pool, outputs=stack.outputs)
            run_runbooks(runbook_names(), ctx)
            if scenario == "healthy":  # without Terraform outputs the resolvers discover resources
                run_runbooks(runbook_names(), make_context(settings, pool, outputs={}))
                _record_extras(settings, session, ctx)
    actions.add("s3:GetObject")  # Terraform outputs from a state object (s3://…)
    actions.add("secretsmanager:GetSecretValue")  # the SQL checks' secret
    return actions


def _record_extras(settings: Any, session: Any, ctx: Any) -> None:
    """What else the diagnostics role does: the graphs' metric reads, `omni config check`."""
    from commands import graphs, preflight
    from commands.registry import runbook_names

    end = datetime.now(UTC)
    for name in runbook_names():
        spec = graphs.runbook_graph(name, ctx)
        if spec is not None:
            graphs.fetch(ctx.aws, spec, end - timedelta(hours=1), end)
    preflight.check_environment(settings, settings.environment, session)
