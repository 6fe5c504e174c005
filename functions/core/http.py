"""How a function is served over HTTP: routing, health checks, auth, bodies and problem documents.

`http_function(name)` turns a registry entry into the functions-framework target.
Every error, whatever its cause, leaves as an RFC 9457 problem document.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

import flask

from functions.core import metrics, telemetry
from functions.core.auth import Principal, authenticate
from functions.core.db import Database, database
from functions.core.errors import (
    BadRequest,
    FieldError,
    InternalError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from functions.core.logs import configure_logging
from functions.core.routing import KNOWN_METHODS, Match, Router
from functions.core.settings import require, settings
from functions.core.tracing import continue_trace
from functions.registry import BY_NAME, FunctionSpec, Route

if TYPE_CHECKING:
    from pydantic import BaseModel, ValidationError

    from functions.core.consumer import EventConsumer
    from functions.core.outbox import Outbox

# pydantic is imported by the functions whose bodies or queries are models, not here:
# todo-get answers without it (a cold start pays ~75 ms to import it).
M = TypeVar("M", bound="BaseModel")
log = logging.getLogger("todo_platform.http")
access = logging.getLogger("todo_platform.access")

MAX_BODY_BYTES = 64 * 1024
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = ".".join(str(part) for part in err["loc"]) or "body"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        errors.append(FieldError(prefix + loc, message))
    return errors


class Call:
    """One HTTP request to a function: its path parameters, caller and body."""

    def __init__(
        self, request: flask.Request, params: dict[str, str], db: Database, source: str = ""
    ) -> None:
        self.request = request
        self.params = params
        self.db = db
        self.source = source
        self._outbox: Outbox | None = None

    @property
    def outbox(self) -> Outbox:
        """Where this request's writes record their facts; published once it is answered."""
        if self._outbox is None:
            from functions.core.outbox import Outbox  # readers never load the event catalog

            self._outbox = Outbox(self.source)
        return self._outbox

    @cached_property
    def principal(self) -> Principal:
        config = settings()
        return authenticate(
            self.db, self.request.headers, config.internal_token, config.token_cache_seconds
        )

    def body(self, model: type[M]) -> M:
        """The JSON body validated as model: 413, 415, 400 (syntax) or 422 (fields)."""
        request = self.request
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
        data = request.stream.read(MAX_BODY_BYTES + 1)
        if len(data) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
        from pydantic import ValidationError

        mimetype = request.mimetype
        if mimetype != JSON and not mimetype.endswith("+json"):
            raise UnsupportedMediaType(
                "send a JSON body with Content-Type: application/json",
                errors=[FieldError("Content-Type", f"expected {JSON}, got {mimetype or 'none'}")],
            )
        try:
            return model.model_validate_json(data)
        except ValidationError as exc:
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                raise BadRequest(
                    "the body is not valid JSON", errors=[FieldError("body", "malformed JSON")]
                ) from None
            raise ValidationFailed(
                "the body has invalid fields", errors=field_errors(exc)
            ) from None

    def query(self, model: type[M]) -> M:
        """The query string validated as model; repeated or unknown parameters are a 400."""
        from pydantic import ValidationError

        args = self.request.args
        values: dict[str, str] = {}
        for name in args:
            given = args.getlist(name)
            if len(given) > 1:
                raise BadRequest(
                    "a query parameter was given twice",
                    errors=[FieldError(name, "give this parameter once")],
                )
            values[name] = given[0]
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            raise BadRequest("the query has invalid parameters", errors=field_errors(exc)) from None


def json_response(
    payload: BaseModel | Mapping[str, Any],
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> flask.Response:
    dump = getattr(payload, "model_dump_json", None)  # a BaseModel
    body = dump() if dump is not None else json.dumps(payload, separators=(",", ":"))
    return flask.Response(body, status=status, headers=dict(headers or {}), mimetype=JSON)


def json_text_response(
    body: str, status: int = 200, headers: Mapping[str, str] | None = None
) -> flask.Response:
    """A JSON body that is already text (PostgreSQL wrote it: todo_store.TODO_JSON)."""
    return flask.Response(body, status=status, headers=dict(headers or {}), mimetype=JSON)


def problem_response(error: ProblemError, instance: str) -> flask.Response:
    return flask.Response(
        error.body(instance),
        status=error.status,
        headers=error.headers,
        mimetype=PROBLEM_JSON,
    )


Handler = Callable[[Call], flask.Response]


def _load(ref: str) -> Handler:
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


def health(path: str) -> flask.Response | None:
    """`/healthz`: the process runs; `/readyz`: it can reach the database."""
    if path == "/healthz":
        return json_response({"status": "ok"})
    if path == "/readyz":
        try:
            database().ping()
        except Exception:
            log.warning("readiness check failed: database unreachable")
            return problem_response(Unavailable("the database is not reachable"), path)
        telemetry.ready()
        return json_response({"status": "ready"})
    return None


def publish_after(response: flask.Response, db: Database, outbox: Outbox | None) -> flask.Response:
    """Hand the request's facts to the process's publisher once its answer is sent: the
    caller never waits on a broker, nor the next request on this thread."""
    if outbox is not None and outbox.written:
        sink = settings().k_sink
        ids, outbox.written = outbox.written, []
        if sink:
            from functions.core.publisher import publisher

            # With telemetry on, each send's span belongs to the request's trace and function,
            # though the request's span has ended by then: it runs in a copy of its context.
            # Off, nothing reads it (the row carries its traceparent), and a copy would keep
            # the whole request (flask's context) alive while its rows wait in the queue.
            context = contextvars.copy_context() if telemetry.enabled() else None
            response.call_on_close(lambda: publisher(db, sink).submit(ids, context))
    return response


def _consumer(spec: FunctionSpec) -> EventConsumer | None:
    if not spec.events:
        return None
    from functions.core.consumer import EventConsumer  # only functions that take events

    return EventConsumer(spec.events, spec.source, spec.name)


def http_function(name: str) -> Callable[[flask.Request], flask.Response]:
    """The functions-framework target for the registry entry `name`.

    Reads the settings now, so a missing one stops the function at start with one line.
    Every request but the health checks gets a server span (continuing the caller's
    `traceparent`), a duration metric and one access log line.
    """
    spec = BY_NAME[name]
    config = require(spec.requires)
    configure_logging(config.log_level, config.log_format)
    telemetry.configure(name)
    router: Router[Route] = Router((r.method, r.path, r) for r in spec.routes)
    handlers: dict[str, Handler] = {}
    consumer = _consumer(spec)

    def dispatch(request: flask.Request, match: Match[Route] | None) -> flask.Response:
        path = request.path
        try:
            if match is None:
                raise NotFound(f"no route for {path}")
            if match.target is None:
                raise MethodNotAllowed(
                    f"{request.method} is not allowed here",
                    headers={"Allow": ", ".join(match.allowed)},
                )
            route = match.target
            handler = handlers.get(route.handler)
            if handler is None:
                handler = handlers.setdefault(route.handler, _load(route.handler))
            call = Call(request, match.params, database(), spec.source)
            with continue_trace(request.headers.get("traceparent")):
                return publish_after(handler(call), call.db, call._outbox)
        except ProblemError as error:
            return problem_response(error, path)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, path)
            internal = InternalError("an internal error occurred; it is logged")
            return problem_response(internal, path)

    def receive(request: flask.Request) -> flask.Response:
        """A CloudEvent delivery: its entry span is the consumer's, continuing the event's trace."""
        assert consumer is not None
        try:
            return consumer.receive(request, database())
        except ProblemError as error:
            return problem_response(error, request.path)
        except Exception:
            log.exception("unhandled error receiving an event")
            internal = InternalError("an internal error occurred; it is logged")
            return problem_response(internal, request.path)

    def handle(request: flask.Request) -> flask.Response:
        path = request.path
        checked = health(path)
        if checked is not None:
            return checked
        if consumer is not None and request.method == "POST" and path == "/":
            return receive(request)
        started = time.perf_counter()
        method = request.method if request.method in KNOWN_METHODS else "_OTHER"
        match = router.match(request.method, path)
        route = match.target.path if match is not None and match.target is not None else None
        with telemetry.span(
            f"{method} {route}" if route else method,
            "server",
            {
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "url.scheme": request.scheme,
            },
            parent=telemetry.extract(request.headers),
            service=name,
            measures=(metrics.HTTP_SERVER_DURATION,),
        ) as span:
            response = dispatch(request, match)
            status = response.status_code
            span.set("http.response.status_code", status)
            if status >= 500:
                span.fail(str(status))
            access.info(
                "%s %s %s",
                method,
                path,
                status,
                extra={
                    "method": method,
                    "route": route,
                    "path": path,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
        telemetry.ready()
        return response

    handle.__name__ = handle.__qualname__ = spec.target
    if flask.has_app_context():  # functions-framework imports the target inside its app
        # Its catch-all rule (`/<path:path>`) matches no path with a newline in it (`%0A`),
        # which Flask would answer with an HTML 404 without calling the function: such a
        # request goes through `handle` like any other and gets a problem document.
        flask.current_app.register_error_handler(404, lambda _: handle(flask.request))
    return handle
