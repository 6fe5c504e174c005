"""Slack mrkdwn escaping: what a user typed is shown, never interpreted as a mention or link."""

from __future__ import annotations


def escape(text: str) -> str:
    """&, < and > are Slack's control characters (`<!channel>`, `<@U123>`, `<url|label>`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
