"""Small local stand-ins for Slack's Web API and an OpenAI-compatible server, for the tests.

Each is a real HTTP server on 127.0.0.1 that speaks the real wire format and
records every request it receives. The Slack one answers `chat.postMessage`
as Slack does (and `response_url` posts), optionally with scripted 429s; the
LLM one answers `/v1/chat/completions` from a script of replies (tool calls or
text), each optionally delayed, so a test decides exactly what the model does.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.slack_requests import BOT_TOKEN, NOTIFY_CHANNEL, SIGNING_SECRET


@dataclass
class Received:
    """One request a stand-in got: path, headers and parsed JSON body."""

    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)
    status: int = 0  # what the stand-in answered
    answer: Any = None  # and with what body


class _Recorder:
    """A threading HTTP server that records requests and answers through `answer`.

    On a free port, or on `port` (a test that first leaves that port unanswered, as during
    an outage, then starts the stand-in there).
    """

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self._changed = threading.Condition()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                request = Received(self.path, dict(self.headers.items()), body)
                status, headers, payload = recorder.answer(request)
                request.status, request.answer = status, payload
                with recorder._changed:
                    recorder.received.append(request)
                    recorder._changed.notify_all()
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # A client that gave up waiting (a timeout test) has nothing more to hear.
                with contextlib.suppress(BrokenPipeError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def answer(self, request: Received) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError

    def wait_for(
        self, predicate: Callable[[Received], bool], count: int = 1, timeout: float = 20
    ) -> list[Received]:
        """The first `count` recorded requests matching predicate, waiting up to timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [r for r in self.received if predicate(r)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"expected {count} matching requests, got {len(found)}: "
                        f"{[r.path for r in self.received]}"
                    )
                self._changed.wait(left)

    def matching(self, predicate: Callable[[Received], bool]) -> list[Received]:
        with self._changed:
            return [r for r in self.received if predicate(r)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlackStandIn(_Recorder):
    """Slack's Web API at `<url>/api/` and response URLs at `<url>/response/<anything>`."""

    def __init__(self, port: int = 0, bot_token: str = "xoxb-test-token") -> None:
        self.bot_token = bot_token  # the only token it takes (tests/slack_requests.py BOT_TOKEN)
        self.rate_limits: dict[str, deque[float]] = {}
        self._ts = 0
        super().__init__(port)

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    def rate_limit(self, method: str, *retry_after: float) -> None:
        """Answer the next calls of method with 429 and these Retry-After values."""
        self.rate_limits.setdefault(method, deque()).extend(retry_after)

    def answer(self, request: Received) -> tuple[int, dict[str, str], Any]:
        if request.path.startswith("/response/"):
            return 200, {"Content-Type": "text/html"}, b"ok"
        method = request.path.removeprefix("/api/")
        pending = self.rate_limits.get(method)
        if pending:
            retry_after = pending.popleft()
            return 429, {"Retry-After": f"{retry_after:g}"}, {"ok": False, "error": "ratelimited"}
        if request.headers.get("Authorization", "") != f"Bearer {self.bot_token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        if method == "chat.postMessage":
            self._ts += 1
            channel = (request.body or {}).get("channel", "")
            ts = f"{int(time.time())}.{self._ts:06d}"
            return 200, {}, {"ok": True, "channel": channel, "ts": ts, "message": request.body}
        return 200, {}, {"ok": False, "error": "unknown_method"}

    def posts(self) -> list[Received]:
        """Every chat.postMessage call, rate-limited attempts included."""
        return self.matching(lambda r: r.path == "/api/chat.postMessage")

    def delivered(self) -> list[Received]:
        """The chat.postMessage calls Slack accepted: the messages people see."""
        return [p for p in self.posts() if p.status == 200 and p.body.get("channel")]

    def responses(self, name: str) -> list[Received]:
        return self.matching(lambda r: r.path == f"/response/{name}")


Reply = dict[str, Any]
Script = Callable[[dict[str, Any]], Reply]


def tool_call(name: str, arguments: dict[str, Any], call_id: str = "call_1") -> Reply:
    """An assistant message asking to call one tool, as the Chat Completions API sends it."""
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


def text_reply(text: str) -> Reply:
    return {"role": "assistant", "content": text}


class OpenAIStandIn(_Recorder):
    """`POST /v1/chat/completions` answered from a script: replies in order, each maybe delayed."""

    def __init__(self) -> None:
        self.script: deque[tuple[float, Reply | Script]] = deque()
        super().__init__()

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def then(self, reply: Reply | Script, delay: float = 0.0) -> OpenAIStandIn:
        """Queue the next reply (or a function of the request that makes it)."""
        self.script.append((delay, reply))
        return self

    def completions(self) -> list[Received]:
        return self.matching(lambda r: r.path == "/v1/chat/completions")

    def answer(self, request: Received) -> tuple[int, dict[str, str], Any]:
        if request.path != "/v1/chat/completions":
            return 404, {}, {"error": {"message": "not found", "type": "invalid_request_error"}}
        if not self.script:
            return 500, {}, {"error": {"message": "the script is empty", "type": "server_error"}}
        delay, reply = self.script.popleft()
        if delay:
            time.sleep(delay)
        message = reply(request.body) if callable(reply) else reply
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        # Roughly what a tokenizer would count: four characters a token.
        prompt = max(1, len(json.dumps(request.body.get("messages", []))) // 4)
        completion = max(1, len(json.dumps(message)) // 4)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        return (
            200,
            {"Content-Type": "application/json"},
            {
                "id": f"chatcmpl-{len(self.received) + 1}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": request.body.get("model", ""),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            },
        )


def up_environment(
    slack: SlackStandIn, llm: OpenAIStandIn, agent_timeout: float
) -> dict[str, str | None]:
    """What `todo-platform up` needs for the Slack functions and the agent, at these stand-ins.

    MCP_URL is left out (None unsets it): up points the agent at its own /mcp.
    """
    return {
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "SLACK_NOTIFY_CHANNEL": NOTIFY_CHANNEL,
        "OPENAI_BASE_URL": llm.base_url,
        "OPENAI_MODEL": "test-model",
        "AGENT_TIMEOUT_SECONDS": str(agent_timeout),
        "MCP_URL": None,
    }
