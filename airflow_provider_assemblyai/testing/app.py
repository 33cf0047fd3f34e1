"""The per-region ASGI app: Starlette routes wrapped in a raw ASGI layer for auth, limits and faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from airflow_provider_assemblyai.testing.admin import ADMIN_PREFIX, build_admin_app
from airflow_provider_assemblyai.testing.faults import PRE_EFFECT_KINDS, Fault
from airflow_provider_assemblyai.testing.server import is_loopback
from airflow_provider_assemblyai.testing.state import ApiError, EmulatorState, RequestRecord

__all__ = ["AUTH_ERROR", "DropConnection", "EmulatorApp", "Sleeper", "build_app"]

AUTH_ERROR = "Authentication error, API token missing/invalid"
_HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_NON_JSON = b"<!DOCTYPE html><html><body><p>Service temporarily rerouted.</p></body></html>"


class DropConnection(Exception):
    """Raised mid-response so uvicorn closes the connection without finishing the body."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


_uvicorn_error = logging.getLogger("uvicorn.error")
if not any(isinstance(f, _QuietDrops) for f in _uvicorn_error.filters):
    _uvicorn_error.addFilter(_QuietDrops())


class Sleeper:
    """``asyncio.sleep`` that returns early once the server is stopping."""

    def __init__(self) -> None:
        self._stopping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds`` (cut short by :meth:`stop`)."""
        if seconds <= 0 or self._stopping.is_set():
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def stop(self) -> None:
        """Wake every sleeper (call from the event loop thread)."""
        self._stopping.set()


def _json_bytes(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def _send_raw(
    send: Send,
    status: int,
    body: bytes,
    content_type: str | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if content_type is not None:
        headers.append((b"content-type", content_type.encode()))
    headers.extend(extra or [])
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(
    send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send_raw(send, status, _json_bytes({"error": message}), "application/json", extra)


class _Capture:
    """Buffers the inner app's response so faults can mangle it."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = int(message["status"])
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))

    def headers_with_length(self, length: int) -> list[tuple[bytes, bytes]]:
        kept = [(k, v) for k, v in self.headers if k.lower() != b"content-length"]
        return [(b"content-length", str(length).encode()), *kept]


@dataclass
class _Exchange:
    """One API request being served: its log entry's fields, the answer's filled in as it is decided."""

    state: EmulatorState
    region: str
    method: str
    path: str
    query: str
    key_matched: bool
    generation: int
    client_send: Send
    status: int | None = None
    fault: str | None = None
    started: float = field(default_factory=time.perf_counter)
    logged: bool = False

    def log(self) -> None:
        """Record the request in the emulator's log (once)."""
        if self.logged:
            return
        self.logged = True
        record = RequestRecord(
            time=self.state.clock.now(),
            region=self.region,
            method=self.method,
            path=self.path,
            query=self.query,
            status=self.status,
            key_matched=self.key_matched,
            fault=self.fault,
            elapsed_ms=(time.perf_counter() - self.started) * 1000.0,
        )
        self.state.record_request(record, self.generation)

    async def send(self, message: Message) -> None:
        """Send to the client, logging the request before the last byte leaves.

        A client thus never sees a response its log entry lacks; a response without a body is
        complete for the client with its headers, so it is logged before them.
        """
        last_body = message["type"] == "http.response.body" and not message.get("more_body", False)
        if last_body or (message["type"] == "http.response.start" and _has_no_body(message)):
            self.log()
        await self.client_send(message)


def _has_no_body(start: Message) -> bool:
    """True when a response start announces an empty body (``Content-Length: 0``)."""
    headers = start.get("headers", [])
    return any(name.lower() == b"content-length" and value.strip() == b"0" for name, value in headers)


def _inner_app(state: EmulatorState, region: str, base_url: str) -> Starlette:
    async def transcripts(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Request body must be valid JSON") from None
            return JSONResponse(state.api_create(region, body))
        return JSONResponse(state.api_list(region, dict(request.query_params), base_url))

    async def transcript(request: Request) -> Response:
        transcript_id = str(request.path_params["transcript_id"])
        if request.method == "DELETE":
            return JSONResponse(state.api_delete(region, transcript_id))
        return JSONResponse(state.api_get(region, transcript_id))

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ApiError):
            return JSONResponse({"error": exc.message}, status_code=exc.status)
        if isinstance(exc, HTTPException) and exc.status_code == 405:
            return JSONResponse({"error": "Method not allowed"}, status_code=405, headers=exc.headers)
        return JSONResponse({"error": "Not found"}, status_code=404)

    app = Starlette(
        routes=[
            Route("/v2/transcript", transcripts, methods=["GET", "POST"]),
            Route("/v2/transcript/{transcript_id}", transcript, methods=["GET", "DELETE"]),
        ],
        exception_handlers={ApiError: on_error, HTTPException: on_error},
    )
    app.router.redirect_slashes = False
    return app


class EmulatorApp:
    """ASGI app for one region: latency, faults, auth, rate limit, then the API; logs every request."""

    def __init__(self, state: EmulatorState, region: str, base_url: str, sleeper: Sleeper) -> None:
        self.state = state
        self.region = region
        self.base_url = base_url.rstrip("/")
        self.sleeper = sleeper
        self.inner = _inner_app(state, region, self.base_url)
        self.admin = build_admin_app(state, region)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        if str(scope["path"]).startswith(ADMIN_PREFIX):  # not the API: no key, limit, fault or log
            client = scope.get("client")
            if not client or not is_loopback(str(client[0])):
                await _send_error(send, 403, "the emulator's admin endpoints only answer loopback clients")
            else:
                await self.admin(scope, receive, send)
            return
        auth = next((v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"authorization"), None)
        exchange = _Exchange(
            state=self.state,
            region=self.region,
            method=str(scope["method"]).upper(),
            path=str(scope["path"]),
            query=bytes(scope.get("query_string", b"")).decode("latin-1"),
            key_matched=self.state.key_matches(auth),
            generation=self.state.generation,
            client_send=send,
        )
        try:
            await self._serve(scope, receive, exchange)
        finally:
            exchange.log()

    async def _serve(self, scope: Scope, receive: Receive, exchange: _Exchange) -> None:
        send, method, path = exchange.send, exchange.method, exchange.path
        await self.sleeper.sleep(self.state.latency_seconds())
        fault = self.state.faults.take(self.region, method, path)
        if fault is not None:
            exchange.fault = fault.kind
            if fault.kind in PRE_EFFECT_KINDS:
                exchange.status = None if fault.kind == "drop" else int(fault.status or 500)
                await self._send_fault(fault, send)
                return
        if not exchange.key_matched:
            exchange.status = 401
            await _send_error(send, 401, AUTH_ERROR)
            return
        retry_after = self.state.take_rate_token()
        if retry_after is not None:
            exchange.status = 429
            await _send_error(send, 429, "Too Many Requests", [(b"retry-after", str(retry_after).encode())])
            return
        captured = _Capture()
        await self.inner(scope, receive, captured.send)
        exchange.status = captured.status
        body = bytes(captured.body)
        if fault is None:
            await _send_raw_captured(send, captured, body)
        elif fault.kind == "slow":
            await self.sleeper.sleep(fault.delay)
            await _send_raw_captured(send, captured, body)
        elif fault.kind == "truncated_json":
            await _send_raw_captured(send, captured, body[: max(1, len(body) // 2)])
        else:  # drop_after_effect: the effect happened; promise the full body, deliver half, hang up
            start: Message = {"type": "http.response.start", "status": captured.status}
            start["headers"] = captured.headers_with_length(len(body))
            await send(start)
            await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
            raise DropConnection(f"{method} {path}: dropped after effect")

    async def _send_fault(self, fault: Fault, send: Send) -> None:
        status = int(fault.status or 500)
        if fault.kind == "drop":
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
            )
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            raise DropConnection("dropped before effect")
        if fault.kind == "error":
            await _send_error(send, status, _phrase(status))
        elif fault.kind == "empty":
            await _send_raw(send, status, b"")
        elif fault.kind == "html":
            await _send_raw(send, status, _HTML_502, "text/html")
        elif fault.kind == "rate_limit":
            await _send_error(
                send, status, "Too Many Requests", [(b"retry-after", str(fault.retry_after).encode())]
            )
        else:  # non_json
            await _send_raw(send, status, _NON_JSON, "text/html; charset=utf-8")


async def _send_raw_captured(send: Send, captured: _Capture, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": captured.status,
            "headers": captured.headers_with_length(len(body)),
        }
    )
    await send({"type": "http.response.body", "body": body})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def build_app(
    state: EmulatorState, region: str, base_url: str, sleeper: Sleeper | None = None
) -> EmulatorApp:
    """Create the ASGI app serving ``region`` at ``base_url``."""
    return EmulatorApp(state, region, base_url, sleeper or Sleeper())
