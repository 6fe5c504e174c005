-- Session defaults live on the database rather than in a SET per connection:
-- behind PgBouncer in transaction mode a session SET would land on whichever
-- server connection the pooler lent, and be lost or leak to other clients.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', current_database(), '5s');
    EXECUTE format(
        'ALTER DATABASE %I SET idle_in_transaction_session_timeout = %L', current_database(), '30s'
    );
    EXECUTE format('ALTER DATABASE %I SET timezone = %L', current_database(), 'UTC');
END
$$;
