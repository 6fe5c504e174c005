"""Serves the gateway with gunicorn, configured as functions-framework serves one function.

The gunicorn master never imports the functions: the worker builds the gateway
after the fork. With `reload`, a changed file ends the worker and a fresh one
(re)imports our code and applies pending migrations, so edits take effect
without a manual restart. With `events`, the worker also runs the local event
router (threads start after the fork) and every function gets K_SINK pointing
at the router's ingress (ingress.py).

The platform's own traffic stays off the public listener, as in the cluster, where
the broker and each function are separate servers: events go to the ingress, a
loopback socket of its own, and the router's deliveries to a second, loopback-only
listener of the same gateway with threads of its own. On the one public listener a
create under 100 clients had held its thread while its publish waited for a free one
behind the clients' requests: a convoy that turned 10 ms creates into seconds.

Several workers (WEB_CONCURRENCY, default one per CPU up to MAX_WORKERS) share the
public listener: one interpreter holds one GIL, and a single worker could use one
core however many the machine has. The event router keeps its deliveries and
dead letters in memory and its schedules must fire once, so exactly one worker, the
one holding the router lock (`flock`, released by the kernel when that worker dies,
so its replacement takes over), runs it and serves the ingress and the internal listener, which
the master binds before forking so every worker knows K_SINK. The other workers
pass `/broker…` on to the ingress (BrokerProxy). Client connections are spread
evenly over the workers (balance.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import logging
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gunicorn.app.base

from functions.platform.asgi_proxy import HOP_BY_HOP, extra_threads, stop_all
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


# Each worker imports every function it serves (~55 MB); past four, a laptop gains little.
MAX_WORKERS = 4
BROKER_TIMEOUT = 30.0
KEEPALIVE_SECONDS = 75  # nginx's default for idle client connections


def bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def worker_count(reload: bool) -> int:
    """WEB_CONCURRENCY if set, else one worker per CPU up to MAX_WORKERS; one with reload."""
    if reload:
        return 1  # the reloader restarts its one worker on a change; more would race it
    value = os.environ.get("WEB_CONCURRENCY", "").strip()
    if value:
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1:
            raise SystemExit(f"WEB_CONCURRENCY must be a whole number of at least 1, not {value!r}")
        return count
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


class GatewayServer(gunicorn.app.base.BaseApplication):
    """gunicorn's gthread workers serving the gateway; `on_ready` gets the bound host, port."""

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
        self.workers = worker_count(reload)
        # Bound here, in the master, so every worker inherits it and knows K_SINK.
        self.internal = socket.create_server(("127.0.0.1", 0)) if events else None
        # The router's ingress (K_SINK), on a socket of its own (ingress.py).
        self.ingress = socket.create_server(("127.0.0.1", 0)) if events else None
        self.router_lock = _lock_path() if events else ""
        self.options: dict[str, Any] = {
            "bind": bind_address(host, port),
            "workers": self.workers,
            "worker_class": "gthread",
            # Plus the threads that proxied ASGI requests may hold (asgi_proxy.py).
            "threads": int(os.environ.get("THREADS", 8)) + extra_threads(),
            # functions-framework's own values: no request-line limit, no worker timeout.
            "limit_request_line": 0,
            "timeout": int(os.environ.get("CLOUD_RUN_TIMEOUT_SECONDS", 0)),
            "graceful_timeout": 10,
            # gunicorn closes a connection idle for `keepalive` seconds (default 2). A client
            # that sends on it just then gets "Remote end closed connection without response",
            # which it must not retry when it was a POST; under 100 clients a client thread
            # can sit that long between two requests. Clients' pools keep connections far
            # longer (requests: forever; browsers: minutes), so the server should wait longer.
            "keepalive": KEEPALIVE_SECONDS,
            "loglevel": os.environ.get("GUNICORN_LOG_LEVEL", "info" if reload else "warning"),
            "proc_name": "todo-platform",
            "when_ready": self._when_ready,
            "worker_exit": stop_all,
        }
        if reload:
            self.options.update(
                reload=True, reload_engine="auto", reload_extra_files=list(RELOAD_EXTRA_FILES)
            )
        if self.workers > 1:
            from functions.platform.balance import (
                BalancedThreadWorker,
                ConnectionTable,
                forget_worker,
            )

            # Client connections spread evenly over the workers (balance.py).
            BalancedThreadWorker.table = ConnectionTable(self.workers * 2)
            self.options.update(
                worker_class="functions.platform.balance.BalancedThreadWorker",
                child_exit=forget_worker,
            )
        super().__init__()

    def run(self) -> None:
        master = os.getpid()
        try:
            super().run()
        finally:
            # Workers leave through here too (they are forked inside run): only the master
            # removes the lock file, which a replacement worker must still find.
            if self.router_lock and os.getpid() == master:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.router_lock)

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
        internal: InternalListener | None = None
        proxy: BrokerProxy | None = None
        if self.internal is not None and self.ingress is not None:
            port = self.ingress.getsockname()[1]
            os.environ["K_SINK"] = f"http://127.0.0.1:{port}/broker"
            if "functions.core.settings" in sys.modules:
                sys.modules["functions.core.settings"].settings.cache_clear()
            if _take_lock(self.router_lock):
                internal = InternalListener(self.internal)
            else:
                # The router's worker accepts on these, not this one.
                self.internal.close()
                self.ingress.close()
                proxy = BrokerProxy(port)

        def broker() -> Any:
            return proxy or self._event_router(internal)

        try:
            if self.reload:
                gateway = _fresh_gateway(broker)
            else:
                from functions.platform.gateway import Gateway

                gateway = Gateway(broker=broker(), threads=int(os.environ.get("THREADS", 8)))
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
        from functions.platform.up import functions_off

        base = internal.url
        # Settings are read once: a function off now stays off until `up` starts again.
        off = {
            name: f"{name} is off: set {', '.join(absent)}"
            for name, absent in functions_off().items()
        }
        router = EventRouter.from_manifests(
            lambda service: f"{base}/_functions/{service}/", off=off
        )
        router.start()
        from functions.core.publish import receive_locally
        from functions.platform.ingress import BrokerIngress

        assert self.ingress is not None
        BrokerIngress(self.ingress, router).serve()
        # This worker's functions hand their events to the router without a socket.
        receive_locally(os.environ["K_SINK"], router.receive)
        return router


def _lock_path() -> str:
    handle, path = tempfile.mkstemp(prefix="todo-platform-router-", suffix=".lock")
    os.close(handle)
    return path


def _take_lock(path: str) -> bool:
    """True in the one worker that gets the router lock; it holds it until it exits."""
    # Opened after the fork: an inherited descriptor would share one lock among all workers.
    handle = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(handle)
        return False
    return True  # the descriptor stays open for the worker's life: that is the lock


class BrokerProxy:
    """`/broker…` in a worker without the router: passed on to the router's worker as is."""

    def __init__(self, port: int) -> None:
        # Here, in the worker: the master imports none of the functions' modules.
        from events.envelope import MAX_EVENT_BYTES

        self.port = port
        self.limit = MAX_EVENT_BYTES + 1  # past the limit the router refuses by size

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        body = environ["wsgi.input"].read(min(declared, self.limit)) if declared else b""
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and key not in ("HTTP_HOST", "HTTP_CONNECTION")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "/")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=BROKER_TIMEOUT)
        try:
            connection.request(environ["REQUEST_METHOD"], path, body, headers)
            answer = connection.getresponse()
            payload = answer.read()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
        except (OSError, http.client.HTTPException) as exc:
            # Between the router's worker dying and its replacement taking the lock.
            from functions.core.errors import Unavailable
            from functions.core.http import problem_response

            error = Unavailable(f"the event router is not reachable ({exc}); retry shortly")
            return problem_response(error, environ.get("PATH_INFO", "/"))(environ, start_response)
        finally:
            connection.close()
        start_response(f"{answer.status} {answer.reason}", kept)
        return [payload]


class InternalListener:
    """The gateway again on 127.0.0.1:<free port>, with THREADS threads of its own: the
    router's deliveries to the functions never queue behind the clients'.

    A fixed pool, not a thread per request: each thread keeps its database connection.
    """

    def __init__(self, bound: socket.socket) -> None:
        from concurrent.futures import ThreadPoolExecutor
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

        pool = ThreadPoolExecutor(int(os.environ.get("THREADS", 8)), "internal")

        class Server(WSGIServer):
            def server_bind(self) -> None:
                # The master bound and listened before forking; only wsgiref's environ is left.
                self.server_name, self.server_port = self.socket.getsockname()[:2]
                self.setup_environ()

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

        self._server = Server(bound.getsockname()[:2], Handler, bind_and_activate=False)
        self._server.socket.close()
        self._server.socket = bound
        self._server.server_bind()
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
