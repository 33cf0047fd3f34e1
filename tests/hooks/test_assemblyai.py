"""AssemblyAIHook: identity, headers, pooling, get/delete/list (sync and async), paging, test_connection."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_assemblyai import __version__
from airflow_provider_assemblyai.exceptions import AssemblyAIAuthError, AssemblyAIError
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.models import Transcript, TranscriptListItem, TranscriptStatus
from tests.api_bodies import US, deleted_body, list_page, transcript_body
from tests.conftest import TEST_API_KEY

LIST = f"{US}/v2/transcript"


def test_class_attributes() -> None:
    assert AssemblyAIHook.conn_name_attr == "assemblyai_conn_id"
    assert AssemblyAIHook.default_conn_name == "assemblyai_default"
    assert AssemblyAIHook.conn_type == "assemblyai"
    assert AssemblyAIHook.hook_name == "AssemblyAI"
    assert AssemblyAIHook().assemblyai_conn_id == "assemblyai_default"
    assert AssemblyAIHook("other").assemblyai_conn_id == "other"


def test_base_url_and_region(hook: AssemblyAIHook) -> None:
    assert hook.base_url == US
    assert hook.region == "us"


# -- headers and pooling ---------------------------------------------------------------------------


def test_request_sends_bare_key_and_user_agent(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    route = api.get(f"{US}/v2/transcript/abc").respond(200, json=transcript_body())
    hook.get_transcript("abc")
    request = route.calls.last.request
    assert request.headers["Authorization"] == TEST_API_KEY  # the bare key, no "Bearer"
    assert request.headers["User-Agent"] == f"airflow-provider-assemblyai/{__version__}"


async def test_async_request_sends_bare_key_and_user_agent(
    hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None
) -> None:
    route = api.get(f"{US}/v2/transcript/abc").respond(200, json=transcript_body())
    await hook.aget_transcript("abc")
    request = route.calls.last.request
    assert request.headers["Authorization"] == TEST_API_KEY
    assert request.headers["User-Agent"] == f"airflow-provider-assemblyai/{__version__}"


def test_sync_client_is_pooled_and_reused(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    api.get(f"{US}/v2/transcript/abc").respond(200, json=transcript_body())
    api.delete(f"{US}/v2/transcript/abc").respond(200, json=deleted_body())
    client = hook.get_conn()
    assert isinstance(client, httpx.Client)
    hook.get_transcript("abc")
    hook.delete_transcript("abc")
    assert hook.client is client
    assert hook.get_conn() is client
    assert client.follow_redirects is False
    hook.close()
    assert client.is_closed
    assert hook.get_conn() is not client  # a fresh client after close()


async def test_async_client_is_shared_between_hooks_on_a_loop(
    set_connection: Callable[..., None], api: respx.MockRouter, shared_clients: None
) -> None:
    set_connection()
    set_connection("assemblyai_second")
    api.get(f"{US}/v2/transcript/abc").respond(200, json=transcript_body())
    first, second = AssemblyAIHook(), AssemblyAIHook("assemblyai_second")
    await first.aget_transcript("abc")
    await second.aget_transcript("abc")
    shared = await first._async_client(await first.aget_settings())
    assert shared is await second._async_client(await second.aget_settings())
    assert shared.client.follow_redirects is False
    await AssemblyAIHook.aclose_shared_clients()
    assert shared.client.is_closed


# -- get / delete ----------------------------------------------------------------------------------


def test_get_transcript(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    body = transcript_body("abc", status="processing", brand_new_field=1)
    api.get(f"{US}/v2/transcript/abc").respond(200, json=body)
    transcript = hook.get_transcript("abc")
    assert isinstance(transcript, Transcript)
    assert transcript.status is TranscriptStatus.PROCESSING
    assert transcript.raw == body


async def test_aget_transcript(hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None) -> None:
    body = transcript_body("abc", status="error", error="Download error")
    api.get(f"{US}/v2/transcript/abc").respond(200, json=body)
    transcript = await hook.aget_transcript("abc")
    assert transcript.status is TranscriptStatus.ERROR
    assert transcript.error == "Download error"
    assert transcript.raw == body


def test_delete_transcript(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    route = api.delete(f"{US}/v2/transcript/abc").respond(200, json=deleted_body())
    transcript = hook.delete_transcript("abc")
    assert transcript.is_deleted
    assert transcript.raw == deleted_body()
    assert route.call_count == 1


async def test_adelete_transcript(hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None) -> None:
    route = api.delete(f"{US}/v2/transcript/abc").respond(200, json=deleted_body())
    transcript = await hook.adelete_transcript("abc")
    assert transcript.is_deleted
    assert route.call_count == 1


def test_delete_without_deleted_shape_is_not_reported_as_deleted(
    hook: AssemblyAIHook, api: respx.MockRouter
) -> None:
    api.delete(f"{US}/v2/transcript/abc").respond(200, json=transcript_body())
    with pytest.raises(AssemblyAIError, match="without its deleted shape") as info:
        hook.delete_transcript("abc")
    assert (info.value.method, info.value.path) == ("DELETE", "/v2/transcript/abc")


async def test_adelete_without_deleted_shape_is_not_reported_as_deleted(
    hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None
) -> None:
    api.delete(f"{US}/v2/transcript/abc").respond(200, json=transcript_body(status="queued"))
    with pytest.raises(AssemblyAIError, match="not reporting it as deleted"):
        await hook.adelete_transcript("abc")


def test_submit_transcript_posts_the_options(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    route = api.post(LIST).respond(200, json=transcript_body("new", status="queued"))
    transcript = hook.submit_transcript("https://example.com/a.mp3", speaker_labels=True)
    assert transcript.status is TranscriptStatus.QUEUED
    assert json.loads(route.calls.last.request.content) == {
        "audio_url": "https://example.com/a.mp3",
        "speaker_labels": True,
    }


@pytest.mark.parametrize("audio_url", ["", "ftp://x/a.mp3", "/local/a.mp3", None, 5])
def test_submit_transcript_rejects_bad_audio_url(
    hook: AssemblyAIHook, api: respx.MockRouter, audio_url: Any
) -> None:
    with pytest.raises(ValueError, match="audio_url must be an http"):
        hook.submit_transcript(audio_url)
    assert not api.calls


# -- list ------------------------------------------------------------------------------------------


def _paged(pages: dict[str | None, dict[str, Any]], seen: list[str]) -> Callable[[httpx.Request], Any]:
    """A respx side effect answering list pages by ``before_id`` (None: the first page)."""

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=pages[request.url.params.get("before_id")])

    return answer


THREE_PAGES = {
    None: list_page(["t1", "t2"], f"{LIST}?limit=2&before_id=t2"),
    "t2": list_page(["t3", "t4"], f"{LIST}?limit=2&before_id=t4"),
    "t4": list_page(["t5"], None),
}


def test_list_pages_lazily_following_prev_url(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    seen: list[str] = []
    api.get(LIST).mock(side_effect=_paged(THREE_PAGES, seen))
    items = hook.list_transcripts(limit=2)
    assert seen == []  # nothing is requested before iteration starts
    first = next(items)
    assert isinstance(first, TranscriptListItem)
    assert first.id == "t1"
    assert len(seen) == 1
    assert next(items).id == "t2"
    assert len(seen) == 1  # the 2nd page waits until the 1st page's items are consumed
    assert next(items).id == "t3"
    assert len(seen) == 2
    assert [item.id for item in items] == ["t4", "t5"]
    assert seen == [f"{LIST}?limit=2", f"{LIST}?limit=2&before_id=t2", f"{LIST}?limit=2&before_id=t4"]


async def test_alist_pages_lazily_following_prev_url(
    hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None
) -> None:
    seen: list[str] = []
    api.get(LIST).mock(side_effect=_paged(THREE_PAGES, seen))
    items = hook.alist_transcripts(limit=2)
    assert [await anext(items), await anext(items)] == [
        TranscriptListItem.model_validate(t) for t in THREE_PAGES[None]["transcripts"]
    ]
    assert len(seen) == 1
    assert [item.id async for item in items] == ["t3", "t4", "t5"]
    assert len(seen) == 3


def test_list_sends_filters(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    route = api.get(LIST).respond(200, json=list_page(["t1"], None, limit=50))
    items = list(
        hook.list_transcripts(
            status="completed", created_on="2024-03-11", before_id="b-1", after_id="a_2", limit=50
        )
    )
    assert [i.id for i in items] == ["t1"]
    assert dict(route.calls.last.request.url.params) == {
        "limit": "50",
        "status": "completed",
        "created_on": "2024-03-11",
        "before_id": "b-1",
        "after_id": "a_2",
    }


def test_list_default_limit_is_the_maximum(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    route = api.get(LIST).respond(200, json=list_page([], f"{LIST}?limit=200&before_id=x", limit=200))
    assert list(hook.list_transcripts()) == []  # an empty page ends the walk even with a prev_url
    assert route.call_count == 1
    assert route.calls.last.request.url.params["limit"] == "200"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, "limit must be an integer from 1 to 200, got 0"),
        ({"limit": 201}, "got 201"),
        ({"limit": "10"}, "got '10'"),
        ({"limit": True}, "got True"),
        ({"status": "done"}, "status has unknown status 'done'"),
        ({"created_on": "yesterday"}, "created_on must be a date .* got 'yesterday'"),
        ({"before_id": "../x"}, "before_id '../x'"),
        ({"after_id": "a b"}, "after_id 'a b'"),
        ({"before_id": "None"}, "before_id is 'None': there is no transcript id"),
    ],
)
def test_list_rejects_bad_arguments_before_any_request(
    hook: AssemblyAIHook, api: respx.MockRouter, kwargs: dict[str, Any], match: str
) -> None:
    catch_all = api.route().respond(200, json=list_page([], None))
    with pytest.raises(ValueError, match=match):
        next(hook.list_transcripts(**kwargs))
    assert catch_all.call_count == 0


@pytest.mark.parametrize(
    "foreign",
    [
        "https://evil.example/v2/transcript?limit=2&before_id=t2",  # other host
        "http://api.assemblyai.com/v2/transcript?limit=2&before_id=t2",  # other scheme
        "https://api.assemblyai.com:8443/v2/transcript?limit=2&before_id=t2",  # other port
        "https://api.assemblyai.com.evil.example/v2/transcript?limit=2&before_id=t2",  # suffix trick
        "https://user@api.assemblyai.com/v2/transcript?limit=2&before_id=t2",  # userinfo
    ],
)
def test_list_never_requests_a_foreign_prev_url(
    hook: AssemblyAIHook, api: respx.MockRouter, foreign: str
) -> None:
    """The next page is read from the base URL with before_id; the link itself is never requested."""
    seen: list[str] = []
    pages = {None: list_page(["t1", "t2"], foreign), "t2": list_page(["t3"], None)}
    own = api.get(LIST).mock(side_effect=_paged(pages, seen))
    elsewhere = api.route(url__startswith=foreign.split("/v2")[0]).respond(200, json=list_page([], None))

    assert [item.id for item in hook.list_transcripts(limit=2)] == ["t1", "t2", "t3"]

    assert elsewhere.call_count == 0  # the key never went there
    assert seen == [f"{LIST}?limit=2", f"{LIST}?limit=2&before_id=t2"]
    assert [call.request.headers["authorization"] for call in own.calls] == [TEST_API_KEY] * 2


async def test_alist_never_requests_a_foreign_prev_url(
    hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None
) -> None:
    seen: list[str] = []
    pages = {
        None: list_page(["t1"], "https://evil.example/v2/transcript?before_id=t1", limit=1),
        "t1": list_page([], None, limit=1),
    }
    api.get(LIST).mock(side_effect=_paged(pages, seen))
    elsewhere = api.route(host="evil.example").respond(200, json=list_page([], None))

    assert [item.id async for item in hook.alist_transcripts(limit=1)] == ["t1"]
    assert elsewhere.call_count == 0
    assert seen == [f"{LIST}?limit=1", f"{LIST}?limit=1&before_id=t1"]


def test_list_pages_with_before_id_keeping_the_filters(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    """Page 2 keeps status, created_on and limit, whatever the API's prev_url says."""
    seen: list[str] = []
    pages = {
        None: list_page(["t1", "t2"], f"{LIST}?limit=2&before_id=t2"),  # a link without the filters
        "t2": list_page(["t3"], None),
    }
    api.get(LIST).mock(side_effect=_paged(pages, seen))

    items = hook.list_transcripts(status="error", created_on="2024-03-11", limit=2)

    assert [item.id for item in items] == ["t1", "t2", "t3"]
    assert seen[1] == f"{LIST}?limit=2&status=error&created_on=2024-03-11&before_id=t2"


@pytest.mark.parametrize(
    ("prev_url", "requests"),
    [
        (None, 1),  # the API's end signal: no older page
        (f"{LIST}?limit=2&before_id=t2", 2),  # a link: one more page is read (it is empty)
    ],
)
def test_list_ends_at_a_null_prev_url_or_an_empty_page(
    hook: AssemblyAIHook, api: respx.MockRouter, prev_url: str | None, requests: int
) -> None:
    seen: list[str] = []
    api.get(LIST).mock(
        side_effect=_paged({None: list_page(["t1", "t2"], prev_url), "t2": list_page([], None)}, seen)
    )
    assert [item.id for item in hook.list_transcripts(limit=2)] == ["t1", "t2"]
    assert len(seen) == requests


def test_list_without_prev_url_ends_at_a_short_page(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    """A gateway that drops page_details.prev_url: a full page goes on, a short one ends the walk."""
    seen: list[str] = []
    pages = {None: list_page(["t1", "t2"], None), "t2": list_page(["t3"], None)}
    for page in pages.values():
        del page["page_details"]["prev_url"]
    api.get(LIST).mock(side_effect=_paged(pages, seen))

    assert [item.id for item in hook.list_transcripts(limit=2)] == ["t1", "t2", "t3"]
    assert len(seen) == 2


def test_list_detects_a_page_that_does_not_advance(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    """An API (or gateway) that ignores before_id would serve page 1 forever: stop with an error."""
    seen: list[str] = []
    pages = {
        None: list_page(["t1", "t2"], f"{LIST}?limit=2&before_id=t2"),
        "t2": list_page(["t1", "t2"], f"{LIST}?limit=2&before_id=t2"),  # before_id ignored
    }
    api.get(LIST).mock(side_effect=_paged(pages, seen))
    with pytest.raises(
        AssemblyAIError,
        match=r"list \(connection 'assemblyai_default', region us\) loops: .*before_id=t2, already used",
    ):
        list(hook.list_transcripts(limit=2))
    assert len(seen) == 2


async def test_alist_detects_a_page_ending_with_the_cursor_it_was_read_with(
    hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None
) -> None:
    route = api.get(LIST).respond(200, json=list_page(["t1"], f"{LIST}?limit=200&before_id=t1"))
    with pytest.raises(AssemblyAIError, match="already used"):
        _ = [item async for item in hook.alist_transcripts(before_id="t1")]
    assert route.call_count == 1


# -- test_connection ---------------------------------------------------------------------------------


def test_test_connection_ok(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    route = api.get(LIST).respond(200, json=list_page(["t1"], None, limit=1))
    ok, message = hook.test_connection()
    assert ok is True
    assert "us" in message
    assert US in message
    assert route.call_count == 1
    assert str(route.calls.last.request.url) == f"{LIST}?limit=1"


def test_test_connection_rejected_key(hook: AssemblyAIHook, api: respx.MockRouter) -> None:
    route = api.get(LIST).respond(401, json={"error": "Authentication error, API token missing/invalid"})
    ok, message = hook.test_connection()
    assert ok is False
    assert "HTTP 401" in message
    assert "API token missing/invalid" in message
    assert route.call_count == 1  # not retried
    assert TEST_API_KEY not in message


def test_test_connection_reports_bad_configuration(
    set_connection: Callable[..., None], api: respx.MockRouter
) -> None:
    set_connection(password=None)
    catch_all = api.route().respond(200, json={})
    ok, message = AssemblyAIHook().test_connection()
    assert ok is False
    assert "'assemblyai_default' has no API key" in message
    assert catch_all.call_count == 0


# -- async code fetches the connection asynchronously ---------------------------------------------------


async def test_async_path_uses_get_async_connection_not_the_sync_lookup(
    hook: AssemblyAIHook, api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, shared_clients: None
) -> None:
    import airflow.providers.common.compat.connection as compat_connection

    original = compat_connection.get_async_connection
    calls: list[str] = []

    async def counting(conn_id: str, hook: Any = None) -> Any:
        calls.append(conn_id)
        return await original(conn_id, hook)

    def sync_lookup(self: AssemblyAIHook) -> None:
        raise AssertionError("the async path touched the sync `settings` lookup")

    monkeypatch.setattr(compat_connection, "get_async_connection", counting)
    monkeypatch.setattr(AssemblyAIHook, "settings", property(sync_lookup))
    api.get(f"{US}/v2/transcript/abc").respond(200, json=transcript_body())
    api.delete(f"{US}/v2/transcript/abc").respond(200, json=deleted_body())
    api.get(LIST).respond(200, json=list_page(["t1"], None))

    assert (await hook.aget_transcript("abc")).id == "abc"
    assert (await hook.adelete_transcript("abc")).is_deleted
    assert [item.id async for item in hook.alist_transcripts()] == ["t1"]
    settings = await hook.aget_settings()
    assert calls == ["assemblyai_default"]  # fetched once, then cached on the hook
    assert (settings.region, settings.base_url, settings.api_key) == ("us", US, TEST_API_KEY)
    assert "client" not in vars(hook)  # the sync client was never built either


async def test_aget_settings_reports_bad_configuration(
    set_connection: Callable[..., None], api: respx.MockRouter, shared_clients: None
) -> None:
    set_connection(region="asia")
    catch_all = api.route().respond(200, json={})
    with pytest.raises(ValueError, match="'assemblyai_default' has unknown region 'asia'"):
        await AssemblyAIHook().aget_transcript("abc")
    assert catch_all.call_count == 0


async def test_async_auth_error(hook: AssemblyAIHook, api: respx.MockRouter, shared_clients: None) -> None:
    api.get(f"{US}/v2/transcript/abc").respond(401, json={"error": "Invalid API key"})
    with pytest.raises(AssemblyAIAuthError, match="HTTP 401"):
        await hook.aget_transcript("abc")


# -- transcript ids are validated before any request -------------------------------------------------

BAD_IDS: list[object] = [
    "",
    "a/b",
    "../../v2/transcript",
    "..",
    "abc?limit=1",
    "abc#x",
    "abc%2Fdef",
    "a b",
    "abc\ndef",
    "None",
    " null ",
    "\u0430bc",  # Cyrillic small a
    "x" * 10_000,
    123,
    None,
    ["abc"],
    {"id": "abc"},
]


@pytest.mark.parametrize("method", ["get_transcript", "delete_transcript"])
@pytest.mark.parametrize("bad_id", BAD_IDS, ids=lambda v: repr(v)[:24])
def test_bad_transcript_id_sends_nothing(
    hook: AssemblyAIHook, api: respx.MockRouter, method: str, bad_id: Any
) -> None:
    catch_all = api.route().respond(200, json=deleted_body())
    with pytest.raises(ValueError, match="transcript_id") as info:
        getattr(hook, method)(bad_id)
    message = str(info.value)
    if bad_id in ("", None):
        assert "there is no transcript id, most likely because an upstream task returned nothing" in message
    elif isinstance(bad_id, str):
        assert repr(bad_id)[:30] in message  # names the value (shortened when long)
    else:
        assert type(bad_id).__name__ in message
    assert catch_all.call_count == 0
    assert not api.calls


@pytest.mark.parametrize("method", ["aget_transcript", "adelete_transcript"])
@pytest.mark.parametrize("bad_id", BAD_IDS, ids=lambda v: repr(v)[:24])
async def test_bad_transcript_id_sends_nothing_async(
    hook: AssemblyAIHook, api: respx.MockRouter, method: str, bad_id: Any
) -> None:
    catch_all = api.route().respond(200, json=deleted_body())
    with pytest.raises(ValueError, match="transcript_id"):
        await getattr(hook, method)(bad_id)
    assert catch_all.call_count == 0
