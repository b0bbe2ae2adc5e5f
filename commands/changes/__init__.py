"""What changed, and who: the account's recent writes, tied to what broke.

Most incidents follow a change.  Each run reads the writes of the last
``OMNI_CHANGES_WINDOW_MIN`` minutes (:func:`recent`, shared by every caller of the run):

- CloudTrail ``lookup_events`` with ``ReadOnly=false`` (the one lookup attribute the API takes),
  every page (``MaxResults`` 50), paced under its two calls a second per account and region;
- the ECS service's deployments (a deployment is a change even where CloudTrail is not readable);
- RDS ``describe_events`` of the cluster (stops, starts, modifications).

After the checks, :func:`tie` gives each failing (or warning) finding the changes that touched
one of its resources *and* are of a kind that can cause it (:mod:`._kinds`: a revoked ingress
rule ↔ the security-group checks, ``UpdateService`` ↔ stopped tasks and rollouts, …): reads, and
writes to anything else, are never blamed.  Where the undo is exact and safe (the revoked
permissions from the event's ``requestParameters``, a deleted route whose target still exists,
the capacity or rate limit a change lowered, read from the write before it), it is offered as a
catalogued fix, first, through the same approve-to-fix path as every fix.

A lookup that is denied or throttled past retries makes the ``changes.recent`` finding an
``error`` that says so; the rest of the run goes on.
"""

from __future__ import annotations

from ._kinds import KINDS, Kind, brief, kind_of
from ._model import Change, Reading
from ._read import forget, lookup_older, recent
from ._tie import tie

__all__ = [
    "KINDS",
    "Change",
    "Kind",
    "Reading",
    "brief",
    "forget",
    "kind_of",
    "lookup_older",
    "recent",
    "tie",
]
