"""Parsing ``/omni`` text.  Never raises: anything unrecognised becomes a help request."""

from __future__ import annotations

import re
from dataclasses import dataclass


def areas() -> list[str]:
    """What ``/omni diagnose`` takes: every declared area, and ``all``."""
    from commands import areas as registry

    return [*registry.names(), "all"]


_ENV_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Command:
    kind: str  # "diagnose" | "audit" | "help"
    area: str | None = None
    environment: str | None = None
    problem: str | None = None  # why we fell back to help


def parse(text: str | None, known_areas: list[str] | None = None) -> Command:
    words = (text or "").strip().lower().split()
    if not words or words[0] in {"help", "-h", "--help", "?"}:
        return Command("help")
    verb, rest = words[0], words[1:]
    if verb == "audit" and not rest:
        return Command("audit")
    if verb == "diagnose":
        if not rest:
            return Command("help", problem="`diagnose` needs an area")
        area = rest[0]
        if area not in (known_areas if known_areas is not None else areas()):
            return Command("help", problem=f"unknown area `{area[:40]}`")
        env = None
        if len(rest) >= 2:
            if not _ENV_RE.match(rest[1]) or len(rest) > 2:
                return Command(
                    "help", problem=f"cannot read environment `{' '.join(rest[1:])[:40]}`"
                )
            env = rest[1]
        return Command("diagnose", area=area, environment=env)
    return Command("help", problem=f"unknown subcommand `{verb[:40]}`")
