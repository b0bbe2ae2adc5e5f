"""Why a task stopped, judged as ECS records it: ``stopCode``, then the documented reasons.

From the documented shapes (notes/aws-real-shapes.md):

- a rolling deployment, a scale-in and a user stop are ``ServiceSchedulerInitiated`` /
  ``UserInitiated`` with reasons like ``Scaling activity initiated by (deployment ecs-svc/…)``:
  the container gets SIGTERM, exits 143 when it handles it and 137 when it ignores it and is
  killed after ``stopTimeout``.  Neither is a crash nor an out-of-memory kill;
- ``Task failed ELB health checks in (target-group …)`` and ``Task failed container health
  checks`` are health-check kills (often exit 137, for the same SIGKILL reason);
- an out-of-memory kill has the container reason ``OutOfMemoryError: Container killed due to
  memory usage`` — only that reason makes one;
- ``ResourceInitializationError: unable to pull secrets or registry auth: …`` is Secrets
  Manager / SSM (permission or network), ``CannotPullContainerError`` the image pull;
- spot interruptions and termination notices are the platform's, not the application's.

Words are matched as words: ``secrets`` contains "ecr" and ``AccessDenied`` contains "eni".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# categories that are not failures of the service
BENIGN = frozenset({"deployment", "scale_in", "user", "platform"})
LABELS = {
    "out_of_memory": "killed out of memory (OutOfMemoryError)",
    "image_missing": "the image is not in its repository",
    "image_pull_network": "the image could not be pulled: no network path to the registry",
    "image_pull_denied": "the image could not be pulled: access denied",
    "image_pull": "the image could not be pulled",
    "secrets_network": "secrets or registry auth unreachable (network)",
    "secrets_denied": "secrets or registry auth denied (permissions)",
    "secrets": "secrets or registry auth could not be pulled",
    "eni": "no free IP / network interface in the subnets",
    "elb_health": "killed after failing the load balancer's health checks",
    "container_health": "killed after failing the container health check",
    "app_crash": "the application exited with an error",
    "killed": "killed (SIGKILL) without an out-of-memory reason",
    "failed_to_start": "failed to start",
    "deployment_sigkill": "ignored SIGTERM during a deployment and was killed",
    "other": "other reasons",
}

_NETWORK = re.compile(
    r"\b(i/o timeout|dial tcp|context deadline exceeded|connection (refused|reset|timed out)|"
    r"no route to host|network is unreachable|timeout)\b",
    re.I,
)
_DENIED = re.compile(r"\b(AccessDenied\w*|not authorized|Forbidden|403|KMS)\b", re.I)


def _has(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.I) is not None


@dataclass(frozen=True)
class Stop:
    category: str
    why: str

    @property
    def failure(self) -> bool:
        return self.category not in BENIGN


def classify(task: dict[str, Any]) -> Stop:
    """The category of one stopped task (see the module docstring) and a one-line reason."""
    reason = str(task.get("stoppedReason") or "")
    code = str(task.get("stopCode") or "")
    containers = task.get("containers") or []
    container_reasons = " ".join(str(c.get("reason") or "") for c in containers)
    texts = f"{reason} {container_reasons}"
    exits = [int(c["exitCode"]) for c in containers if c.get("exitCode") is not None]
    nonzero = [e for e in exits if e != 0]

    if _has(r"\bOutOfMemoryError\b", container_reasons):
        return Stop("out_of_memory", f"out of memory (exit {exits[0] if exits else '?'})")
    if _has(r"\bTask failed ELB health checks\b", reason):
        return Stop("elb_health", reason[:200])
    if _has(r"\bTask failed container health checks\b", reason):
        return Stop("container_health", reason[:200])
    if code == "ServiceSchedulerInitiated" or _has(r"\bScaling activity initiated by\b", reason):
        if _has(r"\(deployment\b", reason) or _has(
            r"\bdeployment\b.*\b(completed|replaced)\b", reason
        ):
            if 137 in exits:  # SIGTERM ignored: killed after stopTimeout
                return Stop(
                    "deployment_sigkill",
                    "stopped by a deployment and killed after stopTimeout (exit 137): the "
                    "container does not handle SIGTERM",
                )
            return Stop("deployment", reason[:200])
        if _has(r"\bScaling activity initiated by\b", reason):
            return Stop("scale_in", reason[:200])
    if code == "UserInitiated" or _has(r"\bstopped by user\b", reason):
        return Stop("user", reason[:200] or "stopped by a user")
    if code in ("SpotInterruption", "TerminationNotice"):
        return Stop("platform", reason[:200] or code)
    if _has(r"\bResourceInitializationError\b", texts) and _has(
        r"\bsecrets?\b|\bregistry auth\b", texts
    ):
        if _DENIED.search(texts):
            return Stop("secrets_denied", texts.strip()[:200])
        if _NETWORK.search(texts):
            return Stop("secrets_network", texts.strip()[:200])
        return Stop("secrets", texts.strip()[:200])
    if _has(r"\bCannotPullContainerError\b", texts):
        if _has(r"\b(manifest unknown|not found|does not exist)\b", texts):
            return Stop("image_missing", texts.strip()[:200])
        if _DENIED.search(texts):
            return Stop("image_pull_denied", texts.strip()[:200])
        if _NETWORK.search(texts):
            return Stop("image_pull_network", texts.strip()[:200])
        return Stop("image_pull", texts.strip()[:200])
    if _has(r"\bENI\b|\binsufficient free addresses\b|\bunable to assign\b|\bfree IP\b", texts):
        return Stop("eni", texts.strip()[:200])
    if code == "TaskFailedToStart":
        return Stop("failed_to_start", texts.strip()[:200] or code)
    if nonzero and (code == "EssentialContainerExited" or _has(r"\bEssential container\b", reason)):
        if nonzero == [137] or set(nonzero) == {137}:
            return Stop("killed", "exit 137 (SIGKILL) with no out-of-memory reason")
        return Stop("app_crash", f"the application exited with code {nonzero[0]}")
    if nonzero:
        return Stop("app_crash", f"the application exited with code {nonzero[0]}")
    return Stop("other", (reason or code or "unknown")[:200])
