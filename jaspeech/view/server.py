"""The viewer's HTTP side: a small read-only Starlette app served by uvicorn.

Only GET (and HEAD) routes exist. Config names, row numbers, turn numbers and asset names in a URL are
looked up in what `CorpusIndex` listed at start-up, never joined onto a path, so `..`, absolute paths
and encoded slashes find nothing. Audio is served from the Parquet bytes with HTTP Range support
(206), which browsers need to seek. A malformed query value is a 400 with a message.
"""
from __future__ import annotations

import json
import logging
import re
import socket
import sys
from importlib import resources
from pathlib import Path
from typing import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from jaspeech.view.queries import BadQuery, CorpusIndex, NotFound, RejectQuery, RowQuery, audio_media_type, open_corpus

LOOPBACK = ("127.0.0.1", "localhost", "::1")
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    # corpus text is untrusted: the page renders it with textContent, and nothing may load from elsewhere
    (b"content-security-policy", b"default-src 'self'; img-src 'self'; media-src 'self'; style-src 'self'; "
                                 b"script-src 'self'; connect-src 'self'; frame-ancestors 'none'"),
]
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
log = logging.getLogger("jaspeech.view")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def range_response(request: Request, data: bytes, media_type: str) -> Response:
    """`data` whole (200) or the one byte range asked for (206); 416 for a range past the end.

    A Range header that is not a single `bytes=` range is ignored, as RFC 9110 allows: the whole body.
    """
    size = len(data)
    headers = {"accept-ranges": "bytes", "cache-control": "no-cache"}
    m = _RANGE.match(request.headers.get("range", "").strip())
    if not m or m.groups() == ("", ""):
        return Response(data, media_type=media_type, headers=headers)
    first, last = m.groups()
    if first == "":  # suffix: the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return Response(b"", status_code=416, headers={**headers, "content-range": f"bytes */{size}"})
    headers["content-range"] = f"bytes {start}-{end}/{size}"
    return Response(data[start:end + 1], status_code=206, media_type=media_type, headers=headers)


def make_app(index: CorpusIndex, trusted_hosts: tuple[str, ...] | None = LOOPBACK) -> Starlette:
    """The ASGI app over one indexed folder. `trusted_hosts`: Host header names accepted (a page on
    another site that points its own name at 127.0.0.1 — DNS rebinding — is refused); None accepts any."""
    package = resources.files("jaspeech.view") / "static"
    static = {name: (package / name).read_bytes() for name in STATIC}

    def page(request: Request) -> Response:
        return Response(static["index.html"], media_type=STATIC["index.html"], headers={"cache-control": "no-cache"})

    def static_file(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static or name == "index.html":
            raise NotFound(f"no static file {name!r}")
        return Response(static[name], media_type=STATIC[name], headers={"cache-control": "no-cache"})

    def asset(request: Request) -> Response:
        path = index.assets.get(request.path_params["name"])
        if path is None:
            raise NotFound(f"no plot {request.path_params['name']!r} in assets/ (run `jaspeech card DIR` to draw them)")
        return Response(path.read_bytes(), media_type="image/png")

    def overview(request: Request) -> Response:
        return JSONResponse(index.overview())

    def rows(request: Request) -> Response:
        return JSONResponse(index.query_rows(RowQuery.parse(request.query_params)))

    def row(request: Request) -> Response:
        p = request.path_params
        return JSONResponse(index.row(p["config"], p["n"]))

    def audio(request: Request) -> Response:
        p = request.path_params
        data = index.audio(p["config"], p["n"], p["turn"])
        return range_response(request, data, audio_media_type(data))

    def rejects(request: Request) -> Response:
        return JSONResponse(index.query_rejects(RejectQuery.parse(request.query_params)))

    def reject_audio(request: Request) -> Response:
        p = request.path_params
        data = index.reject_audio_bytes(p["config"], p["source_index"], p["turn"])
        return range_response(request, data, audio_media_type(data))

    async def bad_query(request: Request, exc: Exception) -> Response:
        return _error(400, str(exc))

    async def not_found(request: Request, exc: Exception) -> Response:
        return _error(404, str(exc))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = {404: f"nothing at {request.url.path}", 405: f"{request.method} is not allowed: this viewer is "
                   "read-only (GET only)"}.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, message)

    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("error answering %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the server's output")

    routes = [
        Route("/", page),
        Route("/static/{name}", static_file),
        Route("/assets/{name}", asset),
        Route("/api/overview", overview),
        Route("/api/rows", rows),
        Route("/api/row/{config}/{n:int}", row),
        Route("/api/audio/{config}/{n:int}/{turn:int}", audio),
        Route("/api/rejects", rejects),
        Route("/api/reject-audio/{config}/{source_index:int}/{turn:int}", reject_audio),
    ]
    app = Starlette(routes=routes, exception_handlers={
        BadQuery: bad_query, NotFound: not_found, HTTPException: http_error, Exception: internal})
    return _guard(app, trusted_hosts)


def _guard(app, trusted_hosts: tuple[str, ...] | None):
    """ASGI wrapper: refuse unknown Host headers, add the security headers to every response."""

    async def guarded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        if trusted_hosts is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            name = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.rsplit(":", 1)[0]
            if name not in trusted_hosts:
                body = json.dumps({"error": f"host {host!r} refused: open the page by the address the server "
                                            "printed"}).encode()
                await send({"type": "http.response.start", "status": 400, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *SECURITY_HEADERS]})
                return await send({"type": "http.response.body", "body": body})

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        return await app(scope, receive, send_with_headers)

    return guarded


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as e:
        raise OSError(f"cannot resolve --host {host!r}: {e}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port, "
                      "or --port 0 for any free one") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(folder: Path | str, host: str = "127.0.0.1", port: int = 8765,
          announce: Callable[[str], None] | None = None) -> None:
    """Index `folder`, listen on host:port (0: a free port), announce the URL, serve until Ctrl-C."""
    import uvicorn

    index = open_corpus(folder)
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/"
    app = make_app(index, trusted_hosts=LOOPBACK if host in LOOPBACK else None)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    for w in index.warnings:
        print(f"warning: {w}", file=sys.stderr)
    (announce or print)(url)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled once it has shut down: a normal stop
        pass
    finally:
        sock.close()
