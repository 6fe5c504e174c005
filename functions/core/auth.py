"""Bearer API tokens: minting (only a hash is stored), checking, scopes, service credential."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from events.patterns import OWNER_PATTERN
from functions.core.db import Database
from functions.core.errors import BadRequest, FieldError, Forbidden, Unauthorized

READ = "todos:read"
WRITE = "todos:write"
SCOPES = (READ, WRITE)
TOKEN_PREFIX = "tp_"
# Set by a function acting for a user (MCP → todo); honoured only with the internal credential.
ACTING_OWNER_HEADER = "X-Todo-Owner"
_OWNER = re.compile(OWNER_PATTERN)  # the same rule the event catalog states


@dataclass(frozen=True)
class Principal:
    """Who is calling: the owner whose todos they may touch, and with which scopes."""

    owner: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(
                f"this token lacks the {scope} scope",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate_owner(owner: str) -> str:
    if not _OWNER.fullmatch(owner):  # fullmatch: `$` alone would let a final newline through
        raise ValueError("an owner is 1–200 characters without control characters")
    return owner


def create_token(db: Database, owner: str, scopes: Iterable[str] = SCOPES, name: str = "") -> str:
    """Mint a token for owner; returns it once (only its hash is stored)."""
    validate_owner(owner)
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise ValueError(f"scopes must be among {', '.join(SCOPES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.transaction(
        lambda c: c.execute(
            "INSERT INTO api_tokens (token_hash, owner, scopes, name) "
            "VALUES (:h, :o, CAST(:s AS text[]), :n)",
            h=hash_token(token),
            o=owner,
            s=wanted,
            n=name or None,
        )
    )
    return token


def _unauthorized(detail: str, error: str | None = None) -> Unauthorized:
    challenge = 'Bearer realm="todo-platform"'
    if error:
        challenge += f', error="{error}"'
    return Unauthorized(detail, headers={"WWW-Authenticate": challenge})


def bearer_token(headers: Mapping[str, str]) -> str:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if not value:
        raise _unauthorized("send Authorization: Bearer <token>")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be 'Bearer <token>'", "invalid_request")
    return token.strip()


class TokenCache:
    """Tokens PostgreSQL accepted lately, by hash: one query per token per `seconds`, not per
    request. Only acceptances are kept (an unknown or revoked token always asks again), so
    a new token works at once and a revoked one stops within `seconds`.
    """

    MAX_ENTRIES = 4096

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def get(self, token_hash: str) -> Principal | None:
        entry = self._entries.get(token_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token_hash: str, principal: Principal, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                now = time.monotonic()
                self._entries = {k: v for k, v in self._entries.items() if v[0] >= now}
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
            self._entries[token_hash] = (time.monotonic() + seconds, principal)


_accepted = TokenCache()


def is_service_credential(token: str, internal_token: str | None) -> bool:
    """Whether `token` is the internal service credential (unset: nothing is)."""
    return bool(internal_token) and hmac.compare_digest(token.encode(), internal_token.encode())


def known_principal(
    headers: Mapping[str, str], internal_token: str | None, cache_seconds: float = 0
) -> Principal | None:
    """The caller if that needs no database: the service credential, or a token accepted
    within `cache_seconds`; None when PostgreSQL must be asked (`authenticate`).

    An async server checks here first on its event loop and sends only the rest to a
    thread: a hop per request costs more than this whole check.
    """
    token = bearer_token(headers)
    if is_service_credential(token, internal_token):
        owner = headers.get(ACTING_OWNER_HEADER, "")
        try:
            validate_owner(owner)
        except ValueError as exc:
            raise BadRequest(
                "the service credential needs the acting owner",
                errors=[FieldError(ACTING_OWNER_HEADER, str(exc))],
            ) from None
        return Principal(owner, frozenset(SCOPES))
    return _accepted.get(hash_token(token)) if cache_seconds > 0 else None


def authenticate(
    db: Database,
    headers: Mapping[str, str],
    internal_token: str | None,
    cache_seconds: float = 0,
) -> Principal:
    """Check the bearer token before anything else is read; 401 when missing or unknown."""
    principal = known_principal(headers, internal_token, cache_seconds)
    if principal is not None:
        return principal
    token_hash = hash_token(bearer_token(headers))
    row = db.read(
        lambda c: c.one(
            "SELECT owner, scopes FROM api_tokens WHERE token_hash = :h AND revoked_at IS NULL",
            h=token_hash,
        )
    )
    if row is None:
        raise _unauthorized("the token is not valid", "invalid_token")
    principal = Principal(row["owner"], frozenset(row["scopes"]))
    _accepted.put(token_hash, principal, cache_seconds)
    return principal
