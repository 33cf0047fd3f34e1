"""Retries: what is retried, how many times, how long it waits (measured, not timed), sync and async."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest
import respx

from airflow_provider_assemblyai.exceptions import (
    AssemblyAIError,
    AssemblyAIRateLimitError,
    AssemblyAIServerError,
    AssemblyAITransportError,
)
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from tests.api_bodies import US, deleted_body, transcript_body

URL = f"{US}/v2/transcript/abc"
LIST = f"{US}/v2/transcript"
OK = httpx.Response(200, json=transcript_body())

TRANSPORT_FAILURES = [
    httpx.ConnectError("refused"),
    httpx.ConnectTimeout("connect timed out"),
    httpx.ReadTimeout("read timed out"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
    httpx.ReadError("connection reset by peer"),
]


def failures(status: int, n: int, then: httpx.Response = OK, **headers: str) -> list[httpx.Response]:
    """``n`` error responses, then ``then``."""
    return [httpx.Response(status, json={"error": f"HTTP {status}"}, headers=headers)] * n + [then]


@pytest.fixture
def hook_with(set_connection: Callable[..., None]) -> Callable[..., AssemblyAIHook]:
    """Build a hook whose connection has the given extras."""

    def build(**extra: object) -> AssemblyAIHook:
        set_connection(**extra)
        return AssemblyAIHook()

    return build


# -- sync ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_status_is_retried_then_succeeds(
    hook: AssemblyAIHook, api: respx.MockRouter, status: int
) -> None:
    route = api.get(URL).mock(side_effect=failures(status, 3))
    assert hook.get_transcript("abc").id == "abc"
    assert route.call_count == 4


@pytest.mark.parametrize(("max_retries", "attempts"), [(0, 1), (1, 2), (3, 4)])
def test_attempts_are_max_retries_plus_one(
    hook_with: Callable[..., AssemblyAIHook], api: respx.MockRouter, max_retries: int, attempts: int
) -> None:
    route = api.get(URL).respond(503)
    with pytest.raises(AssemblyAIServerError):
        hook_with(max_retries=max_retries).get_transcript("abc")
    assert route.call_count == attempts


def test_default_max_retries_is_five(hook: AssemblyAIHook, api: respx.MockRouter, waits: list[float]) -> None:
    route = api.get(URL).respond(502)
    with pytest.raises(AssemblyAIServerError):
        hook.get_transcript("abc")
    assert route.call_count == 6
    assert len(waits) == 5


@pytest.mark.parametrize("failure", TRANSPORT_FAILURES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_transport_failures_are_retried(
    hook: AssemblyAIHook, api: respx.MockRouter, failure: Exception, method: str
) -> None:
    body = transcript_body() if method == "GET" else deleted_body()
    route = api.route(method=method, url=URL).mock(
        side_effect=[failure, failure, httpx.Response(200, json=body)]
    )
    call = hook.get_transcript if method == "GET" else hook.delete_transcript
    assert call("abc").id == "abc"
    assert route.call_count == 3


def test_transport_failures_exhausted(
    hook_with: Callable[..., AssemblyAIHook], api: respx.MockRouter
) -> None:
    route = api.get(URL).mock(side_effect=httpx.ReadTimeout("read timed out"))
    with pytest.raises(AssemblyAITransportError, match="got no usable response: ReadTimeout") as info:
        hook_with(max_retries=2).get_transcript("abc")
    assert route.call_count == 3
    assert info.value.status_code is None
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_is_not_retried(hook: AssemblyAIHook, api: respx.MockRouter, status: int) -> None:
    route = api.delete(URL).respond(status, json={"error": "no"})
    with pytest.raises(AssemblyAIError):
        hook.delete_transcript("abc")
    assert route.call_count == 1


def test_delete_is_retried_safely(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    """A DELETE whose response was lost is sent again; the repeat answers the deleted shape again."""
    route = api.delete(URL).mock(
        side_effect=[
            httpx.RemoteProtocolError("Server disconnected"),
            httpx.Response(503),
            httpx.Response(200, json=deleted_body()),
        ]
    )
    assert hook.delete_transcript("abc").is_deleted
    assert route.call_count == 3


def test_list_pages_are_retried(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    page = {"page_details": {"limit": 200, "result_count": 0, "prev_url": None}, "transcripts": []}
    route = api.get(LIST).mock(side_effect=failures(500, 2, httpx.Response(200, json=page)))
    assert list(hook.list_transcripts()) == []
    assert route.call_count == 3


# -- POST (submit) is only retried when it certainly had no effect -------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_is_not_retried_on_5xx(hook: AssemblyAIHook, api: respx.MockRouter, status: int) -> None:
    route = api.post(LIST).respond(status)
    with pytest.raises(AssemblyAIServerError):
        hook.submit_transcript("https://example.com/a.mp3")
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("read"), httpx.RemoteProtocolError("dropped"), httpx.ReadError("reset")],
    ids=lambda e: type(e).__name__,
)
def test_post_is_not_retried_after_the_request_was_sent(
    hook: AssemblyAIHook, api: respx.MockRouter, failure: Exception
) -> None:
    route = api.post(LIST).mock(side_effect=failure)
    with pytest.raises(AssemblyAITransportError) as info:
        hook.submit_transcript("https://example.com/a.mp3")
    assert info.value.request_sent is True
    assert route.call_count == 1


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("refused"), httpx.ConnectTimeout("connect"), httpx.Response(429)],
    ids=lambda e: type(e).__name__,
)
def test_post_is_retried_when_it_had_no_effect(
    hook: AssemblyAIHook, api: respx.MockRouter, failure: Exception | httpx.Response
) -> None:
    queued = httpx.Response(200, json=transcript_body("new", status="queued"))
    route = api.post(LIST).mock(side_effect=[failure, failure, queued])
    assert hook.submit_transcript("https://example.com/a.mp3").id == "new"
    assert route.call_count == 3


# -- waits ---------------------------------------------------------------------------------------------------


def test_retry_after_is_honoured(
    hook: AssemblyAIHook, api: respx.MockRouter, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AssemblyAIHook, "retry_after_cap", 0.2)
    api.get(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.03"}),
            httpx.Response(429, headers={"Retry-After": "0"}),
            httpx.Response(429, headers={"Retry-After": "0.15"}),
            OK,
        ]
    )
    hook.get_transcript("abc")
    assert waits == [0.03, 0.0, 0.15]


def test_requests_held_back_by_a_429_come_back_spread_out(
    hook: AssemblyAIHook, api: respx.MockRouter, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retry-After plus up to half of it, at random: a held-back crowd does not return at one instant."""
    monkeypatch.setattr(AssemblyAIHook, "retry_after_jitter", 0.5)
    api.get(URL).mock(side_effect=failures(429, 5, **{"Retry-After": "0.04"}))
    hook.get_transcript("abc")
    assert len(waits) == 5
    assert all(0.04 <= wait <= 0.06 for wait in waits), waits
    assert len(set(waits)) > 1, waits


def test_retry_after_is_capped(hook: AssemblyAIHook, api: respx.MockRouter, waits: list[float]) -> None:
    api.get(URL).mock(side_effect=failures(429, 2, **{"Retry-After": "3600"}))
    hook.get_transcript("abc")
    assert waits == [AssemblyAIHook.retry_after_cap] * 2  # 0.05 in tests, 60 s by default


def test_429_without_retry_after_uses_backoff(
    hook: AssemblyAIHook, api: respx.MockRouter, waits: list[float]
) -> None:
    api.get(URL).mock(side_effect=failures(429, 2, **{"Retry-After": "soon"}))
    hook.get_transcript("abc")
    assert len(waits) == 2
    assert all(0 < w <= AssemblyAIHook.retry_max_wait + AssemblyAIHook.retry_initial_wait for w in waits)


def test_backoff_grows_exponentially_up_to_the_cap(
    hook: AssemblyAIHook, api: respx.MockRouter, waits: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AssemblyAIHook, "retry_initial_wait", 0.001)
    monkeypatch.setattr(AssemblyAIHook, "retry_max_wait", 0.004)
    api.get(URL).mock(side_effect=failures(500, 5))
    hook.get_transcript("abc")
    jitter = AssemblyAIHook.retry_initial_wait
    # wait_exponential(multiplier=0.001, max=0.004): 0.001, 0.002, 0.004, 0.004, 0.004 (+ jitter <= 0.001)
    for wait, base in zip(waits, [0.001, 0.002, 0.004, 0.004, 0.004], strict=True):
        assert base <= wait <= base + jitter


def test_retries_are_logged(hook: AssemblyAIHook, api: respx.MockRouter, logs: Callable[[], str]) -> None:
    api.get(URL).mock(side_effect=failures(503, 2))
    hook.get_transcript("abc")
    logged = logs()
    assert "retry 1 of 5" in logged
    assert "retry 2 of 5" in logged
    assert "HTTP 503" in logged


# -- async ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_async_retryable_status_is_retried(
    hook: AssemblyAIHook, api: respx.MockRouter, status: int, shared_clients: None
) -> None:
    route = api.get(URL).mock(side_effect=failures(status, 2))
    assert (await hook.aget_transcript("abc")).id == "abc"
    assert route.call_count == 3


async def test_async_attempts_are_max_retries_plus_one(
    hook_with: Callable[..., AssemblyAIHook], api: respx.MockRouter, shared_clients: None
) -> None:
    route = api.delete(URL).respond(500)
    with pytest.raises(AssemblyAIServerError):
        await hook_with(max_retries=2).adelete_transcript("abc")
    assert route.call_count == 3


async def test_async_rate_limit_exhausted(
    hook_with: Callable[..., AssemblyAIHook], api: respx.MockRouter, waits: list[float], shared_clients: None
) -> None:
    route = api.get(URL).respond(429, headers={"Retry-After": "0.01"})
    with pytest.raises(AssemblyAIRateLimitError):
        await hook_with(max_retries=3).aget_transcript("abc")
    assert route.call_count == 4
    assert waits == [0.01] * 3


@pytest.mark.parametrize("failure", TRANSPORT_FAILURES, ids=lambda e: type(e).__name__)
async def test_async_transport_failures_are_retried(
    hook: AssemblyAIHook, api: respx.MockRouter, failure: Exception, shared_clients: None
) -> None:
    route = api.delete(URL).mock(side_effect=[failure, httpx.Response(200, json=deleted_body())])
    assert (await hook.adelete_transcript("abc")).is_deleted
    assert route.call_count == 2


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_async_other_4xx_is_not_retried(
    hook: AssemblyAIHook, api: respx.MockRouter, status: int, shared_clients: None
) -> None:
    route = api.get(URL).respond(status, json={"error": "no"})
    with pytest.raises(AssemblyAIError):
        await hook.aget_transcript("abc")
    assert route.call_count == 1


async def test_async_retry_after_is_honoured_and_capped(
    hook: AssemblyAIHook,
    api: respx.MockRouter,
    waits: list[float],
    monkeypatch: pytest.MonkeyPatch,
    shared_clients: None,
) -> None:
    monkeypatch.setattr(AssemblyAIHook, "retry_after_cap", 0.1)
    api.get(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "0.02"}),
            httpx.Response(429, headers={"Retry-After": "120"}),
            OK,
        ]
    )
    await hook.aget_transcript("abc")
    assert waits == [0.02, 0.1]


async def test_a_429_holds_back_other_requests_on_the_shared_client(
    set_connection: Callable[..., None],
    api: respx.MockRouter,
    monkeypatch: pytest.MonkeyPatch,
    shared_clients: None,
) -> None:
    """After one request's 429, a concurrent request (another hook, same pool) waits for Retry-After too."""
    monkeypatch.setattr(AssemblyAIHook, "retry_after_cap", 0.2)
    set_connection()
    set_connection("assemblyai_other")
    limited, other = AssemblyAIHook(), AssemblyAIHook("assemblyai_other")
    arrivals: dict[str, list[float]] = {"a": [], "b": []}

    def answer_a(request: httpx.Request) -> httpx.Response:
        arrivals["a"].append(time.monotonic())
        if len(arrivals["a"]) == 1:
            return httpx.Response(429, headers={"Retry-After": "0.2"})
        return httpx.Response(200, json=transcript_body("a"))

    def answer_b(request: httpx.Request) -> httpx.Response:
        arrivals["b"].append(time.monotonic())
        return httpx.Response(200, json=transcript_body("b"))

    api.get(f"{US}/v2/transcript/a").mock(side_effect=answer_a)
    api.get(f"{US}/v2/transcript/b").mock(side_effect=answer_b)

    task_a = asyncio.create_task(limited.aget_transcript("a"))
    shared = await limited._async_client(await limited.aget_settings())
    while shared.resume_at == 0.0:  # noqa: ASYNC110 (until a's 429 has been handled)
        await asyncio.sleep(0)
    held_until = shared.resume_at
    first_429_at = arrivals["a"][0]
    result_b = await other.aget_transcript("b")
    result_a = await task_a

    assert (result_a.id, result_b.id) == ("a", "b")
    assert await other._async_client(await other.aget_settings()) is shared
    assert held_until - first_429_at >= 0.2 - 0.05  # the pool was held for about Retry-After
    assert arrivals["b"][0] >= held_until  # b was not sent before the hold ended
    assert len(arrivals["a"]) == 2
