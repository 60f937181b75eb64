"""webhook: POST each event as JSON to a URL (Home Assistant, ntfy, n8n, your own server), with retry and timeout.

    [plugins]
    enabled = ["webhook"]
    [plugins.webhook]
    url = "http://127.0.0.1:8123/api/webhook/footsort"
    events = ["file_reviewed", "model_promoted"]

The body is the event as JSON, e.g. {"event": "file_sorted", "label": "tsinelas", "confidence": 0.97, ...}.
Connection errors, timeouts, HTTP 5xx, 408 and 429 are retried with doubling pauses; other HTTP errors are not.
Credentials in the URL (https://user:password@host/...) are sent as HTTP basic auth. The URL is a secret
(webhook paths and query tokens are passwords): messages and logs show only its scheme and host.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import unquote, urlparse, urlunparse

from footsort import __version__
from footsort.plugins.events import EVENT_NAMES, Event, to_dict
from footsort.plugins.host import PluginAPI
from footsort.system.safe_text import add_secret, add_secret_url, redacted_url

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Settings:
    """[plugins.webhook]"""

    url: str = ""  # where to POST (http:// or https://); required
    events: tuple[str, ...] = ()  # event names to send; empty: all
    timeout: float = 5.0  # seconds for one attempt
    retries: int = 3  # further attempts after a failed one
    backoff: float = 1.0  # seconds before the first retry; doubles each time


def check_url(url: str) -> str:
    """The URL when it is http(s) with a host; else ValueError saying what to set."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"plugins.webhook.url = {redacted_url(url)!r} is not valid: set it to an http:// or https:// URL")
    return url


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """The URL without user:password@, and the Authorization header that carries them instead."""
    parsed = urlparse(url)
    if parsed.username is None and parsed.password is None:
        return url, {}
    host = parsed.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parsed.port}" if parsed.port else "")
    user, password = unquote(parsed.username or ""), unquote(parsed.password or "")
    token = base64.b64encode(f"{user}:{password}".encode("utf-8")).decode("ascii")
    add_secret(token)
    return urlunparse(parsed._replace(netloc=netloc)), {"Authorization": f"Basic {token}"}


def post_json(url: str, payload: Any, timeout: float = 5.0, retries: int = 3, backoff: float = 1.0,
              sleep: Callable[[float], None] = time.sleep) -> int:
    """POST `payload` as JSON; retry transient failures; return the HTTP status or raise the last error."""
    body = json.dumps(payload).encode("utf-8")
    target, auth = split_credentials(url)
    headers = {"Content-Type": "application/json", "User-Agent": f"footsort/{__version__}", **auth}
    shown = redacted_url(url)  # never the URL itself in a message: its path and query are secrets too
    for attempt in range(retries + 1):
        request = urllib.request.Request(target, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            if exc.code not in RETRY_STATUS or attempt == retries:
                raise RuntimeError(f"POST {shown} answered HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt == retries:
                reason = getattr(exc, "reason", exc)
                raise RuntimeError(f"POST {shown} failed after {retries + 1} attempt(s): {reason}") from None
        sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def register(api: PluginAPI) -> None:
    """POST the chosen events to the URL."""
    settings = api.settings_as(Settings)
    url = check_url(settings.url)
    add_secret_url(url)  # whatever else quotes it (an HTTP library's error, a traceback) shows scheme://host/***

    def send(event: Event) -> None:
        status = post_json(url, to_dict(event), settings.timeout, settings.retries, settings.backoff)
        api.log.debug("{} -> HTTP {}", event.name, status)

    for name in settings.events or EVENT_NAMES:
        api.on(name, send)
