"""Talking back to Slack: the Web API (`chat.postMessage`) and `response_url`s.

Calls go to SLACK_API_URL (Slack's own by default, a stand-in in tests). A 429
is retried after its Retry-After, but only while the wait fits the caller's
time budget, so a rate limit never stalls a function past its deadline. Tokens
travel in the Authorization header and never appear in a log line or an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from functions.core import spans

log = logging.getLogger("todo_platform.slack")

MAX_ATTEMPTS = 3
DEFAULT_RETRY_AFTER = 1.0
REQUEST_TIMEOUT = 5.0
SLACK_HOOKS = "https://hooks.slack.com/"


class SlackError(Exception):
    """Slack refused a call or could not be reached; `error` is Slack's code (never a secret)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def is_slack_url(url: str, api_url: str) -> bool:
    """Whether url may receive a reply: Slack's hooks, or the origin SLACK_API_URL names.

    A response_url comes inside a payload; posting to any URL it named would let
    whoever wrote the payload aim our requests (and the user's text) anywhere.
    """
    if url.startswith(SLACK_HOOKS):
        return True
    target, api = urlsplit(url), urlsplit(api_url)
    return (target.scheme, target.netloc) == (api.scheme, api.netloc) and bool(target.netloc)


def _retry_after(response: requests.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", DEFAULT_RETRY_AFTER)))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _post(
    session: requests.Session,
    url: str,
    what: str,
    *,
    json: Mapping[str, Any],
    headers: Mapping[str, str],
    deadline: float,
) -> requests.Response:
    """POST, retrying 429s after Retry-After while the wait ends before the deadline.

    Each attempt is a client span (`spans.slack_api`) whose traceparent goes with it.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SlackError("timeout")
        sent = dict(headers)  # each attempt carries its own span's traceparent
        try:
            with spans.slack_api(what, url, sent) as span:
                if attempt > 1:
                    span.set("http.request.resend_count", attempt - 1)
                response = session.post(
                    url, json=json, headers=sent, timeout=min(REQUEST_TIMEOUT, remaining)
                )
                span.set(spans.STATUS, response.status_code)
        except requests.RequestException as exc:
            log.warning("Slack %s failed: %s", what, type(exc).__name__)
            raise SlackError("unreachable") from None
        if response.status_code != 429:
            return response
        wait = _retry_after(response)
        if attempt == MAX_ATTEMPTS or time.monotonic() + wait >= deadline:
            log.warning("Slack %s rate limited; Retry-After %.1f s does not fit", what, wait)
            raise SlackError("ratelimited")
        log.info("Slack %s rate limited; retrying in %.1f s", what, wait)
        time.sleep(wait)
    raise AssertionError("unreachable")


class SlackClient:
    """The few Web API methods the platform uses, with the bot token."""

    def __init__(self, api_url: str, token: str, session: requests.Session | None = None) -> None:
        self.api_url = api_url if api_url.endswith("/") else api_url + "/"
        self._token = token
        self.session = session or requests.Session()

    def __repr__(self) -> str:  # never the token
        return f"SlackClient({self.api_url!r})"

    def call(self, method: str, payload: Mapping[str, Any], budget: float = 10.0) -> dict[str, Any]:
        """POST a Web API method as JSON; its answer, or SlackError with Slack's error code."""
        response = _post(
            self.session,
            self.api_url + method,
            method,
            json=payload,
            headers={"Authorization": f"Bearer {self._token}"},
            deadline=time.monotonic() + budget,
        )
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        if response.status_code != 200 or not answer.get("ok"):
            error = str(answer.get("error") or f"http_{response.status_code}")
            log.warning("Slack %s failed: %s", method, error)
            raise SlackError(error)
        return answer

    def post_message(
        self,
        channel: str,
        text: str,
        *,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        budget: float = 10.0,
    ) -> dict[str, Any]:
        """`chat.postMessage`; a user id as channel posts in the app's DM with that user."""
        payload: dict[str, Any] = {"channel": channel, "text": text}
        if blocks:
            payload["blocks"] = blocks
        if thread_ts:
            payload["thread_ts"] = thread_ts
        return self.call("chat.postMessage", payload, budget)


def respond(
    url: str,
    message: Mapping[str, Any],
    *,
    api_url: str,
    budget: float = 5.0,
    session: requests.Session | None = None,
) -> None:
    """POST message to a response_url (it needs no token); SlackError if Slack refuses."""
    if not is_slack_url(url, api_url):
        raise SlackError("response_url_not_slack")
    response = _post(
        session or requests.Session(),
        url,
        spans.RESPONSE_URL,
        json=message,
        headers={},
        deadline=time.monotonic() + budget,
    )
    if response.status_code != 200:
        log.warning("Slack response_url answered %d", response.status_code)
        raise SlackError(f"http_{response.status_code}")
