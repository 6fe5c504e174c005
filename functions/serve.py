"""The image's entry point: serves the function FUNCTION_TARGET names, with the server it needs.

This is the one seam for how a function is served, read from the registry:

- a WSGI function (`interface="wsgi"`) runs under functions-framework exactly as
  `functions-framework --source functions/main.py` runs it (gunicorn, THREADS threads);
- an ASGI function (`interface="asgi"`: the MCP SDK is built on Starlette) runs under
  uvicorn. functions-framework 3.10's ASGI mode hosts a request → response function
  inside its own Starlette app; it cannot host an ASGI app that needs its own lifespan
  (the SDK's session manager runs in a task group started there), see docs/mcp.md.

The local gateway serves ASGI functions with `uvicorn_server` too, so a function runs
under the same server configuration on a laptop and in its container.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.registry import BY_TARGET, FunctionSpec

if TYPE_CHECKING:
    import uvicorn

SOURCE = str(Path(__file__).with_name("main.py"))
# uvicorn's own default, named: the local gateway reuses a kept-alive connection to an
# ASGI function only well within it (functions/platform/asgi_proxy.py).
KEEP_ALIVE_SECONDS = 5
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def main(argv: Sequence[str] | None = None) -> None:
    # Start-up allocates a lot and frees little: no collections until the function is
    # loaded (functions/main.py freezes what it made and turns the collector back on).
    gc.disable()
    # The platform installs no pydantic plugin; looking for one reads the entry points of
    # every installed distribution when the first model is built, in the first request.
    # An operator who adds one sets PYDANTIC_DISABLE_PLUGINS (even empty) to have it loaded.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    target = os.environ.get("FUNCTION_TARGET", "")
    spec = BY_TARGET.get(target)
    if spec is None:
        sys.exit(
            f"todo-platform: FUNCTION_TARGET must name a registered function "
            f"({', '.join(sorted(BY_TARGET))}), got {target!r}"
        )
    args = list(sys.argv[1:] if argv is None else argv)
    if spec.interface == "asgi":
        serve_asgi(spec)
    else:
        serve_wsgi(args)


def gunicorn_options() -> dict[str, Any]:
    """What the container's gunicorn needs beyond functions-framework's own settings.

    gunicorn ≥ 25 starts a control socket server in the master once the worker is forked:
    it imports asyncio (~11 ms of CPU, ~1.7 MB) and runs an event loop thread while the worker
    answers its first request, on the same cores. Nothing in a container uses it (Knative
    scales by replacing pods, never by `gunicornc`), and its socket would sit at one fixed
    path per user that every function of a shared host fights over.
    """
    from gunicorn.config import KNOWN_SETTINGS

    names = {setting.name for setting in KNOWN_SETTINGS}
    return {"control_socket_disable": True} if "control_socket_disable" in names else {}


def serve_wsgi(args: list[str]) -> None:
    """functions-framework's own command, in this process: FUNCTION_TARGET, PORT, THREADS.

    Its command line and environment are read by its own click command, and the app and
    server are made by its own create_app and create_server, as its command does; only
    gunicorn_options() are added, which its command has no way to pass.
    """
    import click
    from functions_framework import create_app
    from functions_framework._cli import _cli
    from functions_framework._http import create_server

    argv = ["--source", SOURCE, *args]
    try:
        params = _cli.make_context("functions-framework", argv).params
    except click.exceptions.Exit as done:  # --help
        sys.exit(done.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    if params["debug"] or params["asgi"]:
        # Its development server or its ASGI mode: no gunicorn options to add.
        _cli.main(args=argv, prog_name="functions-framework")
        return
    app = create_app(params["target"], params["source"], params["signature_type"])
    create_server(app, False, **gunicorn_options()).run(params["host"], params["port"])


def asgi_app(spec: FunctionSpec) -> ASGIApp:
    """The function's ASGI target; resolving it reads its settings (one line if one is missing)."""
    import functions.main

    app: ASGIApp = getattr(functions.main, spec.target)
    return app


def uvicorn_server(app: ASGIApp, *, host: str = "0.0.0.0", port: int = 8080) -> uvicorn.Server:
    """uvicorn as every ASGI function is served: its lifespan run, logging left to ours."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        # The function configured the root logger (JSON lines); uvicorn's records go there.
        log_config=None,
        access_log=False,
        # Knative's queue-proxy (on 127.0.0.1) sets X-Forwarded-Proto; uvicorn trusts it there.
        proxy_headers=True,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    return uvicorn.Server(config)


def serve_asgi(spec: FunctionSpec) -> None:
    app = asgi_app(spec)
    host = os.environ.get("HOST", "0.0.0.0")
    port = int(os.environ.get("PORT", "8080"))
    server = uvicorn_server(app, host=host, port=port)
    server.run()
    if not server.started:
        # uvicorn has logged why (a failed lifespan startup, a taken port).
        sys.exit(3)


if __name__ == "__main__":
    main()
