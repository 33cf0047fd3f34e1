"""
Bad responses become a clear AssemblyAIError (HTTP status and a short snippet of the body), and no
data is lost: a DELETE is reported as done only when the transcript really is deleted, and one that
took effect is not reported as failed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx

from airflow_provider_assemblyai.exceptions import (
    AssemblyAIError,
    AssemblyAIServerError,
    AssemblyAITransportError,
)
from airflow_provider_assemblyai.hooks.assemblyai import SNIPPET_CHARS, AssemblyAIHook
from airflow_provider_assemblyai.operators.assemblyai import (
    DeleteTranscriptOperator,
    PurgeTranscriptsOperator,
)
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.api_bodies import US, deleted_body, list_item, list_page, transcript_body

CONTEXT: Any = {}


def short(error: AssemblyAIError) -> None:
    """The error carries a short, single-line snippet of what the server sent."""
    assert error.api_error is not None
    assert 0 < len(error.api_error) <= SNIPPET_CHARS
    assert "\n" not in error.api_error


# -- garbage bodies, from the emulator -------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_non_json_200_is_a_clear_error_and_deletes_nothing(emu: AssemblyAIEmulator, method: str) -> None:
    tid = emu.create_transcript("us", status="completed")
    emu.fail_next("non_json", method=method)
    hook = AssemblyAIHook()

    with pytest.raises(AssemblyAIError, match="not a JSON object") as info:
        (hook.get_transcript if method == "GET" else hook.delete_transcript)(tid)

    assert info.value.status_code == 200
    assert "Service temporarily rerouted" in (info.value.api_error or "")
    short(info.value)
    assert not emu.is_deleted("us", tid)


def test_a_delete_answered_with_non_json_is_not_reported_as_deleted(emu: AssemblyAIEmulator) -> None:
    tid = emu.create_transcript("us", status="completed")
    emu.fail_next("non_json", method="DELETE")

    with pytest.raises(AssemblyAIError, match="not a JSON object"):
        DeleteTranscriptOperator(task_id="delete", transcript_id=tid).execute(CONTEXT)

    assert not emu.is_deleted("us", tid)  # the operator checked with a GET: it was not deleted
    assert len(emu.requests_for("DELETE")) == 1  # a 200, even garbage, is not retried


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_html_502_from_a_proxy_is_a_server_error_with_a_snippet(
    emu: AssemblyAIEmulator, method: str
) -> None:
    tid = emu.create_transcript("us", status="completed")
    emu.fail_next("html", times=4, method=method)  # max_retries=3: every attempt gets the proxy page
    hook = AssemblyAIHook()

    with pytest.raises(AssemblyAIServerError, match="HTTP 502") as info:
        (hook.get_transcript if method == "GET" else hook.delete_transcript)(tid)

    assert info.value.status_code == 502
    assert "502 Bad Gateway" in (info.value.api_error or "")
    short(info.value)
    assert len(emu.requests_for(method, path=f"/v2/transcript/{tid}")) == 4
    assert not emu.is_deleted("us", tid)


def test_a_delete_lost_behind_a_502_is_not_reported_as_deleted(emu: AssemblyAIEmulator) -> None:
    tid = emu.create_transcript("us", status="completed")
    emu.fail_next("html", times=4, method="DELETE")

    with pytest.raises(AssemblyAIServerError, match="HTTP 502"):
        DeleteTranscriptOperator(task_id="delete", transcript_id=tid).execute(CONTEXT)

    assert not emu.is_deleted("us", tid)


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_truncated_body_is_a_clear_error(emu: AssemblyAIEmulator, method: str) -> None:
    tid = emu.create_transcript("us", status="completed")
    emu.fail_next("truncated_json", method=method)
    hook = AssemblyAIHook()

    with pytest.raises(AssemblyAIError, match="HTTP 200") as info:
        (hook.get_transcript if method == "GET" else hook.delete_transcript)(tid)

    assert info.value.status_code == 200
    short(info.value)
    assert info.value.api_error is not None
    assert info.value.api_error.startswith('{"id"')  # the start of what was sent


def test_a_truncated_delete_answer_that_took_effect_is_reported_as_deleted(emu: AssemblyAIEmulator) -> None:
    tid = emu.create_transcript("us", status="completed")
    emu.fail_next("truncated_json", method="DELETE")  # the delete happened; its answer is cut short

    body = DeleteTranscriptOperator(task_id="delete", transcript_id=tid).execute(CONTEXT)

    assert body is not None
    assert body["id"] == tid
    assert body == emu.get("us", tid)  # what GET says now: the deleted shape
    assert emu.is_deleted("us", tid)


def test_a_truncated_list_page_is_a_clear_error(emu: AssemblyAIEmulator) -> None:
    emu.seed(3, "us")
    emu.fail_next("truncated_json", method="GET", path="/v2/transcript")

    with pytest.raises(AssemblyAIError, match="HTTP 200"):
        list(AssemblyAIHook().list_transcripts())


def test_a_read_timeout_is_a_transport_error_after_bounded_retries(
    emu: AssemblyAIEmulator, set_connection: Callable[..., None]
) -> None:
    set_connection(base_url=emu.base_url("us"), timeout=0.3, max_retries=1)
    tid = emu.create_transcript("us", status="completed")
    emu.fail_next("slow", times=5, method="GET", delay=3.0)

    with pytest.raises(AssemblyAITransportError, match="ReadTimeout") as info:
        AssemblyAIHook().get_transcript(tid)

    assert info.value.request_sent
    assert info.value.status_code is None
    assert [rule.hits for rule in emu.faults] == [2]  # max_retries=1: two attempts, no more


def test_a_delete_that_timed_out_after_taking_effect_is_reported_as_deleted(
    emu: AssemblyAIEmulator, set_connection: Callable[..., None]
) -> None:
    set_connection(base_url=emu.base_url("us"), timeout=0.3, max_retries=0)
    tid = emu.create_transcript("us", status="completed")
    emu.fail_next("slow", method="DELETE", delay=3.0)  # applied, then answered too late

    body = DeleteTranscriptOperator(task_id="delete", transcript_id=tid).execute(CONTEXT)

    assert body is not None
    assert emu.is_deleted("us", tid)


# -- shapes the emulator never sends, through respx ---------------------------------------------


@pytest.fixture
def hook(set_connection: Callable[..., None]) -> AssemblyAIHook:
    set_connection()
    return AssemblyAIHook()


@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"status": "completed", "text": "hi"}, "id"),
        ({"id": "abc", "text": "hi"}, "status"),
        ({"id": "abc", "status": "exploded"}, "status"),
        ({"id": None, "status": "completed"}, "id"),
        ({}, "id"),
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_transcript_without_id_or_status_is_a_clear_error(
    api: respx.MockRouter, hook: AssemblyAIHook, body: dict[str, Any], missing: str, method: str
) -> None:
    api.route(method=method, url=f"{US}/v2/transcript/abc").respond(200, json=body)

    with pytest.raises(AssemblyAIError, match=f"malformed transcript .*{missing}"):
        (hook.get_transcript if method == "GET" else hook.delete_transcript)("abc")


def test_a_list_item_without_id_is_a_clear_error(api: respx.MockRouter, hook: AssemblyAIHook) -> None:
    page = list_page(["a"], None)
    del page["transcripts"][0]["id"]
    api.get(f"{US}/v2/transcript").respond(200, json=page)

    with pytest.raises(AssemblyAIError, match=r"malformed transcript list page \(transcripts\.0\.id"):
        list(hook.list_transcripts())


def _pages_by_before_id(api: respx.MockRouter, pages: dict[str | None, dict[str, Any]]) -> respx.Route:
    """Answer ``GET /v2/transcript`` with ``pages[before_id]`` (None: the first page)."""
    return api.get(f"{US}/v2/transcript").mock(
        side_effect=lambda request: httpx.Response(200, json=pages[request.url.params.get("before_id")])
    )


def test_a_list_that_ignores_before_id_stops_with_an_error(
    api: respx.MockRouter, hook: AssemblyAIHook
) -> None:
    """Page 1 again for before_id=b (a gateway that drops the query): stop instead of paging forever."""
    first = list_page(["a", "b"], f"{US}/v2/transcript?limit=200&before_id=b")
    route = _pages_by_before_id(api, {None: first, "b": first})

    with pytest.raises(AssemblyAIError, match="loops"):
        list(hook.list_transcripts())

    assert route.call_count == 2


def test_a_two_page_cycle_stops_with_an_error(api: respx.MockRouter, hook: AssemblyAIHook) -> None:
    link = f"{US}/v2/transcript?limit=200&before_id=x"  # never requested; only non-null matters
    _pages_by_before_id(
        api,
        {
            None: list_page(["a", "b"], link),
            "b": list_page(["c", "d"], link),
            "d": list_page(["a", "b"], link),
        },
    )

    seen: list[str] = []
    with pytest.raises(AssemblyAIError, match="loops"):
        seen.extend(item.id for item in hook.list_transcripts())

    assert seen == ["a", "b", "c", "d"]  # the looping page is refused whole
    assert len(api.calls) == 3


async def test_a_list_loop_stops_the_async_list_too(
    api: respx.MockRouter, hook: AssemblyAIHook, shared_clients: None
) -> None:
    page = list_page(["a"], f"{US}/v2/transcript?limit=200&before_id=a")
    _pages_by_before_id(api, {None: page, "a": page})

    with pytest.raises(AssemblyAIError, match="loops"):
        [item async for item in hook.alist_transcripts()]
    assert len(api.calls) == 2


def test_a_purge_scan_stops_on_a_looping_list_and_reports_what_it_did(
    api: respx.MockRouter, hook: AssemblyAIHook
) -> None:
    link = f"{US}/v2/transcript?limit=200&before_id=x"
    old = "2020-01-01T00:00:00"
    page1, page2 = list_page(["a", "b"], link), list_page(["c", "b"], link)  # page 2 ends where page 1 did
    page1["transcripts"] = [list_item(i, created=old) for i in ("a", "b")]
    page2["transcripts"] = [list_item(i, created=old) for i in ("c", "b")]
    _pages_by_before_id(api, {None: page1, "b": page2})
    deletes = api.delete(url__regex=rf"^{US}/v2/transcript/(?P<tid>\w+)$").mock(
        side_effect=lambda request, tid: httpx.Response(200, json=deleted_body(tid))
    )
    ti = _XComSink()

    with pytest.raises(AssemblyAIError, match="loops"):
        PurgeTranscriptsOperator(task_id="purge", older_than=timedelta(days=1)).execute({"ti": ti})

    summary = ti.pushed["purge_summary"]
    assert summary["scan_complete"] is False
    assert "loops" in summary["error"]
    assert sorted(summary["deleted_ids"]) == ["a", "b"]  # what was deleted before the loop, exactly
    assert summary["deleted"] == deletes.call_count == 2


class _XComSink:
    """The ``ti`` a failing purge pushes its summary to (records it)."""

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_a_200_delete_without_the_deleted_shape_is_never_reported_as_deleted(
    api: respx.MockRouter, hook: AssemblyAIHook
) -> None:
    api.delete(f"{US}/v2/transcript/abc").respond(200, json=transcript_body("abc"))
    api.get(f"{US}/v2/transcript/abc").respond(200, json=transcript_body("abc"))

    with pytest.raises(AssemblyAIError, match="not reporting it as deleted"):
        hook.delete_transcript("abc")
    with pytest.raises(AssemblyAIError, match="not reporting it as deleted"):
        DeleteTranscriptOperator(task_id="delete", transcript_id="abc").execute(CONTEXT)

    ti = _XComSink()
    with pytest.raises(AssemblyAIError, match="Purge incomplete"):
        PurgeTranscriptsOperator(task_id="purge", transcript_ids=["abc"]).execute({"ti": ti})
    summary = ti.pushed["purge_summary"]
    assert (summary["deleted"], summary["failed"], summary["deleted_ids"]) == (0, 1, [])
    assert "not reporting it as deleted" in summary["failed_ids"]["abc"]
