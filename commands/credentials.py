"""Per-environment AWS sessions: assumed-role credentials, cached and refreshed by botocore.

Each environment may name a role (``role_arn`` for checks, ``fix_role_arn`` for fixes).  A
:class:`Sessions` keeps one boto3 session per (role, source identity) for the life of the
process, so every job against an environment reuses its session and its clients.  The
credentials are botocore's own ``DeferredRefreshableCredentials`` fed by its
``AssumeRoleCredentialFetcher``: the first AWS call assumes the role, later calls reuse the
credentials, and botocore assumes the role again shortly before they expire (15 minutes
before, advisory; 10 minutes, mandatory) — nothing here handles expiry by hand.

Fix sessions carry the approving Slack user as ``RoleSessionName`` and ``SourceIdentity``, so
CloudTrail shows who approved each change.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import boto3
import botocore.session
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

logger = logging.getLogger(__name__)

_SESSION_NAME = re.compile(r"[^\w+=,.@-]")


def session_name(text: str) -> str:
    """A valid ``RoleSessionName`` / ``SourceIdentity`` (2–64 of ``[\\w+=,.@-]``)."""
    return _SESSION_NAME.sub("-", text)[:64].ljust(2, "-")


class Sessions:
    """boto3 sessions by role, built once per process and refreshed by botocore."""

    def __init__(
        self,
        base: boto3.session.Session | None = None,
        *,
        on_session: Callable[[boto3.session.Session], None] | None = None,
        duration_s: int = 3600,
    ) -> None:
        self.base = base or boto3.session.Session()
        self._on_session = on_session
        self._duration_s = duration_s
        self._sessions: dict[tuple[str, str | None], boto3.session.Session] = {}
        self._lock = threading.Lock()

    def for_role(
        self,
        role_arn: str | None,
        *,
        region: str,
        source_identity: str | None = None,
        name: str = "omni-diagnostics",
    ) -> boto3.session.Session:
        """The session for ``role_arn`` (the base session when None)."""
        if not role_arn:
            return self.base
        key = (role_arn, source_identity)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                session = self._assumed(role_arn, region, source_identity, name)
                self._sessions[key] = session
                logger.info("session for %s (source identity %s)", role_arn, source_identity)
        return session

    def _assumed(
        self, role_arn: str, region: str, source_identity: str | None, name: str
    ) -> boto3.session.Session:
        extra: dict[str, Any] = {
            "RoleSessionName": session_name(source_identity or name),
            "DurationSeconds": self._duration_s,
        }
        if source_identity:
            extra["SourceIdentity"] = session_name(source_identity)
        base = self.base

        def sts_client(service: str, **kwargs: Any) -> Any:
            return base.client(service, region_name=region, **kwargs)  # regional STS

        fetcher = AssumeRoleCredentialFetcher(
            client_creator=sts_client,
            source_credentials=base.get_credentials(),
            role_arn=role_arn,
            extra_args=extra,
        )
        credentials = DeferredRefreshableCredentials(
            method="assume-role", refresh_using=fetcher.fetch_credentials
        )
        core = botocore.session.Session()
        core._credentials = credentials
        session = boto3.session.Session(botocore_session=core, region_name=region)
        if self._on_session:
            self._on_session(session)
        return session
