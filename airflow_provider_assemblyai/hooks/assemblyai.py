"""
AssemblyAIHook: the connection, the region, HTTP (sync and async httpx), retries and error mapping.

One request core serves both paths: :meth:`AssemblyAIHook._prepare` builds the request, the shared
tenacity policy (:meth:`AssemblyAIHook._retry_policy`) decides what is retried and how long to wait,
and :func:`_parse_response` maps every response to a body or to one of the provider's exceptions.
Only the ``send`` differs between :meth:`AssemblyAIHook._request` and :meth:`AssemblyAIHook._arequest`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx
from airflow.providers.common.compat.sdk import BaseHook
from pydantic import ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from airflow_provider_assemblyai import __version__
from airflow_provider_assemblyai.exceptions import (
    AssemblyAIAuthError,
    AssemblyAIConfigError,
    AssemblyAIError,
    AssemblyAIRateLimitError,
    AssemblyAIServerError,
    AssemblyAITransportError,
    TranscriptNotFoundError,
)
from airflow_provider_assemblyai.get_provider_info import (
    CONN_FIELDS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REGION,
    DEFAULT_TIMEOUT_SECONDS,
    REGION_BASE_URLS,
    UI_FIELD_BEHAVIOUR,
)
from airflow_provider_assemblyai.models import (
    Transcript,
    TranscriptList,
    TranscriptListItem,
    TranscriptStatus,
    validate_transcript_id,
)

if TYPE_CHECKING:
    import ssl

    from aiolimiter import AsyncLimiter

USER_AGENT = f"airflow-provider-assemblyai/{__version__}"
TRANSCRIPT_PATH = "/v2/transcript"
LOOKUP_ERROR = "transcript id not found"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_LIST_LIMIT = 200
SNIPPET_CHARS = 200


@dataclass(frozen=True)
class ConnectionSettings:
    """
    The validated settings of an AssemblyAI connection. The key is kept out of ``repr``.

    :param conn_id: the Airflow connection id.
    :param region: ``us`` or ``eu``.
    :param base_url: the URL every request goes to (the region's, or the ``base_url`` override).
    :param timeout: per-request timeout in seconds.
    :param max_retries: how many times a retryable failure is retried.
    :param api_key: the API key (the connection's password).
    """

    conn_id: str
    region: str
    base_url: str
    timeout: float
    max_retries: int
    api_key: str = field(repr=False)

    @classmethod
    def from_connection(
        cls, conn_id: str, password: str | None, extra: str | dict[str, Any] | None
    ) -> ConnectionSettings:
        """
        Validate a connection's fields, raising AssemblyAIConfigError naming the connection and field.

        :param conn_id: the connection id, for error messages.
        :param password: the API key.
        :param extra: the connection's extra, as stored (a JSON string) or already parsed.
        """
        options = _parse_extra(conn_id, extra)
        if not password or not password.strip():
            raise AssemblyAIConfigError(
                f"Connection {conn_id!r} has no API key: set its password field (labelled 'API Key')"
            )
        region = str(options.get("region") or DEFAULT_REGION).strip().lower()
        if region not in REGION_BASE_URLS:
            raise AssemblyAIConfigError(
                f"Connection {conn_id!r} has unknown region {options.get('region')!r}; "
                f"expected one of {sorted(REGION_BASE_URLS)}"
            )
        base_url = _check_base_url(conn_id, options.get("base_url") or REGION_BASE_URLS[region])
        timeout = _positive_number(conn_id, "timeout", options.get("timeout"), DEFAULT_TIMEOUT_SECONDS)
        max_retries = _non_negative_int(
            conn_id, "max_retries", options.get("max_retries"), DEFAULT_MAX_RETRIES
        )
        return cls(conn_id, region, base_url, timeout, max_retries, password.strip())

    def resolve(self, path_or_url: str) -> str:
        """
        Return the absolute URL for a path, or check that an absolute URL stays on :attr:`base_url`.

        The hook only builds paths (it never follows the API's page links); an absolute URL on
        another scheme, host or port is still refused here, so the key never leaves the base URL.

        :param path_or_url: ``/v2/...``, or an absolute URL.
        """
        if path_or_url.startswith("/"):
            return self.base_url + path_or_url
        own, other = urlsplit(self.base_url), urlsplit(path_or_url)
        if (other.scheme, other.netloc) != (own.scheme, own.netloc) or not other.path.startswith(own.path):
            raise AssemblyAIError(
                f"Refusing to follow a link to {other.scheme}://{other.netloc}{other.path}: it is not on "
                f"the connection's base URL {self.base_url}, and the API key is only sent there"
            )
        return path_or_url


def _parse_extra(conn_id: str, extra: str | dict[str, Any] | None) -> dict[str, Any]:
    if isinstance(extra, dict):
        return extra
    if not extra or not extra.strip():
        return {}
    try:
        parsed = json.loads(extra)
    except ValueError:
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has an extra that is not valid JSON; expected an object such as "
            '{"region": "eu"}'
        ) from None
    if not isinstance(parsed, dict):
        raise AssemblyAIConfigError(f"Connection {conn_id!r} has an extra that is not a JSON object")
    return parsed


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_base_url(conn_id: str, value: object) -> str:
    url = str(value).strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has an invalid base_url {url!r}; expected an https:// URL "
            "such as https://api.assemblyai.com"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has base_url {url!r} over plain http to a non-loopback host; "
            "use https:// (plain http is only accepted for 127.0.0.1, ::1 and localhost)"
        )
    return url


def _positive_number(conn_id: str, name: str, value: object, default: float) -> float:
    if value is None or value == "":
        return float(default)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has {name}={value!r}; expected a positive number of seconds"
        )
    return number


def _non_negative_int(conn_id: str, name: str, value: object, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool) or not str(value).strip().isdigit():
        raise AssemblyAIConfigError(
            f"Connection {conn_id!r} has {name}={value!r}; expected a whole number >= 0"
        )
    return int(str(value).strip())


def _transcript_path(transcript_id: object) -> str:
    return f"{TRANSCRIPT_PATH}/{validate_transcript_id(transcript_id)}"


def _list_params(
    status: str | TranscriptStatus | None,
    created_on: str | date | None,
    before_id: str | None,
    after_id: str | None,
    limit: int,
) -> dict[str, str]:
    """The query of ``GET /v2/transcript``, every argument checked before any request."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {limit!r}")
    params = {"limit": str(limit)}
    if status is not None:
        params["status"] = TranscriptStatus.parse_many(status, argument="status")[0].value
    if created_on is not None:
        try:
            params["created_on"] = (
                created_on if isinstance(created_on, date) else date.fromisoformat(str(created_on))
            ).isoformat()[:10]
        except ValueError:
            raise ValueError(f"created_on must be a date (YYYY-MM-DD), got {created_on!r}") from None
    if before_id is not None:
        params["before_id"] = validate_transcript_id(before_id, argument="before_id")
    if after_id is not None:
        params["after_id"] = validate_transcript_id(after_id, argument="after_id")
    return params


def _list_path(params: dict[str, str]) -> str:
    return f"{TRANSCRIPT_PATH}?{urlencode(params)}"


def _snippet(response: httpx.Response, api_key: str) -> str:
    text = response.text[:SNIPPET_CHARS].replace(api_key, "***")
    return " ".join(text.split())


#: What a 2xx body must parse into: the parser and its name for error messages.
_Shape = tuple[Callable[[dict[str, Any]], Any], str]
_TRANSCRIPT: _Shape = (Transcript.from_api, "transcript")
_LIST_PAGE: _Shape = (TranscriptList.model_validate, "transcript list page")


def _parse_response(
    response: httpx.Response, settings: ConnectionSettings, shape: _Shape | None = None
) -> Any:
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
    return f"AssemblyAI {method} {path} ({_connection(settings)})"


def _connection(settings: ConnectionSettings) -> str:
    return f"connection {settings.conn_id!r}, region {settings.region}"


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
    shape: _Shape,
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


def _deleted(transcript: Transcript, path: str, settings: ConnectionSettings) -> Transcript:
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


class _ListWalk:
    """
    The requests of one transcript listing, each built from the caller's filters and an id cursor.

    The API's page links are never requested: behind a gateway (a ``base_url`` override) they name
    the API's own host, and the key only goes to ``base_url``. Older pages are read with
    ``before_id`` = the last (oldest) id of the page; the walk ends at an empty page or when the
    API's ``prev_url`` is null (its end signal; without the field, at a short page). With
    ``after_id`` and no ``before_id`` it walks towards newer transcripts instead (``after_id`` =
    the newest id of the page, oldest first, until an empty page), because the API refuses an
    ``after_id`` older than ``before_id`` (400), so the two cannot be combined to page. A cursor
    used twice (a page that does not advance) stops the walk with an error.

    :param params: the validated query parameters of the first page (see :func:`_list_params`).
    :param settings: the connection's settings, named in errors.
    """

    def __init__(self, params: dict[str, str], settings: ConnectionSettings) -> None:
        self.params = params
        self.settings = settings
        self.limit = int(params["limit"])
        self.forward = "after_id" in params and "before_id" not in params
        self.cursor = "after_id" if self.forward else "before_id"
        self.used = {params[self.cursor]} if self.cursor in params else set()
        self.path: str | None = _list_path(params)

    def advance(self, page: TranscriptList) -> list[TranscriptListItem]:
        """Return the page's items in walk order and set :attr:`path` to the next page (None: done)."""
        items = page.transcripts
        if self.forward:
            self.path = None if not items else self._next(items[0].id)
            return items[::-1]
        details = page.page_details
        if "prev_url" in details.model_fields_set:
            last = not items or details.prev_url is None
        else:
            last = len(items) < self.limit
        self.path = None if last else self._next(items[-1].id)
        return items

    def _next(self, cursor: str) -> str:
        if cursor in self.used:
            raise AssemblyAIError(
                f"AssemblyAI's transcript list ({_connection(self.settings)}) loops: the next page "
                f"would again be read with {self.cursor}={cursor}, already used; stopping instead of "
                "paging forever"
            )
        self.used.add(cursor)
        try:
            self.params[self.cursor] = validate_transcript_id(cursor, argument=self.cursor)
        except ValueError as error:
            where = f"AssemblyAI's transcript list ({_connection(self.settings)})"
            raise AssemblyAIError(f"{where} cannot be paged further: {error}") from None
        return _list_path(self.params)


@cache
def _ssl_context() -> ssl.SSLContext:
    """The process's one TLS context, shared by every client: loading the CA bundle costs 10-50 ms."""
    return httpx.create_ssl_context()


#: Connections in the shared async pool, and requests let into httpx at once (see ``slots``).
ASYNC_POOL_SIZE = 20
#: Connections per httpx client of the shared pool. httpcore re-examines every connection of its pool
#: (quadratic work, a TLS attribute lookup each) whenever a request enters or leaves it: with 20
#: connections in one client that doubled the CPU of a poll, so the pool is split into small clients.
POOL_SHARD_SIZE = 4


@dataclass
class _SharedAsyncClient:
    """
    The async connection pool shared per event loop and base URL by every hook (and trigger) on it.

    ``shards`` are httpx clients of at most :data:`POOL_SHARD_SIZE` connections each; a request goes
    to the one with the most free connections, so serial requests reuse one keep-alive connection.
    """

    shards: list[httpx.AsyncClient]
    capacity: list[int]
    busy: list[int]
    #: httpcore re-scans every queued request on each pool change (quadratic: 1,000 triggers polling
    #: at once starve the event loop), so requests beyond the pool size queue here, in O(1).
    slots: asyncio.Semaphore
    resume_at: float = 0.0

    @classmethod
    def open(cls, size: int, timeout: float, ssl_context: ssl.SSLContext) -> _SharedAsyncClient:
        """
        Open a pool of ``size`` connections in total.

        :param size: connections (and requests in flight) in total.
        :param timeout: per-request timeout in seconds.
        :param ssl_context: the TLS context every shard verifies with.
        """
        full, rest = divmod(size, POOL_SHARD_SIZE)
        capacity = [POOL_SHARD_SIZE] * full + ([rest] if rest else [])
        shards = [
            httpx.AsyncClient(
                timeout=timeout,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
                verify=ssl_context,
                limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            )
            for n in capacity
        ]
        return cls(shards, capacity, [0] * len(shards), asyncio.Semaphore(size))

    @property
    def client(self) -> httpx.AsyncClient:
        """The client requests are built with (every shard has the same settings)."""
        return self.shards[0]

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` (body read) on the shard with the most free connections."""
        async with self.slots:
            index = max(range(len(self.shards)), key=lambda i: self.capacity[i] - self.busy[i])
            self.busy[index] += 1
            try:
                return await self.shards[index].send(request)
            finally:
                self.busy[index] -= 1

    async def aclose(self) -> None:
        """Close every shard's connections."""
        for shard in self.shards:
            await shard.aclose()

    async def wait_turn(self) -> None:
        """Sleep while a 429's Retry-After holds the whole pool back."""
        while (delay := self.resume_at - time.monotonic()) > 0:  # noqa: ASYNC110 (resume_at may move)
            await asyncio.sleep(delay)

    def hold_back(self, seconds: float) -> None:
        """Make every request on this client wait ``seconds`` from now."""
        self.resume_at = max(self.resume_at, time.monotonic() + seconds)


_shared_async_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, float, int], _SharedAsyncClient]
]
_shared_async_clients = weakref.WeakKeyDictionary()


class AssemblyAIHook(BaseHook):
    """
    Talk to AssemblyAI's transcript API through an Airflow connection.

    The connection's password is the API key; ``extra.region`` picks ``us`` or ``eu`` and
    ``extra.base_url`` overrides the URL (a proxy, or the local emulator).

    .. seealso:: README section "Connection".

    :param assemblyai_conn_id: the Airflow connection id.
    :param max_requests_per_second: client-side rate limit for async calls (None: no limit).
    :param async_pool_size: connections of the shared async pool (and requests in flight at once);
        the default suits many triggers on one loop, a purge raises it to its concurrency.
    """

    conn_name_attr = "assemblyai_conn_id"
    default_conn_name = "assemblyai_default"
    conn_type = "assemblyai"
    hook_name = "AssemblyAI"

    #: Exponential backoff between retries (seconds), and the cap on a 429's Retry-After.
    retry_initial_wait: float = 0.5
    retry_max_wait: float = 30.0
    retry_after_cap: float = 60.0

    def __init__(
        self,
        assemblyai_conn_id: str = default_conn_name,
        *,
        max_requests_per_second: float | None = None,
        async_pool_size: int = ASYNC_POOL_SIZE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(async_pool_size, bool) or not isinstance(async_pool_size, int) or async_pool_size < 1:
            raise ValueError(f"async_pool_size must be a whole number >= 1, got {async_pool_size!r}")
        self.assemblyai_conn_id = assemblyai_conn_id
        self.max_requests_per_second = max_requests_per_second
        self.async_pool_size = async_pool_size
        self._async_settings: ConnectionSettings | None = None
        self._limiter: AsyncLimiter | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(assemblyai_conn_id={self.assemblyai_conn_id!r})"

    # -- connection form (Airflow 2.11 and 3.0/3.1; 3.2+ reads get_provider_info) ----------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the extra fields of the connection form, built from ``CONN_FIELDS``."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, StringField
        from wtforms.validators import AnyOf, NumberRange, Optional

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            schema = spec["schema"]
            validators: list[Any] = [Optional()]
            if "enum" in schema:
                validators.append(AnyOf(schema["enum"]))
            if "minimum" in schema:
                validators.append(NumberRange(min=schema["minimum"]))
            field_class = IntegerField if "integer" in schema["type"] else StringField
            widgets[name] = field_class(
                lazy_gettext(spec["label"]),
                description=spec.get("description"),
                default=schema.get("default"),
                validators=validators,
                widget=BS3TextFieldWidget(),
            )
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return the hidden, relabelled and placeholder fields of the connection form."""
        return {key: value.copy() for key, value in UI_FIELD_BEHAVIOUR.items()}

    # -- settings and clients ----------------------------------------------------------------------

    @cached_property
    def settings(self) -> ConnectionSettings:
        """The validated connection settings (sync lookup; async code uses :meth:`aget_settings`)."""
        conn = self.get_connection(self.assemblyai_conn_id)
        settings = ConnectionSettings.from_connection(self.assemblyai_conn_id, conn.password, conn.extra)
        _mask(settings.api_key)
        return settings

    async def aget_settings(self) -> ConnectionSettings:
        """The validated connection settings, fetched without blocking the event loop."""
        if self._async_settings is None:
            from airflow.providers.common.compat.connection import get_async_connection

            conn = await get_async_connection(self.assemblyai_conn_id)
            self._async_settings = ConnectionSettings.from_connection(
                self.assemblyai_conn_id, conn.password, conn.extra
            )
        return self._async_settings

    @property
    def base_url(self) -> str:
        """The URL requests go to: the region's, or the connection's ``base_url`` override."""
        return self.settings.base_url

    @property
    def region(self) -> str:
        """The connection's region, ``us`` or ``eu``."""
        return self.settings.region

    @cached_property
    def client(self) -> httpx.Client:
        """The pooled sync client, reused by every call of this hook."""
        return httpx.Client(
            timeout=self.settings.timeout,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            verify=_ssl_context(),
        )

    def get_conn(self) -> httpx.Client:
        """Return the pooled sync httpx client."""
        return self.client

    def close(self) -> None:
        """Close the sync client's connections."""
        if "client" in self.__dict__:
            self.__dict__.pop("client").close()

    async def _async_client(self, settings: ConnectionSettings) -> _SharedAsyncClient:
        clients = _shared_async_clients.setdefault(asyncio.get_running_loop(), {})
        size = self.async_pool_size
        key = (settings.base_url, settings.timeout, size)
        if key not in clients:
            # Loading the CA bundle blocks for tens of ms: do it off the loop (once per process).
            ssl_context = await asyncio.to_thread(_ssl_context)
            clients.setdefault(key, _SharedAsyncClient.open(size, settings.timeout, ssl_context))
        return clients[key]

    @staticmethod
    async def aclose_shared_clients() -> None:
        """Close the async clients shared on the running event loop (call before the loop ends)."""
        clients = _shared_async_clients.pop(asyncio.get_running_loop(), {})
        for shared in clients.values():
            await shared.aclose()

    # -- the request core, shared by sync and async --------------------------------------------

    def _prepare(
        self,
        client: httpx.Client | httpx.AsyncClient,
        settings: ConnectionSettings,
        method: str,
        path_or_url: str,
        body: dict[str, Any] | None,
    ) -> httpx.Request:
        return client.build_request(
            method, settings.resolve(path_or_url), json=body, headers={"Authorization": settings.api_key}
        )

    def _retry_policy(
        self,
        settings: ConnectionSettings,
        method: str,
        on_rate_limit: Callable[[float], None] | None = None,
    ) -> dict[str, Any]:
        """
        Return the tenacity arguments shared by the sync and async request loops.

        429, 5xx and transport failures are retried for GET and DELETE (both idempotent). A POST is
        retried only when it certainly had no effect: 429, or a connection that was never made.
        """
        idempotent = method != "POST"

        def retryable(error: BaseException) -> bool:
            if isinstance(error, AssemblyAITransportError):
                return idempotent or not error.request_sent
            if isinstance(error, AssemblyAIServerError):
                return idempotent
            return isinstance(error, AssemblyAIRateLimitError)

        backoff = wait_exponential(multiplier=self.retry_initial_wait, max=self.retry_max_wait) + wait_random(
            0, self.retry_initial_wait
        )

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            retry_after = getattr(error, "retry_after", None)
            if retry_after is None:
                return float(backoff(state))
            seconds = min(float(retry_after), self.retry_after_cap)
            if on_rate_limit is not None:
                on_rate_limit(seconds)
            return seconds

        def log_retry(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self.log.warning(
                "AssemblyAI request failed (%s); retry %d of %d in %.1fs",
                error,
                state.attempt_number,
                settings.max_retries,
                state.next_action.sleep if state.next_action else 0.0,
            )

        return {
            "retry": retry_if_exception(retryable),
            "stop": stop_after_attempt(settings.max_retries + 1),
            "wait": wait,
            "before_sleep": log_retry,
            "reraise": True,
        }

    def _request(
        self, method: str, path_or_url: str, body: dict[str, Any] | None = None, shape: _Shape | None = None
    ) -> Any:
        settings = self.settings
        for attempt in Retrying(**self._retry_policy(settings, method)):
            with attempt:
                request = self._prepare(self.client, settings, method, path_or_url, body)
                with _transport_errors(request, settings):
                    response = self.client.send(request)
                return _parse_response(response, settings, shape)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arequest(
        self, method: str, path_or_url: str, body: dict[str, Any] | None = None, shape: _Shape | None = None
    ) -> Any:
        settings = await self.aget_settings()
        shared = await self._async_client(settings)
        async for attempt in AsyncRetrying(**self._retry_policy(settings, method, shared.hold_back)):
            with attempt:
                request = self._prepare(shared.client, settings, method, path_or_url, body)
                if self.max_requests_per_second:
                    await self._get_limiter().acquire()
                await shared.wait_turn()
                with _transport_errors(request, settings):
                    response = await shared.send(request)
                return _parse_response(response, settings, shape)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get_limiter(self) -> AsyncLimiter:
        if self._limiter is None:
            from aiolimiter import AsyncLimiter

            rate = float(self.max_requests_per_second or 0)
            # A leaky bucket holding a tenth of a second's worth of requests: the average rate is
            # `rate`, and a burst never exceeds rate/10, so a server-side limit of the same rate holds.
            burst = max(1.0, rate / 10)
            self._limiter = AsyncLimiter(max_rate=burst, time_period=burst / rate)
        return self._limiter

    # -- sync API ------------------------------------------------------------------------------

    def get_transcript(self, transcript_id: str) -> Transcript:
        """
        Return a transcript.

        :param transcript_id: the transcript's id.
        """
        return self._request("GET", _transcript_path(transcript_id), shape=_TRANSCRIPT)  # type: ignore[no-any-return]

    def submit_transcript(self, audio_url: str, **options: Any) -> Transcript:
        """
        Submit audio for transcription (``POST /v2/transcript``) and return the queued transcript.

        :param audio_url: a URL the API can fetch the audio from.
        :param options: further request fields of the API (``speaker_labels=True``, ...).
        """
        if not isinstance(audio_url, str) or not audio_url.startswith(("http://", "https://")):
            raise ValueError(f"audio_url must be an http(s) URL, got {audio_url!r}")
        body = {"audio_url": audio_url, **options}
        return self._request("POST", TRANSCRIPT_PATH, body, _TRANSCRIPT)  # type: ignore[no-any-return]

    def delete_transcript(self, transcript_id: str) -> Transcript:
        """
        Delete a transcript and return it in its deleted shape (idempotent: deleting twice is fine).

        :param transcript_id: the transcript's id.
        """
        path = _transcript_path(transcript_id)
        return _deleted(self._request("DELETE", path, shape=_TRANSCRIPT), path, self.settings)

    def list_transcripts(
        self,
        *,
        status: str | TranscriptStatus | None = None,
        created_on: str | date | None = None,
        before_id: str | None = None,
        after_id: str | None = None,
        limit: int = MAX_LIST_LIMIT,
    ) -> Iterator[TranscriptListItem]:
        """
        Yield transcripts newest first, one page at a time, reading older pages with ``before_id``.

        Each page is requested from the connection's base URL with the caller's filters and the
        last id of the page before: the API's ``prev_url`` is not followed, because behind a
        gateway it names the API's own host. With ``after_id`` (and no ``before_id``) the
        transcripts newer than it are yielded oldest first, paging with ``after_id``.
        The API lists only the last 90 days of transcripts.

        :param status: only transcripts with this status.
        :param created_on: only transcripts created on this date.
        :param before_id: only transcripts created before this one.
        :param after_id: only transcripts created after this one.
        :param limit: page size, 1 to 200.
        """
        walk = _ListWalk(_list_params(status, created_on, before_id, after_id, limit), self.settings)
        while walk.path is not None:
            yield from walk.advance(self._request("GET", walk.path, shape=_LIST_PAGE))

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and the URL with one cheap request (``GET /v2/transcript?limit=1``)."""
        try:
            self._request("GET", f"{TRANSCRIPT_PATH}?limit=1")
        except Exception as error:
            return False, str(error)
        return True, f"Connected to AssemblyAI ({self.settings.region}, {self.settings.base_url})"

    # -- async API -----------------------------------------------------------------------------

    async def aget_transcript(self, transcript_id: str) -> Transcript:
        """
        Return a transcript, without blocking the event loop.

        :param transcript_id: the transcript's id.
        """
        return await self._arequest(  # type: ignore[no-any-return]
            "GET", _transcript_path(transcript_id), shape=_TRANSCRIPT
        )

    async def adelete_transcript(self, transcript_id: str) -> Transcript:
        """
        Delete a transcript and return it in its deleted shape, without blocking the event loop.

        :param transcript_id: the transcript's id.
        """
        path = _transcript_path(transcript_id)
        deleted = await self._arequest("DELETE", path, shape=_TRANSCRIPT)
        return _deleted(deleted, path, await self.aget_settings())

    async def alist_transcript_page(
        self,
        *,
        status: str | TranscriptStatus | None = None,
        before_id: str | None = None,
        limit: int = MAX_LIST_LIMIT,
    ) -> TranscriptList:
        """
        Return one page of the transcript list, newest first, without following its links.

        To read older pages, pass the last id of a page as ``before_id``: unlike ``prev_url``,
        that also works through a gateway (a ``base_url`` override) and keeps the ``status`` filter.

        :param status: only transcripts with this status.
        :param before_id: only transcripts created before this one.
        :param limit: page size, 1 to 200.
        """
        return await self._arequest(  # type: ignore[no-any-return]
            "GET", _list_path(_list_params(status, None, before_id, None, limit)), shape=_LIST_PAGE
        )

    async def alist_transcripts(
        self,
        *,
        status: str | TranscriptStatus | None = None,
        created_on: str | date | None = None,
        before_id: str | None = None,
        after_id: str | None = None,
        limit: int = MAX_LIST_LIMIT,
    ) -> AsyncIterator[TranscriptListItem]:
        """
        Yield transcripts newest first, page by page with ``before_id``, like :meth:`list_transcripts`.

        :param status: only transcripts with this status.
        :param created_on: only transcripts created on this date.
        :param before_id: only transcripts created before this one.
        :param after_id: only transcripts created after this one.
        :param limit: page size, 1 to 200.
        """
        params = _list_params(status, created_on, before_id, after_id, limit)
        walk = _ListWalk(params, await self.aget_settings())
        while walk.path is not None:
            for item in walk.advance(await self._arequest("GET", walk.path, shape=_LIST_PAGE)):
                yield item


@contextmanager
def _transport_errors(request: httpx.Request, settings: ConnectionSettings) -> Iterator[None]:
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


def _mask(secret: str) -> None:
    from airflow.providers.common.compat.sdk import mask_secret

    mask_secret(secret)
