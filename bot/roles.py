"""Who may do what, decided at click time: viewer < operator < admin (DESIGN.md §6).

``OMNI_ROLE_BINDINGS`` names Slack users (``U…``/``W…``) and user groups (``S…``); a group's
members come from ``usergroups.users.list``, cached in Redis for a minute, so someone removed
from a group loses the right within a minute.
"""

from __future__ import annotations

import json
import logging

from redis import Redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from . import keys

logger = logging.getLogger(__name__)
ORDER = {"viewer": 0, "operator": 1, "admin": 2}
GROUP_CACHE_S = 60


class Roles:
    def __init__(self, bindings: dict[str, list[str]], client: WebClient, redis: Redis) -> None:
        self.bindings = bindings
        self.client = client
        self.redis = redis

    def role_of(self, user: str) -> str:
        for role in ("admin", "operator"):
            for entry in self.bindings.get(role, []):
                if entry == user or (entry.startswith("S") and user in self._members(entry)):
                    return role
        return "viewer"

    def allows(self, user: str, required: str) -> bool:
        return ORDER[self.role_of(user)] >= ORDER[required]

    def _members(self, group: str) -> set[str]:
        key = keys.usergroup(group)
        cached = self.redis.get(key)
        if cached is not None:
            return set(json.loads(cached))
        try:
            users: list[str] = list(
                self.client.usergroups_users_list(usergroup=group).get("users", [])
            )
        except SlackApiError as exc:
            logger.warning("cannot list user group %s: %s", group, exc.response.get("error"))
            users = []
        self.redis.set(key, json.dumps(users), ex=GROUP_CACHE_S)
        return set(users)
