"""Text that is safe to show: control characters escaped, credentials and secrets hidden.

`shown(x)` is what every log line and every printed file name goes through (footsort.system.logs applies it
to every message; the CLI to the names it prints). File names come from anyone: a name holding a
newline plus `ERROR ...` (or journald's `<0>` priority prefix) must not forge a log line, and a name
that is not valid UTF-8 (kept losslessly as surrogateescape text) must not crash a log sink.
A backslash is left as it is, so names stay readable; an escape shows where a name was odd.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any
from urllib.parse import urlsplit

MASK = "***"

# C0 and C1 controls, DEL, lone surrogates (undecodable bytes), line/paragraph separators, bidi overrides
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#@]*@")
_QUERY_VALUE = re.compile(r"([?&;][^=&;#]*=)[^&;#]*")
_SECRET_WORD = re.compile(
    r"(?i)\b((?:access[_-]?|refresh[_-]?|auth[_-]?|api[_-]?)?(?:token|password|passwd|pwd|secret|api[_-]?key|apikey)"
    r"\s*[=:]\s*)(?!\*\*\*)[^\s&;,'\"]+")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")

_secrets: dict[str, str] = {}  # secret text -> what is shown instead
_secrets_lock = threading.Lock()


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode keeps it
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(value: Any) -> str:
    """`value` as one line of text: control characters, undecodable bytes and bidi overrides escaped."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE.sub(_escape, text)


def redacted_url(url: str) -> str:
    """A URL fit for a log line: scheme and host (port too), never credentials, path or query."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    hidden = "/" + MASK if (parts.path.strip("/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{port}{hidden}"


def add_secret(secret: str, shown_as: str = MASK) -> None:
    """From now on, show `secret` as `shown_as` wherever it appears in a log line or a message."""
    if secret and len(secret) >= 4:  # a short "secret" would blank out ordinary words
        with _secrets_lock:
            _secrets[secret] = shown_as


def add_secret_url(url: str) -> None:
    """A URL whose every part may be secret (a webhook): shown as scheme://host/*** from now on."""
    shown_as = redacted_url(url)
    add_secret(url, shown_as)
    try:
        parts = urlsplit(url)
    except ValueError:
        return
    if parts.path.strip("/"):
        add_secret(parts.path.rstrip("/"), "/" + MASK)  # the path alone, e.g. in an HTTP library's message


def forget_secrets() -> None:
    """Drop every secret added (tests)."""
    with _secrets_lock:
        _secrets.clear()


def _clean_url(match: re.Match[str]) -> str:
    url = match.group()
    if _USERINFO.match(url):  # a URL that carries credentials is a secret as a whole (webhooks): host only
        shown_as = redacted_url(url)
        return shown_as.replace("://", f"://{MASK}@", 1) if shown_as != MASK else MASK
    return _QUERY_VALUE.sub(lambda m: m.group(1) + MASK, url)


def redact(text: str) -> str:
    """`text` with known secrets, URL credentials, query values, tokens and passwords replaced by ***."""
    with _secrets_lock:
        known = sorted(_secrets.items(), key=lambda kv: -len(kv[0]))  # longest first: a URL before its path
    for secret, shown_as in known:
        if secret in text:
            text = text.replace(secret, shown_as)
    if "://" in text:
        text = _URL.sub(_clean_url, text)
    text = _SECRET_WORD.sub(lambda m: m.group(1) + MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + " " + MASK, text)


def shown(value: Any) -> str:
    """`value` as it may be shown to anyone: secrets hidden, then control characters escaped."""
    return redact(printable(value))
