"""The local platform: embedded PostgreSQL, the gateway and the `todo-platform` command."""
