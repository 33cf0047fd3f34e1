"""Error mapping: every response becomes a body or a provider exception with context, never the API key."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import httpx
import pytest
import respx

from airflow_provider_assemblyai.exceptions import (
    AssemblyAIAuthError,
    AssemblyAIError,
    AssemblyAIRateLimitError,
    AssemblyAIServerError,
    AssemblyAITransportError,
    TranscriptNotFoundError,
)
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.api_bodies import LOOKUP_ERROR, US, transcript_body
from tests.conftest import TEST_API_KEY

URL = f"{US}/v2/transcript/abc"
HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>"


@pytest.mark.parametrize(
    ("status", "body", "error_class"),
    [
        (401, {"error": "Authentication error, API token missing/invalid"}, AssemblyAIAuthError),
        (403, {"error": "Forbidden"}, AssemblyAIAuthError),
        (404, {"error": "Not found"}, TranscriptNotFoundError),
        (400, {"error": LOOKUP_ERROR}, TranscriptNotFoundError),
        (400, {"error": "after_id must be newer than before_id"}, AssemblyAIError),
        (409, {"error": "conflict"}, AssemblyAIError),
        (422, {"error": "unprocessable"}, AssemblyAIError),
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_4xx_is_mapped_and_not_retried(
    hook: AssemblyAIHook,
    api: respx.MockRouter,
    status: int,
    body: dict[str, str],
    error_class: type[AssemblyAIError],
    method: str,
) -> None:
    route = api.route(method=method, url=URL).respond(status, json=body)
    call = hook.get_transcript if method == "GET" else hook.delete_transcript
    with pytest.raises(error_class) as info:
        call("abc")
    error = info.value
    assert type(error) is error_class
    assert (error.status_code, error.api_error, error.method, error.path) == (
        status,
        body["error"],
        method,
        "/v2/transcript/abc",
    )
    where = f"AssemblyAI {method} /v2/transcript/abc (connection 'assemblyai_default', region us)"
    assert f"{where} failed with HTTP {status}: {body['error']}" in str(error)
    hint = "A transcript exists only in the region where it was created: if it is in the EU region"
    assert (hint in str(error)) == (error_class is TranscriptNotFoundError)
    assert route.call_count == 1


async def test_async_not_found(hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None) -> None:
    route = api.delete(URL).respond(400, json={"error": LOOKUP_ERROR})
    with pytest.raises(TranscriptNotFoundError) as info:
        await hook.adelete_transcript("abc")
    assert info.value.status_code == 400
    assert route.call_count == 1


def test_5xx_after_retries_is_a_server_error(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    route = api.get(URL).respond(500, json={"error": "Internal server error"})
    with pytest.raises(AssemblyAIServerError, match="HTTP 500: Internal server error") as info:
        hook.get_transcript("abc")
    assert info.value.status_code == 500
    assert route.call_count == 6  # default max_retries=5


def test_429_after_retries_is_a_rate_limit_error(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    route = api.get(URL).respond(429, json={"error": "Too many requests"}, headers={"Retry-After": "1"})
    with pytest.raises(AssemblyAIRateLimitError) as info:
        hook.get_transcript("abc")
    assert info.value.status_code == 429
    assert info.value.retry_after == 1.0
    assert route.call_count == 6


def test_html_502_from_a_proxy(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    api.get(URL).respond(502, text=HTML_502, headers={"Content-Type": "text/html"})
    with pytest.raises(AssemblyAIServerError) as info:
        hook.get_transcript("abc")
    message = str(info.value)
    assert "HTTP 502" in message
    assert "502 Bad Gateway" in message
    assert info.value.api_error is not None
    assert info.value.api_error.startswith("<html>")


def test_empty_503(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    api.get(URL).respond(503)
    with pytest.raises(AssemblyAIServerError, match=r"HTTP 503: \(empty body\)"):
        hook.get_transcript("abc")


def test_long_bodies_are_cut_to_a_snippet(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    api.get(URL).respond(418, text="teapot " * 1000)
    with pytest.raises(AssemblyAIError) as info:
        hook.get_transcript("abc")
    assert info.value.api_error is not None
    assert len(info.value.api_error) <= 200
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>maintenance</html>", "not a JSON object"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": "abc", "stat', "not a JSON object"),  # truncated JSON
        (b'{"status": "completed"}', "malformed transcript"),  # no id
        (b'{"id": "abc"}', "malformed transcript"),  # no status
        (b'{"id": "abc", "status": "finished"}', "malformed transcript"),  # unknown status
    ],
)
def test_unusable_2xx_body(hook: AssemblyAIHook, api: respx.MockRouter, body: bytes, fragment: str) -> None:
    api.get(URL).respond(200, content=body)
    with pytest.raises(AssemblyAIError, match=fragment) as info:
        hook.get_transcript("abc")
    error = info.value
    assert type(error) is AssemblyAIError  # not a pydantic ValidationError, not a JSONDecodeError
    assert error.__cause__ is None or not isinstance(error.__cause__, ValueError)
    assert error.status_code == 200
    assert (error.method, error.path) == ("GET", "/v2/transcript/abc")
    assert "HTTP 200" in str(error)
    assert "Traceback" not in str(error)
    assert len(str(error)) < 500


async def test_unusable_2xx_body_async(
    hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None
) -> None:
    api.delete(URL).respond(200, json={"status": "completed"})
    with pytest.raises(AssemblyAIError, match="malformed transcript") as info:
        await hook.adelete_transcript("abc")
    assert info.value.status_code == 200
    assert info.value.method == "DELETE"


def test_malformed_list_page(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    api.get(f"{US}/v2/transcript").respond(200, json={"transcripts": [{"id": "a"}]})
    with pytest.raises(AssemblyAIError, match="malformed transcript list page") as info:
        list(hook.list_transcripts())
    assert info.value.status_code == 200
    assert info.value.path == "/v2/transcript"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_is_not_followed(hook: AssemblyAIHook, api: respx.MockRouter, status: int) -> None:
    route = api.delete(URL).respond(
        status, headers={"Location": "https://elsewhere.example/v2/transcript/abc"}
    )
    elsewhere = api.route(host="elsewhere.example").respond(200, json=transcript_body())
    with pytest.raises(AssemblyAIError, match="redirects are not followed") as info:
        hook.delete_transcript("abc")
    assert info.value.status_code == status
    assert "https://elsewhere.example/v2/transcript/abc" in str(info.value)
    assert route.call_count == 1
    assert elsewhere.call_count == 0


async def test_redirect_is_not_followed_async(
    hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None
) -> None:
    api.get(URL).respond(302, headers={"Location": "https://elsewhere.example/x"})
    elsewhere = api.route(host="elsewhere.example").respond(200, json=transcript_body())
    with pytest.raises(AssemblyAIError, match="HTTP 302"):
        await hook.aget_transcript("abc")
    assert elsewhere.call_count == 0


# -- the API key never shows ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": f"Invalid API key {TEST_API_KEY}"}),  # an error body echoing the key
        (500, {"error": f"crash while handling key={TEST_API_KEY}"}),
        (502, f"<html>upstream said {TEST_API_KEY}</html>"),
        (400, {"error": f"bad request {TEST_API_KEY}", "key": TEST_API_KEY}),
    ],
)
def test_key_never_in_messages_reprs_or_logs(
    hook: AssemblyAIHook,
    api: respx.MockRouter,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: dict[str, str] | str,
) -> None:
    response = (
        httpx.Response(status, json=body) if isinstance(body, dict) else httpx.Response(status, text=body)
    )
    api.get(URL).mock(return_value=response)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AssemblyAIError) as info:
        hook.get_transcript("abc")
    error = info.value
    for text in (str(error), repr(error), str(error.api_error), str(error.args), caplog.text):
        assert TEST_API_KEY not in text
    assert "***" in str(error)  # redacted, not silently dropped


def test_key_never_in_transport_error_or_retry_logs(
    hook: AssemblyAIHook, api: respx.MockRouter, logs: Callable[[], str]
) -> None:
    api.get(URL).mock(side_effect=httpx.ConnectError(f"could not connect with {TEST_API_KEY}"))
    with pytest.raises(AssemblyAITransportError) as info:
        hook.get_transcript("abc")
    logged = logs()
    assert "retry 1 of 5" in logged  # the retries were logged...
    for text in (str(info.value), repr(info.value), logged):
        assert TEST_API_KEY not in text  # ...without the key


async def test_key_never_in_async_errors_or_logs(
    set_connection: Callable[..., None],
    api: respx.MockRouter,
    logs: Callable[[], str],
    shared_clients: None,
) -> None:
    set_connection(max_retries=2)
    api.get(URL).respond(503, json={"error": f"overloaded for {TEST_API_KEY}"})
    with pytest.raises(AssemblyAIServerError) as info:
        await AssemblyAIHook().aget_transcript("abc")
    logged = logs()
    assert "retry 2 of 2" in logged
    for text in (str(info.value), repr(info.value), str(info.value.api_error), logged):
        assert TEST_API_KEY not in text


# -- every API error names the connection and its region; a not-found hints at the other region ------


@pytest.mark.parametrize(("region", "other"), [("us", "eu"), ("eu", "us")])
async def test_a_transcript_of_the_other_region_is_not_found_naming_connection_region_and_hint(
    assemblyai_emulator: AssemblyAIEmulator,
    monkeypatch: pytest.MonkeyPatch,
    shared_clients: None,
    region: str,
    other: str,
) -> None:
    """The issue's case: an EU transcript deleted through a US connection (and the reverse)."""
    emu = assemblyai_emulator
    tid = emu.create_transcript(other, status="completed")
    monkeypatch.setenv("AIRFLOW_CONN_RETENTION", emu.connection_json(region))
    hook = AssemblyAIHook("retention")
    expected = (
        f"AssemblyAI DELETE /v2/transcript/{tid} (connection 'retention', region {region}) failed with "
        "HTTP 400: Transcript lookup error, transcript id not found. A transcript exists only in the "
        f"region where it was created: if it is in the {other.upper()} region, use a connection with "
        f"region '{other}'"
    )

    with pytest.raises(TranscriptNotFoundError) as sync_error:
        hook.delete_transcript(tid)
    with pytest.raises(TranscriptNotFoundError) as async_error:
        await hook.adelete_transcript(tid)

    assert str(sync_error.value) == str(async_error.value) == expected
    assert not emu.is_deleted(other, tid)


async def test_transport_errors_name_the_connection_and_region(
    set_connection: Callable[..., None], shared_clients: None
) -> None:
    with socket.socket() as unused:  # bound but not listening: connections are refused
        unused.bind(("127.0.0.1", 0))
        set_connection(
            "eu_archive", region="eu", base_url=f"http://127.0.0.1:{unused.getsockname()[1]}", max_retries=0
        )
        hook = AssemblyAIHook("eu_archive")
        with pytest.raises(AssemblyAITransportError) as sync_error:
            hook.get_transcript("abc")
        with pytest.raises(AssemblyAITransportError) as async_error:
            await hook.aget_transcript("abc")

    for error in (sync_error.value, async_error.value):
        assert str(error).startswith(
            "AssemblyAI GET /v2/transcript/abc (connection 'eu_archive', region eu) got no usable "
            "response: ConnectError"
        )
        assert TEST_API_KEY not in str(error)
