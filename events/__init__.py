"""The CloudEvent catalog of todo-platform (filled in by the events issue)."""
