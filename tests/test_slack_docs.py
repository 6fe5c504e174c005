"""docs/slack.md: its app manifest points Slack at the registry's routes with the scopes we use."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import yaml

from functions.registry import BY_NAME
from tests.knative_manifests import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "slack.md").read_text()


def manifest() -> dict:
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL) if "oauth_config" in b]
    return yaml.safe_load(block)


def route_of(name: str) -> str:
    (route,) = BY_NAME[name].routes
    return route.path


def test_the_manifest_urls_are_the_slack_functions_routes() -> None:
    app = manifest()
    (command,) = app["features"]["slash_commands"]
    assert command["command"] == "/todo"
    assert urlsplit(command["url"]).path == route_of("slack-commands")
    settings = app["settings"]
    assert urlsplit(settings["event_subscriptions"]["request_url"]).path == route_of("slack-events")
    assert urlsplit(settings["interactivity"]["request_url"]).path == route_of("slack-interactions")


def test_the_manifest_asks_for_the_scopes_and_events_the_functions_use() -> None:
    app = manifest()
    assert set(app["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "app_mentions:read",
        "im:history",
    }
    assert set(app["settings"]["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.im",
    }
