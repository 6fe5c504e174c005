"""Finds secret values in what a run left behind: log text, raw bytes, decoded OTLP exports.

`leaks(secrets, captured)` looks for every secret, as written and percent-encoded
(as it would sit in a URL or a form body), in every captured text or byte string,
and names each secret found and where. `otlp_texts` turns export requests into
text (every string field, attribute values included) so a secret split across
protobuf framing is still found; the raw bytes are scanned as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import quote

from google.protobuf import text_format
from google.protobuf.message import Message


def forms(secret: str) -> set[bytes]:
    """The byte strings that would give secret away."""
    return {secret.encode(), quote(secret, safe="").encode()}


def leaks(secrets: Mapping[str, str], captured: Mapping[str, str | bytes]) -> list[str]:
    """`<secret name> in <capture name>` for every secret found anywhere in captured."""
    found = []
    for where, content in captured.items():
        data = content.encode() if isinstance(content, str) else content
        for name, secret in secrets.items():
            if any(form in data for form in forms(secret)):
                found.append(f"{name} in {where}")
    return found


def otlp_texts(exports: Iterable[Message]) -> str:
    """Every export request as protobuf text format, unescaped UTF-8, one after another."""
    return "\n".join(text_format.MessageToString(m, as_utf8=True) for m in exports)
