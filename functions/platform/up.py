"""`todo-platform up`: the whole platform on one machine, every function behind one gateway.

Database (embedded unless DATABASE_URL is set), migrations, a ready token for
the owner `local`, then gunicorn serving the gateway — and the local event
router, as knative/ says — until Ctrl-C or SIGTERM. With `OTEL_EXPORTER_OTLP_ENDPOINT`
set, every function exports traces, metrics and logs there under its own `service.name`.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from types import FrameType

from functions.platform.local_database import LocalDatabase, PlatformError, local_database

LOCAL_OWNER = "local"
EXAMPLE_TODO = '{"title": "Try todo-platform", "tags": ["demo"]}'


@dataclass(frozen=True)
class UpOptions:
    host: str
    port: int
    data_dir: str | None
    reload: bool


def run(options: UpOptions) -> int:
    # Until gunicorn installs its own handlers, SIGTERM unwinds like Ctrl-C, so the
    # embedded PostgreSQL is released on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    ensure_port_free(options.host, options.port)
    mark_local_environment(os.environ)
    with local_database(options.data_dir) as database:
        os.environ["DATABASE_URL"] = database.url
        # The credential functions use to act for a user (mcp → todo); fresh each run unless set.
        if not os.environ.get("TODO_INTERNAL_TOKEN"):
            os.environ["TODO_INTERNAL_TOKEN"] = secrets.token_urlsafe(32)
        from functions.core.settings import settings

        settings.cache_clear()
        settings()  # every setting the functions need, checked before anything is served
        token, number = mint_local_token(database.url)

        def ready(host: str, port: int) -> None:
            url = base_url(host, port)
            # Before the worker forks: the functions reach each other through this gateway.
            os.environ["TODO_API_URL"] = url
            # The Slack agent finds its tools at this gateway's /mcp unless told otherwise.
            os.environ.setdefault("MCP_URL", url + "/mcp")
            settings.cache_clear()  # the worker reads the settings afresh, with these
            print(banner(url, token, number, database), flush=True)

        from functions.platform.server import GatewayServer

        # Returns only by SystemExit: gunicorn's exit status once it has stopped.
        GatewayServer(
            options.host, options.port, reload=options.reload, on_ready=ready, events=True
        ).run()
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def mark_local_environment(environ: MutableMapping[str, str]) -> None:
    """Telemetry from `up` says `deployment.environment.name=local` unless told otherwise."""
    attributes = environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    if "deployment.environment" not in attributes:
        local = "deployment.environment.name=local"
        environ["OTEL_RESOURCE_ATTRIBUTES"] = f"{attributes},{local}" if attributes else local


def telemetry_summary(environ: Mapping[str, str]) -> str:
    """Where telemetry goes, for the banner."""
    from functions.core.telemetry import exported_signals

    signals = exported_signals(environ)
    if not signals:
        return "off (set OTEL_EXPORTER_OTLP_ENDPOINT to export traces, metrics and logs)"
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "per-signal endpoints"
    return f"{', '.join(signals)} over OTLP/HTTP to {endpoint}"


def ensure_port_free(host: str, port: int) -> None:
    """Fail in a line, before the database starts, when the address is taken."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        # gunicorn binds with SO_REUSEADDR too, so a socket in TIME_WAIT is no obstacle.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PlatformError(
                f"todo-platform: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None


def mint_local_token(url: str) -> tuple[str, int]:
    """A read-write token for `local`, and the number the next todo of `local` will get."""
    from functions.core.auth import SCOPES, create_token
    from functions.core.db import Database

    db = Database(url, name="todo-platform up")
    try:
        token = create_token(db, LOCAL_OWNER, SCOPES, name="todo-platform up")
        row = db.read(
            lambda c: c.one(
                "SELECT last_number FROM owner_counters WHERE owner = :owner", owner=LOCAL_OWNER
            )
        )
    finally:
        # Nothing may stay open across gunicorn's fork.
        db.close_all()
    return token, (row["last_number"] if row else 0) + 1


def base_url(host: str, port: int) -> str:
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def curl_examples(url: str, number: int) -> list[str]:
    """Shell commands that work as printed, in order, once TOKEN is exported."""
    auth = '-H "Authorization: Bearer $TOKEN"'
    todos = f"{url}/api/v1/todos"
    return [
        f"curl -sS -i -X POST {todos} {auth} -H 'Content-Type: application/json' "
        f"-d '{EXAMPLE_TODO}'",
        f"curl -sS -i '{todos}?status=open' {auth}",
        f"curl -sS -i {todos}/{number} {auth}",
        f"curl -sS -i -X POST {todos}/{number}/complete {auth}",
        f"curl -sS -i -X DELETE {todos}/{number} {auth}",
    ]


def functions_off() -> dict[str, list[str]]:
    """The functions whose settings are unset, each with the settings it needs: off here."""
    from functions.core.settings import missing
    from functions.registry import FUNCTIONS

    return {spec.name: absent for spec in FUNCTIONS if (absent := missing(spec.requires))}


def banner(url: str, token: str, number: int, database: LocalDatabase) -> str:
    from functions.registry import FUNCTIONS

    served = ", ".join(spec.name for spec in FUNCTIONS if spec.routes)
    off = [f"{name} (set {', '.join(absent)})" for name, absent in functions_off().items()]
    if off:
        served += "\n  off until configured: " + "; ".join(off)
    examples = "\n".join("  " + line for line in curl_examples(url, number))
    kept = ""
    if database.embedded_in is not None:
        kept = f" (kept between runs)\n             DATABASE_URL={database.url}"
    return f"""
todo-platform is ready at {url}
  functions: {served}
  database:  {database.describe()}{kept}
  OpenAPI:   {url}/api/v1/openapi.json
  MCP:       {url}/mcp (Streamable HTTP; send the token as a bearer token)
  health:    {url}/healthz  {url}/readyz  {url}/<function>/healthz
  events:    POST {url}/broker (CloudEvents, routed as knative/ says);
             recent deliveries: todo-platform events, or {url}/broker/deliveries
  telemetry: {telemetry_summary(os.environ)}

A read-write token for owner "{LOCAL_OWNER}" (more: todo-platform token create --owner NAME):

  export TOKEN={token}

Try it (create makes todo number {number}, the one the next commands use):

{examples}

Connect an assistant over MCP (Claude Desktop, VS Code, Python: docs/mcp.md), e.g.:

{mcp_example(url)}

Ctrl-C stops the platform; the data stays for the next run.
"""


def mcp_example(url: str) -> str:
    """Claude Code's one-liner for this platform's MCP endpoint, once TOKEN is exported."""
    return (
        f"  claude mcp add --transport http todo-platform {url}/mcp "
        '--header "Authorization: Bearer $TOKEN"'
    )
