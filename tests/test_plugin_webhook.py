"""webhook plugin: JSON POST to a local server (127.0.0.1 only), retry on 5xx, no retry on 4xx, timeout."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
from footsort.plugins.bundled.webhook import check_url, post_json

from footsort.plugins.events import FileReviewed, FileSorted
from footsort.plugins.host import PluginHost
from footsort.system.config import Config, PluginsSection


class Server:
    """A local HTTP server answering each POST with the next scripted status (then 200)."""

    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.delay = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers["Content-Length"])
                owner.bodies.append(json.loads(self.rfile.read(length)))
                owner.headers.append(dict(self.headers))
                time.sleep(owner.delay)
                self.send_response(owner.statuses.pop(0) if owner.statuses else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_posts_the_event_as_json_through_the_host(server: Server) -> None:
    settings = {"url": server.url, "events": ["file_reviewed"]}
    host = PluginHost.from_config(replace(Config(), plugins=PluginsSection(enabled=("webhook",), settings={"webhook": settings})))
    assert host.running == ("webhook",), host.problems
    host.emit(FileSorted(label="tsinelas"))  # not chosen
    host.emit(FileReviewed(label="sapatos", confidence=0.6, reason="low confidence"))
    host.close()
    assert len(server.bodies) == 1
    assert server.bodies[0]["event"] == "file_reviewed" and server.bodies[0]["confidence"] == 0.6
    assert server.headers[0]["Content-Type"] == "application/json"


def test_retries_5xx_then_succeeds(server: Server) -> None:
    server.statuses = [503, 500]
    pauses: list[float] = []
    assert post_json(server.url, {"a": 1}, retries=3, backoff=0.5, sleep=pauses.append) == 200
    assert len(server.bodies) == 3 and pauses == [0.5, 1.0]


def test_gives_up_after_retries_and_does_not_retry_4xx(server: Server) -> None:
    server.statuses = [502] * 10
    with pytest.raises(RuntimeError, match="HTTP 502"):
        post_json(server.url, {}, retries=2, sleep=lambda s: None)
    assert len(server.bodies) == 3
    server.statuses, server.bodies = [404], []
    with pytest.raises(RuntimeError, match="HTTP 404"):
        post_json(server.url, {}, retries=3, sleep=lambda s: None)
    assert len(server.bodies) == 1


def test_timeout_and_refused_connection(server: Server) -> None:
    server.delay = 1.0
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="failed after 2 attempt"):
        post_json(server.url, {}, timeout=0.2, retries=1, sleep=lambda s: None)
    assert time.monotonic() - start < 0.9
    with pytest.raises(RuntimeError, match="failed after 1 attempt"):
        post_json("http://127.0.0.1:9/nothing", {}, retries=0)


def test_url_must_be_http() -> None:
    assert check_url("https://example.org/x") == "https://example.org/x"
    with pytest.raises(ValueError, match="http:// or https://"):
        check_url("ftp://x")
    host = PluginHost.from_config(replace(Config(), plugins=PluginsSection(enabled=("webhook",))))
    assert "plugins.webhook.url = ''" in host.problems["webhook"]
