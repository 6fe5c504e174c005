"""Serves the gateway with gunicorn, configured as functions-framework serves one function.

The gunicorn master never imports the functions: the worker builds the gateway
after the fork. With `reload`, a changed file ends the worker and a fresh one
(re)imports our code and applies pending migrations, so edits take effect
without a manual restart. With `events`, the worker also runs the local event
router (threads start after the fork) and every function gets K_SINK pointing
at the gateway's `/broker`.

The platform's own traffic (events published to the broker, the router's
deliveries) goes to a second, loopback-only listener of the same gateway with
threads of its own, as in the cluster, where the broker and each function are
separate servers. On the one public listener, a create under 100 clients would
hold its thread while its publish waited for a free one behind the clients'
requests: a convoy that turned 10 ms creates into seconds.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gunicorn.app.base

from functions.platform.asgi_proxy import extra_threads, stop_all
from functions.serve import gunicorn_options

log = logging.getLogger("todo_platform.server")

PACKAGE = Path(__file__).resolve().parents[1]
# Globs are expanded on every poll, so new files and modules not yet imported count too.
RELOAD_EXTRA_FILES = (
    str(PACKAGE / "**" / "*.py"),
    str(PACKAGE / "core" / "migrations" / "*.sql"),
    # A directory's mtime changes when a file is added: a new migration reloads too.
    str(PACKAGE / "core" / "migrations"),
)


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GatewayServer(gunicorn.app.base.BaseApplication):
    """gunicorn, one gthread worker, serving the gateway; `on_ready` gets the bound host, port."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        reload: bool = False,
        on_ready: Callable[[str, int], None] | None = None,
        events: bool = False,
    ) -> None:
        self.reload = reload
        self.on_ready = on_ready
        self.events = events
        self.url = ""  # known once bound (the port may be 0 until then)
        self.options: dict[str, Any] = {
            "bind": bind_address(host, port),
            "workers": 1,
            "worker_class": "gthread",
            # Plus the threads that proxied ASGI requests may hold (asgi_proxy.py).
            "threads": int(os.environ.get("THREADS", 8)) + extra_threads(),
            # functions-framework's own values: no request-line limit, no worker timeout.
            "limit_request_line": 0,
            "timeout": int(os.environ.get("CLOUD_RUN_TIMEOUT_SECONDS", 0)),
            "graceful_timeout": 10,
            "loglevel": os.environ.get("GUNICORN_LOG_LEVEL", "info" if reload else "warning"),
            "proc_name": "todo-platform",
            "when_ready": self._when_ready,
            "worker_exit": stop_all,
        }
        if reload:
            self.options.update(
                reload=True, reload_engine="auto", reload_extra_files=list(RELOAD_EXTRA_FILES)
            )
        super().__init__()

    def load_config(self) -> None:
        # gunicorn_options(): no control socket, as in every function's container (two
        # platforms, or the tests, would also fight over its one path per user).
        for key, value in {**self.options, **gunicorn_options()}.items():
            self.cfg.set(key, value)

    def _when_ready(self, arbiter: Any) -> None:
        # In the master, after binding and before the worker forks: what it sets, the worker has.
        from functions.platform.up import base_url

        host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
        self.url = base_url(host, port)
        if self.on_ready is not None:
            self.on_ready(host, port)

    def load(self) -> Any:
        """Runs in the worker, after the fork (and after gunicorn set its signal handlers)."""
        internal = InternalListener() if self.events else None
        if internal is not None:
            os.environ["K_SINK"] = internal.url + "/broker"
            if "functions.core.settings" in sys.modules:
                sys.modules["functions.core.settings"].settings.cache_clear()
        try:
            if self.reload:
                gateway = _fresh_gateway(lambda: self._event_router(internal))
            else:
                from functions.platform.gateway import Gateway

                gateway = Gateway(
                    broker=self._event_router(internal), threads=int(os.environ.get("THREADS", 8))
                )
        except Exception as exc:
            if not self.reload:
                raise
            # Keep the worker up so the reloader sees the fix; the traceback goes to the log.
            log.exception("the platform failed to load; fix the code and save to reload")
            return _failure_app(f"{type(exc).__name__}: {exc}")
        _start_telemetry()
        if internal is not None:
            internal.serve(gateway)
        return gateway

    def _event_router(self, internal: InternalListener | None) -> Any:
        """The local event router, started, delivering to the functions' internal addresses."""
        if internal is None:
            return None
        from functions.platform.event_router import EventRouter

        base = internal.url
        router = EventRouter.from_manifests(lambda service: f"{base}/_functions/{service}/")
        router.start()
        return router


class InternalListener:
    """The gateway again on 127.0.0.1:<free port>, with THREADS threads of its own: the
    platform's own traffic (publishes, deliveries) never queues behind the clients'.

    A fixed pool, not a thread per request: each thread keeps its database connection.
    """

    def __init__(self) -> None:
        from concurrent.futures import ThreadPoolExecutor
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

        pool = ThreadPoolExecutor(int(os.environ.get("THREADS", 8)), "internal")

        class Server(WSGIServer):
            def process_request(self, request: Any, client_address: Any) -> None:
                pool.submit(self._handle, request, client_address)

            def _handle(self, request: Any, client_address: Any) -> None:
                try:
                    self.finish_request(request, client_address)
                except Exception:
                    self.handle_error(request, client_address)
                finally:
                    self.shutdown_request(request)

        class Handler(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # the functions write their own access log

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def serve(self, app: Any) -> None:
        self._server.set_app(app)
        threading.Thread(target=self._server.serve_forever, name="internal", daemon=True).start()


def _start_telemetry() -> None:
    """The gateway's own service name, and the SIGTERM flush chained to gunicorn's handler.

    Each function served here then exports under its own name as it is first used.
    """
    from functions.core import telemetry
    from functions.platform.gateway import GATEWAY_SERVICE

    telemetry.configure(GATEWAY_SERVICE)
    telemetry.flush_on_sigterm()


def _fresh_gateway(event_router: Callable[[], Any]) -> Any:
    # The master imported some of our modules (migrations, tokens) before the code changed;
    # forget them all so this worker runs what is on disk now.
    for name in [m for m in sys.modules if m == "functions" or m.startswith("functions.")]:
        del sys.modules[name]
    sys.modules.pop("main", None)
    from functions.core.migrate import apply_migrations
    from functions.core.settings import settings
    from functions.platform.gateway import Gateway

    applied = apply_migrations(settings().database_url)
    if applied:
        log.warning("applied migrations %s", ", ".join(applied))
    return Gateway(broker=event_router())


def _failure_app(error: str) -> Any:
    """Answers every request with a 500 problem document until the code loads again."""
    # Built by hand: functions.core may be the very code that failed to import.
    body = json.dumps(
        {
            "type": "https://todo-platform.dev/problems/internal",
            "title": "Internal error",
            "status": 500,
            "detail": f"the platform failed to load ({error}); fix it and save to reload",
        }
    ).encode()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response(
            "500 Internal Server Error",
            [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app
