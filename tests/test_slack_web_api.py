"""The Slack Web API client: chat.postMessage, 429 + Retry-After in a budget, no token in logs."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from functions.slack.web_api import SlackClient, SlackError, is_slack_url, respond
from tests.slack_requests import BOT_TOKEN
from tests.slack_standins import SlackStandIn


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    server = SlackStandIn()
    yield server
    server.stop()


def test_post_message_sends_json_with_the_bot_token(slack: SlackStandIn) -> None:
    client = SlackClient(slack.api_url, BOT_TOKEN)
    answer = client.post_message("C1", "hello", thread_ts="1700000000.000100")
    assert answer["ok"] is True
    (call,) = slack.posts()
    assert call.headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    assert call.body == {"channel": "C1", "text": "hello", "thread_ts": "1700000000.000100"}


def test_a_429_is_retried_after_retry_after(slack: SlackStandIn) -> None:
    slack.rate_limit("chat.postMessage", 0.3)
    started = time.monotonic()
    SlackClient(slack.api_url, BOT_TOKEN).post_message("C1", "hello")
    assert time.monotonic() - started >= 0.3
    first, second = slack.posts()
    assert second.at - first.at >= 0.3


def test_a_retry_after_beyond_the_budget_gives_up_at_once(slack: SlackStandIn) -> None:
    slack.rate_limit("chat.postMessage", 30)
    started = time.monotonic()
    with pytest.raises(SlackError) as failed:
        SlackClient(slack.api_url, BOT_TOKEN).post_message("C1", "hello", budget=5)
    assert failed.value.error == "ratelimited"
    assert time.monotonic() - started < 1
    assert len(slack.posts()) == 1


def test_retries_are_bounded(slack: SlackStandIn) -> None:
    slack.rate_limit("chat.postMessage", 0, 0, 0, 0)
    with pytest.raises(SlackError):
        SlackClient(slack.api_url, BOT_TOKEN).post_message("C1", "hello")
    assert len(slack.posts()) == 3


def test_slack_errors_carry_the_code_and_never_the_token(
    slack: SlackStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = SlackClient(slack.api_url, "xoxb-wrong-token")
    with pytest.raises(SlackError) as failed:
        client.post_message("C1", "hello")
    assert failed.value.error == "invalid_auth"
    assert "xoxb-wrong-token" not in caplog.text + repr(client) + str(failed.value)


def test_respond_posts_to_a_slack_response_url(slack: SlackStandIn) -> None:
    respond(slack.response_url("r1"), {"text": "done"}, api_url=slack.api_url)
    (call,) = slack.responses("r1")
    assert call.body == {"text": "done"} and "Authorization" not in call.headers


def test_respond_refuses_urls_that_are_not_slack(slack: SlackStandIn) -> None:
    with pytest.raises(SlackError):
        respond("https://evil.example/x", {"text": "secret"}, api_url=slack.api_url)


def test_slack_urls() -> None:
    api = "https://slack.com/api/"
    assert is_slack_url("https://hooks.slack.com/commands/T1/2/abc", api)
    assert is_slack_url("http://127.0.0.1:9/response/x", "http://127.0.0.1:9/api/")
    assert not is_slack_url("https://hooks.slack.com.evil.example/x", api)
    assert not is_slack_url("http://127.0.0.1:10/response/x", "http://127.0.0.1:9/api/")
    assert not is_slack_url("file:///etc/passwd", api)
