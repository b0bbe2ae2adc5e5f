from __future__ import annotations

import yaml

from .helpers import REPO


def test_slack_manifest_routes_everything_to_one_url() -> None:
    manifest = yaml.safe_load((REPO / "slack" / "manifest.yaml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/omni"
    urls = {
        command["url"],
        manifest["settings"]["event_subscriptions"]["request_url"],
        manifest["settings"]["interactivity"]["request_url"],
    }
    assert len(urls) == 1 and urls.pop().endswith("/slack/events")
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "channels:history", "usergroups:read"} <= scopes
    assert {"message.channels", "message.groups"} <= set(
        manifest["settings"]["event_subscriptions"]["bot_events"]
    )
