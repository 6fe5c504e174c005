"""todo-platform functions: every Knative function's entry point and the small core they share."""
