"""slack-notify's messages: completions of Slack owners in the channel, due reminders as DMs."""

from __future__ import annotations

from datetime import UTC, datetime

from functions.slack.notices import completed_notice, due_reminder

DUE = datetime(2026, 3, 2, 9, tzinfo=UTC)


def test_a_slack_owners_completion_is_announced_with_a_mention() -> None:
    notice = completed_notice("slack:T1:U2", 12, "Ship <it>", "C9")
    assert notice is not None and notice.channel == "C9"
    text = notice.blocks[0]["text"]["text"]
    assert "<@U2>" in text and "#12" in text and "Ship &lt;it&gt;" in text


def test_other_owners_and_no_channel_say_nothing() -> None:
    assert completed_notice("alice", 1, "x", "C9") is None
    assert completed_notice("slack:T1:U2", 1, "x", None) is None
    assert completed_notice("slack:T1:U2:extra", 1, "x", "C9") is None


def test_a_due_reminder_goes_to_the_owners_dm() -> None:
    notice = due_reminder("slack:T1:U2", 3, "Buy milk", DUE)
    assert notice is not None and notice.channel == "U2"
    assert "<!date^1772442000^" in notice.blocks[0]["text"]["text"]
    assert "/todo done 3" in notice.blocks[0]["text"]["text"]
    assert due_reminder("local", 3, "Buy milk", DUE) is None
