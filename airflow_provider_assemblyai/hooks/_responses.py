"""
How the hook reads an answer: a 2xx body parsed into its model, or the provider exception for an
error status, a redirect, a malformed body or a transport failure (the key redacted everywhere).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from airflow_provider_assemblyai.exceptions import (
    AssemblyAIAuthError,
    AssemblyAIError,
    AssemblyAIRateLimitError,
    AssemblyAIServerError,
    AssemblyAITransportError,
    TranscriptNotFoundError,
)
from airflow_provider_assemblyai.get_provider_info import REGION_BASE_URLS
from airflow_provider_assemblyai.hooks._connection import ConnectionSettings, describe
from airflow_provider_assemblyai.models import Transcript, TranscriptList

LOOKUP_ERROR = "transcript id not found"
SNIPPET_CHARS = 200

#: What a 2xx body must parse into: the parser and its name for error messages.
Shape = tuple[Callable[[dict[str, Any]], Any], str]
TRANSCRIPT: Shape = (Transcript.from_api, "transcript")
LIST_PAGE: Shape = (TranscriptList.model_validate, "transcript list page")


def parse_response(response: httpx.Response, settings: ConnectionSettings, shape: Shape | None = None) -> Any:
    """Return the 2xx body (parsed into ``shape`` if given), or raise the provider exception for it."""
    method, path, status = response.request.method, response.request.url.path, response.status_code
    where = _where(method, path, settings)
    if 300 <= status < 400:
        target = urlsplit(response.headers.get("location", ""))
        raise AssemblyAIError(
            f"{where} answered HTTP {status} redirecting to {target.scheme}://{target.netloc}{target.path}; "
            "redirects are not followed, so the API key is not sent elsewhere",
            status_code=status,
            method=method,
            path=path,
        )
    try:
        body = response.json()
    except ValueError:
        body = None
    api_error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(api_error, str) or not api_error:
        api_error = None if body is not None and status < 300 else _snippet(response, settings.api_key)
    else:  # an error text echoing the key is redacted like a snippet
        api_error = api_error.replace(settings.api_key, "***")
    context: dict[str, Any] = {"status_code": status, "api_error": api_error, "method": method, "path": path}
    if status < 300:
        if not isinstance(body, dict):
            raise AssemblyAIError(
                f"{where} answered HTTP {status} with a body that is not a JSON object: {api_error!r}",
                **context,
            )
        return body if shape is None else _parse_model(shape, body, where, response, settings, context)
    message = f"{where} failed with HTTP {status}: {api_error or '(empty body)'}"
    if status in (401, 403):
        raise AssemblyAIAuthError(message + " (check the connection's API key)", **context)
    if status == 404 or (status == 400 and LOOKUP_ERROR in (api_error or "").lower()):
        raise TranscriptNotFoundError(message + _region_hint(settings), **context)
    if status == 429:
        error = AssemblyAIRateLimitError(message, **context)
        error.retry_after = _retry_after_seconds(response)
        raise error
    if status >= 500:
        raise AssemblyAIServerError(message, **context)
    raise AssemblyAIError(message, **context)


def _where(method: str, path: str, settings: ConnectionSettings) -> str:
    """How every API error starts: the call, the connection and its region (never the key)."""
    return f"AssemblyAI {method} {path} ({describe(settings)})"


def _region_hint(settings: ConnectionSettings) -> str:
    """What a not-found adds: transcripts live in one region, so it may be in the other one."""
    others = [region for region in REGION_BASE_URLS if region != settings.region]
    where = " or ".join(f"the {region.upper()} region" for region in others)
    regions = " or ".join(repr(region) for region in others)
    return (
        f". A transcript exists only in the region where it was created: if it is in {where}, "
        f"use a connection with region {regions}"
    )


def _retry_after_seconds(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _parse_model(
    shape: Shape,
    body: dict[str, Any],
    where: str,
    response: httpx.Response,
    settings: ConnectionSettings,
    context: dict[str, Any],
) -> Any:
    """Parse a 2xx body; a validation failure becomes an AssemblyAIError with the status and a snippet."""
    parser, what = shape
    try:
        return parser(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()[:3]
        )
        snippet = _snippet(response, settings.api_key)
        raise AssemblyAIError(
            f"{where} answered HTTP {response.status_code} with a malformed {what} ({problems}): {snippet!r}",
            **(context | {"api_error": snippet}),
        ) from None


def _snippet(response: httpx.Response, api_key: str) -> str:
    text = response.text[:SNIPPET_CHARS].replace(api_key, "***")
    return " ".join(text.split())


def check_deleted(transcript: Transcript, path: str, settings: ConnectionSettings) -> Transcript:
    """Return the DELETE's answer if it is in the deleted shape (``path``: the DELETE's), else raise."""
    if not transcript.is_deleted:
        raise AssemblyAIError(
            f"{_where('DELETE', path, settings)} answered without its deleted shape "
            f"(status {transcript.status.value}); not reporting it as deleted",
            status_code=200,
            method="DELETE",
            path=path,
        )
    return transcript


@contextmanager
def transport_errors(request: httpx.Request, settings: ConnectionSettings) -> Iterator[None]:
    """Turn httpx transport failures (refused, dropped, timed out) into AssemblyAITransportError."""
    try:
        yield
    except httpx.TransportError as exc:
        method, path = request.method, request.url.path
        error = AssemblyAITransportError(
            f"{_where(method, path, settings)} got no usable response: "
            f"{type(exc).__name__}: {str(exc).replace(settings.api_key, '***') or 'no detail'}",
            method=method,
            path=path,
        )
        error.request_sent = not isinstance(
            exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
        )
        raise error from exc
