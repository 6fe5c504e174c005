"""The bare functions-framework hello-world every todo function is compared with."""

import functions_framework


@functions_framework.http
def hello(request: object) -> str:
    return "hello"
