"""The CloudEvent catalog of todo-platform: types, data models, envelope, JSON Schemas.

It never imports `functions`, so any consumer can depend on it alone (docs/events.md).
"""
