"""
AssemblyAIHook: the connection, the region, HTTP (sync and async httpx), retries and error mapping.

One request core serves both paths: :meth:`AssemblyAIHook._prepare` builds the request, the shared
tenacity policy (:meth:`AssemblyAIHook._retry_policy`) decides what is retried and how long to wait,
and :func:`~._responses.parse_response` maps every response to a body or to one of the provider's
exceptions. Only the ``send`` differs between :meth:`AssemblyAIHook._request` and
:meth:`AssemblyAIHook._arequest`.

Private helpers, one concern each: the connection's settings (``_connection``), the TLS context and
the shared async pool (``_pool``), reading answers (``_responses``) and paging the list (``_paging``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any

import httpx
from airflow.providers.common.compat.sdk import BaseHook
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from airflow_provider_assemblyai.exceptions import (
    AssemblyAIRateLimitError,
    AssemblyAIServerError,
    AssemblyAITransportError,
)
from airflow_provider_assemblyai.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
from airflow_provider_assemblyai.hooks._connection import ConnectionSettings
from airflow_provider_assemblyai.hooks._paging import (
    MAX_LIST_LIMIT,
    TRANSCRIPT_PATH,
    ListWalk,
    list_params,
    list_path,
    transcript_path,
)
from airflow_provider_assemblyai.hooks._pool import (
    ASYNC_POOL_SIZE,
    POOL_SHARD_SIZE,
    USER_AGENT,
    SharedAsyncClient,
    aclose_shared_async_clients,
    shared_async_client,
    ssl_context,
)
from airflow_provider_assemblyai.hooks._responses import (
    LIST_PAGE,
    LOOKUP_ERROR,
    SNIPPET_CHARS,
    TRANSCRIPT,
    Shape,
    check_deleted,
    parse_response,
    transport_errors,
)

if TYPE_CHECKING:
    from aiolimiter import AsyncLimiter

    from airflow_provider_assemblyai.models import (
        Transcript,
        TranscriptList,
        TranscriptListItem,
        TranscriptStatus,
    )

__all__ = [
    "ASYNC_POOL_SIZE",
    "LOOKUP_ERROR",
    "MAX_LIST_LIMIT",
    "POOL_SHARD_SIZE",
    "SNIPPET_CHARS",
    "TRANSCRIPT_PATH",
    "USER_AGENT",
    "AssemblyAIHook",
    "ConnectionSettings",
]


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
    #: A request retried after a 429 waits Retry-After plus up to this share of it, at random: the
    #: requests a 429 held back do not all come back in the same instant (and meet the limit again).
    retry_after_jitter: float = 0.5

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
            verify=ssl_context(),
        )

    def get_conn(self) -> httpx.Client:
        """Return the pooled sync httpx client."""
        return self.client

    def close(self) -> None:
        """Close the sync client's connections."""
        if "client" in self.__dict__:
            self.__dict__.pop("client").close()

    async def _async_client(self, settings: ConnectionSettings) -> SharedAsyncClient:
        return await shared_async_client(settings.base_url, settings.timeout, self.async_pool_size)

    @staticmethod
    async def aclose_shared_clients() -> None:
        """Close the async clients shared on the running event loop (call before the loop ends)."""
        await aclose_shared_async_clients()

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
            return seconds + float(jitter(state)) * seconds

        jitter = wait_random(0, self.retry_after_jitter)

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
        self, method: str, path_or_url: str, body: dict[str, Any] | None = None, shape: Shape | None = None
    ) -> Any:
        settings = self.settings
        for attempt in Retrying(**self._retry_policy(settings, method)):
            with attempt:
                request = self._prepare(self.client, settings, method, path_or_url, body)
                with transport_errors(request, settings):
                    response = self.client.send(request)
                return parse_response(response, settings, shape)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arequest(
        self, method: str, path_or_url: str, body: dict[str, Any] | None = None, shape: Shape | None = None
    ) -> Any:
        settings = await self.aget_settings()
        shared = await self._async_client(settings)
        async for attempt in AsyncRetrying(**self._retry_policy(settings, method, shared.hold_back)):
            with attempt:
                request = self._prepare(shared.client, settings, method, path_or_url, body)
                if self.max_requests_per_second:
                    await self._get_limiter().acquire()
                await shared.wait_turn()
                with transport_errors(request, settings):
                    response = await shared.send(request)
                return parse_response(response, settings, shape)
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
        return self._request("GET", transcript_path(transcript_id), shape=TRANSCRIPT)  # type: ignore[no-any-return]

    def submit_transcript(self, audio_url: str, **options: Any) -> Transcript:
        """
        Submit audio for transcription (``POST /v2/transcript``) and return the queued transcript.

        :param audio_url: a URL the API can fetch the audio from.
        :param options: further request fields of the API (``speaker_labels=True``, ...).
        """
        if not isinstance(audio_url, str) or not audio_url.startswith(("http://", "https://")):
            raise ValueError(f"audio_url must be an http(s) URL, got {audio_url!r}")
        body = {"audio_url": audio_url, **options}
        return self._request("POST", TRANSCRIPT_PATH, body, TRANSCRIPT)  # type: ignore[no-any-return]

    def delete_transcript(self, transcript_id: str) -> Transcript:
        """
        Delete a transcript and return it in its deleted shape (idempotent: deleting twice is fine).

        :param transcript_id: the transcript's id.
        """
        path = transcript_path(transcript_id)
        return check_deleted(self._request("DELETE", path, shape=TRANSCRIPT), path, self.settings)

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
        walk = ListWalk(list_params(status, created_on, before_id, after_id, limit), self.settings)
        while walk.path is not None:
            yield from walk.advance(self._request("GET", walk.path, shape=LIST_PAGE))

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
            "GET", transcript_path(transcript_id), shape=TRANSCRIPT
        )

    async def adelete_transcript(self, transcript_id: str) -> Transcript:
        """
        Delete a transcript and return it in its deleted shape, without blocking the event loop.

        :param transcript_id: the transcript's id.
        """
        path = transcript_path(transcript_id)
        deleted = await self._arequest("DELETE", path, shape=TRANSCRIPT)
        return check_deleted(deleted, path, await self.aget_settings())

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
            "GET", list_path(list_params(status, None, before_id, None, limit)), shape=LIST_PAGE
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
        params = list_params(status, created_on, before_id, after_id, limit)
        walk = ListWalk(params, await self.aget_settings())
        while walk.path is not None:
            for item in walk.advance(await self._arequest("GET", walk.path, shape=LIST_PAGE)):
                yield item


def _mask(secret: str) -> None:
    from airflow.providers.common.compat.sdk import mask_secret

    mask_secret(secret)
