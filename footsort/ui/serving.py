"""Serving the review page: its listening socket, its URL with the token, and uvicorn, either in the
foreground (`footsort ui`) or on a thread beside the watch daemon (`footsort watch --ui`).

Both ways the page is the same app with the same rules (footsort.ui.server: token, CSRF, Host check), and
both leave their address in a runtime file while they serve (footsort.ui.runtime).
Needs the `ui` extra (starlette, uvicorn); `require()` says how to install it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from footsort.errors import FootsortError
from footsort.ui.runtime import Kind, PageInfo

DEFAULT_PORT = 8765
LOOPBACK = ("127.0.0.1", "localhost", "::1")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def require() -> None:
    """FootsortError naming the missing package when the `ui` extra is not installed."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise FootsortError(f"the review page needs {exc.name}: pip install 'footsort[ui]' "
                            "(starlette and uvicorn)") from None


def exposure_warning(host: str) -> str | None:
    """The warning to show when the page listens beyond this machine (None on loopback)."""
    if host in LOOPBACK:
        return None
    return (f"warning: listening on {host}: other machines on the network can reach the review page; anyone with "
            "its URL (its token) can move your photos. Use the default 127.0.0.1 unless you need this.")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listen(host: str, wanted: int) -> socket.socket:
    """A socket listening on host:`wanted`, or on a free port when that one is taken (0: any port)."""
    for port in ((wanted, 0) if wanted else (0,)):
        s = socket.socket(_family(host), socket.SOCK_STREAM)
        if os.name != "nt":  # restart at once on the same port (a closed connection's TIME_WAIT), as uvicorn does
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            s.listen(128)
        except OSError:
            s.close()
            continue
        s.set_inheritable(False)
        return s
    raise FootsortError(f"cannot listen on {host}: no free port; pass another port")


class Page:
    """The review page over one library, listening on an address: its service, token and app."""

    def __init__(self, service: Any, access: Any, sock: socket.socket, host: str) -> None:
        self.service = service
        self.access = access
        self.sock = sock
        self.host = host
        self.port: int = sock.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @classmethod
    def open(cls, lib: Any, plugins: object, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
             **service_kwargs: Any) -> "Page":
        """Listen on host:port (another free port when it is taken) and open the page's service over `lib`."""
        require()
        from footsort.ui.server import Access
        from footsort.ui.service import ReviewService

        sock = listen(host, port)
        try:
            service = ReviewService.open(lib, plugins, **service_kwargs)
        except BaseException:
            sock.close()
            raise
        return cls(service, Access.for_address(host, sock.getsockname()[1]), sock, host)

    @property
    def url(self) -> str:
        """The address to open, with the token."""
        return self.access.url(self.host, self.port)

    @property
    def address(self) -> str:
        """The address without the token."""
        return self.url.split("?", 1)[0]

    def info(self, kind: Kind) -> PageInfo:
        """What the runtime file says about this page."""
        return PageInfo(self.url, self.address, os.getpid(), kind, tuple(map(str, self.service.lib.roots)), time.time())

    def _uvicorn(self) -> Any:
        import uvicorn

        from footsort.ui.server import create_app

        config = uvicorn.Config(create_app(self.service, self.access), host=self.host, port=self.port,
                                log_level="warning", access_log=False, server_header=False, proxy_headers=False,
                                lifespan="off", timeout_graceful_shutdown=3)
        self._server = uvicorn.Server(config)
        return self._server

    def serve(self) -> None:
        """Serve in this thread until Ctrl+C or SIGTERM (uvicorn's own handling, as `uvicorn.run`)."""
        try:
            self._uvicorn().run(sockets=[self.sock])
        except KeyboardInterrupt:
            pass

    @contextmanager
    def in_background(self) -> Iterator["Page"]:
        """Serve on a thread while the block runs; then finish the requests in flight and stop."""
        server = self._uvicorn()
        failed: list[BaseException] = []

        def run() -> None:
            try:
                server.run(sockets=[self.sock])
            except BaseException as exc:  # SystemExit from a failed startup, too
                failed.append(exc)

        self._thread = threading.Thread(target=run, name="footsort-review-page", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if failed or not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise FootsortError(f"the review page could not start on {self.address}"
                                    + (f": {failed[0]}" if failed and str(failed[0]) else ""))
            time.sleep(0.02)
        try:
            yield self
        finally:
            self.stop()

    def stop(self) -> None:
        """Ask a background server to stop and wait for it (forcing open connections closed after a while)."""
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT_S)
        self._thread = None

    def close(self) -> None:
        """Stop serving; finish thumbnail work and a running retrain; close the journal and the socket."""
        self.stop()
        try:
            self.service.close()
        finally:
            self.sock.close()
