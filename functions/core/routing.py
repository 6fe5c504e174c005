"""Pure path matching for route templates like `/api/v1/todos/{id}/complete`."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

_PARAM = re.compile(r"\{(\w+)\}")
# Any other method is `_OTHER` in spans and metrics, as the conventions say: bounded labels.
KNOWN_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"))


def compile_template(template: str) -> re.Pattern[str]:
    pattern = ""
    last = 0
    for m in _PARAM.finditer(template):
        pattern += re.escape(template[last : m.start()]) + f"(?P<{m.group(1)}>[^/]+)"
        last = m.end()
    pattern += re.escape(template[last:])
    return re.compile(f"^{pattern}$")


@dataclass(frozen=True)
class Match(Generic[T]):
    target: T | None  # None when the path matched but not the method
    params: dict[str, str]
    allowed: tuple[str, ...]


class Router(Generic[T]):
    """Finds the target for (method, path); tells 404 apart from 405."""

    def __init__(self, routes: Iterable[tuple[str, str, T]]) -> None:
        self._routes = [(m.upper(), compile_template(p), t) for m, p, t in routes]

    def match(self, method: str, path: str) -> Match[T] | None:
        allowed: list[str] = []
        params: dict[str, str] = {}
        for route_method, pattern, target in self._routes:
            m = pattern.match(path)
            if m is None:
                continue
            if route_method == method.upper():
                return Match(target, m.groupdict(), (route_method,))
            allowed.append(route_method)
            params = m.groupdict()
        if allowed:
            return Match(None, params, tuple(allowed))
        return None
