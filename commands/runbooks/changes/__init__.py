"""What changed (guide: "what was deployed or changed recently?"): the account's recent writes.

Not a layer of the stack: its one check never fails; the writes it reads are tied to the
failing checks of the run by :func:`commands.changes.tie`, which names who changed what and
offers the exact undo.  ``/omni diagnose changes`` lists them.
"""

from __future__ import annotations

from ...areas import area

AREA = area(
    "changes",
    title="Recent changes (CloudTrail, ECS deployments, RDS events)",
    services=("cloudtrail", "ecs", "rds"),
    module=__name__,
    layer=9,
)
