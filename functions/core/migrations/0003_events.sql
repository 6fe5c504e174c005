-- Events: reminders sent once per todo and due time, and the dead-letter store.
-- (outbox and processed_events come from 0001.)

-- One row per reminder sent: claimed with INSERT … ON CONFLICT DO NOTHING in the same
-- transaction as its outbox row, so each (todo, due time) is reminded exactly once.
-- A new due time is a new key; deleting the todo forgets its reminders.
CREATE TABLE todo_reminders (
    todo_id     uuid NOT NULL REFERENCES todos (id) ON DELETE CASCADE,
    due_at      timestamptz NOT NULL,
    reminded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (todo_id, due_at)
);

-- Events the broker gave up on (the Triggers' deadLetterSink), kept for inspection
-- and replay. Knative names the failed subscriber, its status code and response
-- in the knativeerror* extensions; the same event dead-lettered by two Triggers is
-- two rows, a redelivery of the same dead letter is none.
CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    event_id        text NOT NULL,
    source          text NOT NULL,
    type            text NOT NULL,
    subject         text,
    time            text,
    datacontenttype text,
    data            text,
    attributes      jsonb NOT NULL,
    error_dest      text NOT NULL DEFAULT '',
    error_code      text,
    error_data      text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source, event_id, error_dest)
);
CREATE INDEX dead_letters_received ON dead_letters (received_at);
