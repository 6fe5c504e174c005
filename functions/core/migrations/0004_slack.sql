-- Slack: the Events API deliveries already handed off (Slack retries with the same
-- event_id), and the agent's conversation history, one row per team, conversation and user.

CREATE TABLE slack_event_receipts (
    event_id    text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slack_event_receipts_received ON slack_event_receipts (received_at);

CREATE TABLE slack_conversations (
    team_id      text NOT NULL,
    conversation text NOT NULL,  -- the channel, or channel/thread for a thread
    user_id      text NOT NULL,  -- never shared: each user has their own history
    messages     jsonb NOT NULL DEFAULT '[]'::jsonb,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, conversation, user_id)
);
CREATE INDEX slack_conversations_updated ON slack_conversations (updated_at);
