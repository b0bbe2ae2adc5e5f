"""Omni's exceptions, in one place.

    OmniError
    ├── ConfigError                 a setting is missing, malformed or a placeholder
    │   ├── TerraformOutputsError   the outputs file / state object cannot be read
    │   └── UnknownEnvironment      no environment of that name in the config
    ├── UnknownRunbook              no runbook of that name
    └── CheckError                  raised inside a check; the runner turns it into a finding
        ├── AwsCallError            one AWS call failed (after botocore's retries): says which
        └── ResourceNotFound        a named resource does not exist where we looked

A check never lets any of these escape the runner: each becomes a finding with status
``error`` (or ``fail`` when a missing resource *is* the problem the check looks for).
"""

from __future__ import annotations


class OmniError(Exception):
    """Base class of every error Omni raises on purpose."""


class ConfigError(OmniError):
    """A setting is missing, malformed or still a placeholder."""


class TerraformOutputsError(ConfigError):
    """The Terraform outputs could not be read."""


class UnknownEnvironment(ConfigError):
    """No environment of that name is configured."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"unknown environment {name!r}; configured: {', '.join(known) or 'none'}")


class UnknownRunbook(OmniError):
    """No runbook is registered under that name."""


class CheckError(OmniError):
    """Base of errors raised inside a check."""


class AwsCallError(CheckError):
    """An AWS API call failed after botocore's retries."""

    def __init__(self, service: str, operation: str, code: str, message: str) -> None:
        self.service = service
        self.operation = operation
        self.code = code
        self.message = message
        super().__init__(f"{service}:{operation} failed: {code}: {message}")

    @property
    def throttled(self) -> bool:
        return self.code in THROTTLE_CODES

    @property
    def access_denied(self) -> bool:
        return "AccessDenied" in self.code or self.code in {"UnauthorizedOperation", "AuthFailure"}


class ResourceNotFound(CheckError):
    """A resource Omni looked for does not exist where it looked."""

    def __init__(self, kind: str, name: str, where: str) -> None:
        self.kind = kind
        self.name = name
        self.where = where
        super().__init__(f"{kind} {name!r} not found in {where}")


THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "PriorRequestNotComplete",
        "ProvisionedThroughputExceededException",
    }
)
