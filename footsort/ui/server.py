"""The review page over HTTP (Starlette): a token on every request, CSRF checks on every POST.

- Every request needs the token: `?token=...` once (the URL `footsort ui` and `footsort ui --url` print), then
  a cookie (HttpOnly, SameSite=Strict), or `Authorization: Bearer ...` for scripts.
- The `Host` header must name the address served (no DNS rebinding).
- State changes are POSTs carrying the page's CSRF token in `X-Footsort-CSRF`, from the page's own
  origin (`Origin` / `Sec-Fetch-Site` when the browser sends them).
- Photos are named by ids from the page's own listing, never by a path.
"""

from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from footsort.ui.service import ReviewService
from footsort.ui.serving import LOOPBACK
from footsort.ui.thumbs import LARGE_SIDE, render

STATIC = Path(__file__).resolve().parent / "static"
CSRF_HEADER = "x-footsort-csrf"
PACK_MAX = 200  # thumbnails per /api/thumbs response


@dataclass(frozen=True)
class Access:
    """Who may use the page: the token, the CSRF token, and the Host names it answers to (None: any)."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    hosts: frozenset[str] | None = None
    cookie: str = "footsort_token"

    @classmethod
    def for_address(cls, host: str, port: int, **kwargs: Any) -> "Access":
        """Access for a server bound to host:port (a wildcard address accepts any Host name)."""
        if host in ("0.0.0.0", "::", ""):
            names = None
        else:
            bare = {host, *LOOPBACK} if host in LOOPBACK else {host}
            names = frozenset(f"[{h}]:{port}" if ":" in h else f"{h}:{port}" for h in bare)
        return cls(hosts=names, cookie=f"footsort_token_{port}", **kwargs)

    def url(self, host: str, port: int) -> str:
        """The URL to open (carries the token)."""
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
        shown = f"[{shown}]" if ":" in shown and not shown.startswith("[") else shown
        return f"http://{shown}:{port}/?{urlencode({'token': self.token})}"


def _same(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a.encode(), b.encode())


class Guard:
    """ASGI middleware: Host check, token (query once, then cookie), CSRF on every non-GET request."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refused = self.check(request)
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def check(self, request: Request) -> Response | None:
        """A refusal, a redirect that sets the cookie, or None to let the request through."""
        a = self.access
        host = (request.headers.get("host") or "").lower()
        if a.hosts is not None and host not in a.hosts:
            return PlainTextResponse(f"unknown Host {host!r}: open the address `footsort ui --url` prints", 421)
        given = request.query_params.get("token")
        if given is not None and request.method in ("GET", "HEAD"):
            if not _same(given, a.token):
                return PlainTextResponse("wrong token (a new one is made at every start): open the URL "
                                         "`footsort ui --url` prints", 403)
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
            response = RedirectResponse(target, 303)
            response.set_cookie(a.cookie, a.token, httponly=True, samesite="strict", path="/")
            return response
        bearer = request.headers.get("authorization", "")
        bearer = bearer[7:] if bearer.lower().startswith("bearer ") else None
        if not (_same(request.cookies.get(a.cookie), a.token) or _same(bearer, a.token)):
            return PlainTextResponse("this page needs its token: open the URL footsort printed when it started, or "
                                     "the one `footsort ui --url` prints (it ends in ?token=...)", 403)
        if request.method not in ("GET", "HEAD"):
            if not _same(request.headers.get(CSRF_HEADER), a.csrf):
                return PlainTextResponse(f"missing or wrong {CSRF_HEADER} header", 403)
            origin = request.headers.get("origin")
            if origin is not None and origin != f"{request.url.scheme}://{host}":
                return PlainTextResponse(f"cross-origin request from {origin} refused", 403)
            if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
                return PlainTextResponse("cross-site request refused", 403)
        return None


def _placeholder() -> FileResponse:
    return FileResponse(STATIC / "placeholder.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "no-cache"})


def create_app(service: ReviewService, access: Access) -> Starlette:
    """The page, its API and its static files, behind the Guard."""
    index_html = (STATIC / "index.html").read_text(encoding="utf-8")

    async def index(request: Request) -> Response:
        html = index_html.replace("{{csrf}}", access.csrf)
        return HTMLResponse(html, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                           "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
                                                                      "frame-ancestors 'none'"})

    async def state(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(service.state), headers={"Cache-Control": "no-store"})

    async def signature(request: Request) -> Response:
        return JSONResponse({"signature": await run_in_threadpool(service.signature)},
                            headers={"Cache-Control": "no-store"})

    async def thumb(request: Request) -> Response:
        photo = service.photo(request.path_params["id"])
        if photo is None:
            return PlainTextResponse("no such photo in the listing", 404)
        content = photo.hash or await run_in_threadpool(service.content, photo)
        if content is None:
            return _placeholder()
        data = service.thumbs.read(content)  # memory or a small file: no thread hop on the common path
        if data is None:
            made = await run_in_threadpool(service.thumbs.get, photo.path, content)
            data = service.thumbs.read(content) if made is not None else None
        if data is None:
            return _placeholder()
        versioned = request.query_params.get("v") == content[:16]
        cache = "private, max-age=31536000, immutable" if versioned else "private, no-cache"
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": cache})

    async def thumbs_pack(request: Request) -> Response:
        """Many cached thumbnails in one response: a 4-byte length, a JSON index, then the JPEGs back to back.

        `ids` is `id.version,id.version,...` (version: the listing's `v`). One request instead of hundreds
        is what opens 500 photos fast; photos whose thumbnail is not made yet are left out (the page asks
        /thumb/{id} for those, which makes them).
        """
        wanted = [i.partition(".") for i in request.query_params.get("ids", "").split(",") if i][:PACK_MAX]
        index, bodies, exact = [], [], True
        for photo_id, _, version in wanted:
            photo = service.photo(photo_id)
            if photo is None or not photo.hash:
                exact = False
                continue
            exact = exact and len(version) >= 8 and photo.hash.startswith(version)
            data = service.thumbs.read(photo.hash)
            if data is not None:
                index.append({"id": photo_id, "v": photo.hash[:16], "len": len(data)})
                bodies.append(data)
            elif service.thumbs.known_bad(photo.hash):
                index.append({"id": photo_id, "v": photo.hash[:16], "len": 0, "bad": True})
            else:
                exact = False
        head = json.dumps(index).encode()
        # the address names every photo's content: when all of it was there, the browser may keep it
        cache = "private, max-age=31536000, immutable" if exact and wanted else "no-store"
        return Response(b"".join([len(head).to_bytes(4, "big"), head, *bodies]),
                        media_type="application/octet-stream", headers={"Cache-Control": cache})

    async def large(request: Request) -> Response:
        photo = service.photo(request.path_params["id"])
        if photo is None:
            return PlainTextResponse("no such photo in the listing", 404)
        data = await run_in_threadpool(render, photo.path, LARGE_SIDE)
        if data is None:
            return _placeholder()
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})

    async def label(request: Request) -> Response:
        body = await _json(request)
        ids, cls = body.get("ids"), body.get("label")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not isinstance(cls, str):
            return JSONResponse({"error": "send {\"ids\": [...], \"label\": \"class\"}"}, 400)
        try:
            results = await run_in_threadpool(service.label, ids, cls)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse({"results": [r.as_json() for r in results]})

    async def undo(request: Request) -> Response:
        results = await run_in_threadpool(service.undo_last)
        return JSONResponse({"results": [r.as_json() for r in results]})

    async def learning(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(service.learning), headers={"Cache-Control": "no-store"})

    async def rollback(request: Request) -> Response:
        from footsort.errors import FootsortError

        try:
            return JSONResponse(await run_in_threadpool(service.rollback))
        except FootsortError as exc:
            return JSONResponse({"error": str(exc)}, 409)

    async def retrain_status(request: Request) -> Response:
        return JSONResponse(service.training.status(), headers={"Cache-Control": "no-store"})

    async def retrain_start(request: Request) -> Response:
        if not await run_in_threadpool(service.retrain):
            return JSONResponse({"error": "a retrain is already running"}, 409)
        return JSONResponse(service.training.status(), 202)

    async def retrain_stop(request: Request) -> Response:
        service.training.stop()
        return JSONResponse(service.training.status())

    routes = [
        Route("/", index),
        Route("/api/state", state),
        Route("/api/signature", signature),
        Route("/api/learning", learning),
        Route("/api/label", label, methods=["POST"]),
        Route("/api/undo", undo, methods=["POST"]),
        Route("/api/models/rollback", rollback, methods=["POST"]),
        Route("/api/retrain", retrain_status),
        Route("/api/retrain/start", retrain_start, methods=["POST"]),
        Route("/api/retrain/stop", retrain_stop, methods=["POST"]),
        Route("/api/thumbs", thumbs_pack),
        Route("/thumb/{id:str}", thumb),
        Route("/photo/{id:str}", large),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, access=access)
    return app


async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
