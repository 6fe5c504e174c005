"""Benchmarks of the budgets in DESIGN §8: `todo-platform bench` (or `python -m bench`)."""
