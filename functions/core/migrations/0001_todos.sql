-- The first schema: todos with per-owner numbers, API tokens, idempotency keys,
-- the outbox and processed events (DESIGN §4).

CREATE TABLE owner_counters (
    owner       text PRIMARY KEY,
    last_number integer NOT NULL
);

CREATE TABLE todos (
    id            uuid PRIMARY KEY,
    owner         text NOT NULL,
    number        integer NOT NULL,
    title         text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    notes         text NOT NULL DEFAULT '' CHECK (char_length(notes) <= 10000),
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'done')),
    priority      text NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high')),
    -- rank and due_key give every sort order a total, index-friendly key
    priority_rank smallint GENERATED ALWAYS AS (
        CASE priority WHEN 'high' THEN 3 WHEN 'normal' THEN 2 ELSE 1 END
    ) STORED,
    due_at        timestamptz,
    due_key       timestamptz GENERATED ALWAYS AS (COALESCE(due_at, 'infinity'::timestamptz)) STORED,
    tags          text[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    version       integer NOT NULL DEFAULT 1,
    search        tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig, title || ' ' || notes)
    ) STORED,
    UNIQUE (owner, number)
);

-- keyset pagination: one index per sort order, led by owner
CREATE INDEX todos_owner_created ON todos (owner, created_at, id);
CREATE INDEX todos_owner_due ON todos (owner, due_key, id);
CREATE INDEX todos_owner_priority ON todos (owner, priority_rank, created_at, id);
CREATE INDEX todos_search ON todos USING gin (search);
CREATE INDEX todos_tags ON todos USING gin (tags);
CREATE INDEX todos_open_due ON todos (due_at) WHERE status = 'open' AND due_at IS NOT NULL;

CREATE TABLE api_tokens (
    token_hash   text PRIMARY KEY,
    owner        text NOT NULL,
    scopes       text[] NOT NULL,
    name         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_owner ON api_tokens (owner);

CREATE TABLE idempotency_keys (
    owner         text NOT NULL,
    key           text NOT NULL,
    request_hash  text NOT NULL,
    status_code   integer,
    response_body text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (owner, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    event_id     text NOT NULL UNIQUE,
    event_type   text NOT NULL,
    source       text NOT NULL,
    subject      text,
    data         jsonb NOT NULL,
    traceparent  text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error   text
);
CREATE INDEX outbox_pending ON outbox (next_attempt_at, id) WHERE published_at IS NULL;

CREATE TABLE processed_events (
    source       text NOT NULL,
    id           text NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, id)
);

-- a per-database secret that signs pagination cursors, so a forged cursor is rejected
CREATE TABLE platform_secrets (
    name  text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO platform_secrets (name, value)
VALUES ('cursor_key', replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''));
