"""
An EU connection talks only to the EU host, on every call path: the emulator's request log has every
request in its EU region and none in US; and with the real hosts (``region=eu``, no ``base_url``) a
respx route on the US host fails the test if anything reaches it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_assemblyai.exceptions import TranscriptNotFoundError
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.operators.assemblyai import (
    DeleteTranscriptOperator,
    PurgeTranscriptsOperator,
)
from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger
from tests.api_bodies import EU, US, deleted_body, list_page, transcript_body

CONTEXT: Any = {}  # operators outside a DAG run need nothing from the context here


@pytest.fixture
def eu(emu: AssemblyAIEmulator, set_connection: Callable[..., None]) -> AssemblyAIEmulator:
    """The emulator with transcripts in both regions; ``assemblyai_default`` is its EU region."""
    emu.seed(3, "us", statuses=["completed"])
    set_connection(region="eu", base_url=emu.base_url("eu"))
    return emu


def only_eu(emu: AssemblyAIEmulator, at_least: int = 1) -> None:
    """Every request the emulator served was in its EU region, and there were some."""
    regions = [record.region for record in emu.requests]
    assert len(regions) >= at_least
    assert set(regions) == {"eu"}
    assert emu.requests_for(region="us") == []
    assert emu.ids("us", deleted=True) == []


def test_sync_hook_calls_stay_in_eu(eu: AssemblyAIEmulator) -> None:
    ids = eu.seed(5, "eu", statuses=["completed"])
    hook = AssemblyAIHook()

    assert [item.id for item in hook.list_transcripts(limit=2)] == ids  # three pages
    assert hook.get_transcript(ids[0]).id == ids[0]
    assert hook.delete_transcript(ids[0]).is_deleted
    with pytest.raises(TranscriptNotFoundError):
        hook.delete_transcript(eu.ids("us")[0])  # a US transcript does not exist in the EU

    assert len(eu.requests_for("GET", path="/v2/transcript", region="eu")) == 4
    only_eu(eu, at_least=6)
    assert eu.is_deleted("eu", ids[0])


async def test_async_hook_calls_stay_in_eu(eu: AssemblyAIEmulator, shared_clients: None) -> None:
    ids = eu.seed(5, "eu", statuses=["completed"])
    hook = AssemblyAIHook()

    assert [item.id async for item in hook.alist_transcripts(limit=2)] == ids
    assert (await hook.aget_transcript(ids[1])).id == ids[1]
    assert (await hook.adelete_transcript(ids[1])).is_deleted
    with pytest.raises(TranscriptNotFoundError):
        await hook.aget_transcript(eu.ids("us")[0])

    only_eu(eu, at_least=6)
    assert eu.is_deleted("eu", ids[1])


async def test_trigger_run_stays_in_eu(eu: AssemblyAIEmulator, shared_clients: None) -> None:
    tid = eu.create_transcript("eu", status="processing", completes_in=0.3)
    trigger = TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05)

    event = await asyncio.wait_for(trigger.run().__anext__(), timeout=30)

    assert event.payload["status"] == "success"
    only_eu(eu)


def test_sensor_poke_stays_in_eu(eu: AssemblyAIEmulator) -> None:
    tid = eu.create_transcript("eu", status="completed")
    sensor = TranscriptSensor(task_id="sense", transcript_id=tid, poke_interval=1, timeout=60)

    result = sensor.poke(CONTEXT)

    assert getattr(result, "is_done", False)
    only_eu(eu)


def test_delete_operator_stays_in_eu(eu: AssemblyAIEmulator) -> None:
    tid = eu.create_transcript("eu", status="completed")

    body = DeleteTranscriptOperator(task_id="delete", transcript_id=tid).execute(CONTEXT)

    assert body is not None
    assert body["id"] == tid
    assert eu.is_deleted("eu", tid)
    only_eu(eu, at_least=2)


def test_deferred_delete_operator_stays_in_eu(eu: AssemblyAIEmulator) -> None:
    tid = eu.create_transcript("eu", status="processing", completes_in=0.3)
    operator = DeleteTranscriptOperator(
        task_id="delete", transcript_id=tid, deferrable=True, poll_interval=0.05
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(CONTEXT)
    trigger = deferred.value.trigger

    async def wait() -> Any:
        try:
            return await asyncio.wait_for(trigger.run().__anext__(), timeout=30)
        finally:
            await AssemblyAIHook.aclose_shared_clients()

    event = asyncio.run(wait())
    body = operator.execute_complete(CONTEXT, event.payload, **deferred.value.kwargs)

    assert body is not None
    assert body["id"] == tid
    assert eu.is_deleted("eu", tid)
    only_eu(eu, at_least=3)


@pytest.mark.parametrize("mode", ["scan", "ids"])
def test_purge_operator_stays_in_eu(eu: AssemblyAIEmulator, mode: str) -> None:
    ids = eu.seed(7, "eu", statuses=["completed", "error"])
    arguments: dict[str, Any] = (
        {"older_than": timedelta(0)} if mode == "scan" else {"transcript_ids": [*ids, eu.ids("us")[0]]}
    )
    operator = PurgeTranscriptsOperator(task_id="purge", concurrency=4, fail_on_error=False, **arguments)

    summary = operator.execute(CONTEXT)

    assert summary["deleted"] == 7
    assert summary["not_found"] == (1 if mode == "ids" else 0)  # the US id is not in the EU
    assert all(eu.is_deleted("eu", tid) for tid in ids)
    only_eu(eu, at_least=8)


# -- the real hosts, with respx: region=eu and no base_url ----------------------------------------

TRANSCRIPT = re.compile(r"^https://api\.eu\.assemblyai\.com/v2/transcript/(?P<tid>[A-Za-z0-9_-]+)$")


@pytest.fixture
def real_eu(api: respx.MockRouter, set_connection: Callable[..., None]) -> respx.Route:
    """EU routes that answer like the API; returns the US route, which fails any request sent to it."""
    set_connection(region="eu")
    page2 = f"{EU}/v2/transcript?limit=2&before_id=b"
    for limit in ("2", "200"):  # page 2 first: respx's params match would also take it for page 1
        api.get(f"{EU}/v2/transcript", params={"limit": limit, "before_id": "b"}).respond(
            200, json=list_page(["c"], None, base=EU)
        )
        api.get(f"{EU}/v2/transcript", params={"limit": limit}).respond(
            200, json=list_page(["a", "b"], page2, base=EU)
        )
    api.get(url__regex=TRANSCRIPT).mock(
        side_effect=lambda request, tid: httpx.Response(200, json=transcript_body(tid))
    )
    api.delete(url__regex=TRANSCRIPT).mock(
        side_effect=lambda request, tid: httpx.Response(200, json=deleted_body(tid))
    )

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"an EU connection sent {request.method} {request.url} to the US host")

    return api.route(host="api.assemblyai.com").mock(side_effect=refuse)


def _sync_paths() -> list[tuple[str, Callable[[], Any]]]:
    hook = AssemblyAIHook()
    return [
        ("get", lambda: hook.get_transcript("a")),
        ("delete", lambda: hook.delete_transcript("a")),
        ("list", lambda: [item.id for item in hook.list_transcripts(limit=2)]),
        ("sensor poke", lambda: TranscriptSensor(task_id="s", transcript_id="a").poke(CONTEXT)),
        (
            "delete operator",
            lambda: DeleteTranscriptOperator(task_id="d", transcript_id="a").execute(CONTEXT),
        ),
        (
            "purge operator (ids)",
            lambda: PurgeTranscriptsOperator(task_id="p", transcript_ids=["a", "b"]).execute(CONTEXT),
        ),
        (
            "purge operator (scan)",
            lambda: PurgeTranscriptsOperator(task_id="p", older_than=timedelta(0)).execute(CONTEXT),
        ),
    ]


def test_real_hosts_eu_sync_paths_never_reach_us(api: respx.MockRouter, real_eu: respx.Route) -> None:
    assert AssemblyAIHook().base_url == EU
    results = {name: call() for name, call in _sync_paths()}

    assert results["list"] == ["a", "b", "c"]
    assert results["purge operator (ids)"]["deleted"] == 2
    assert results["purge operator (scan)"]["deleted"] == 3
    assert not real_eu.called
    assert {call.request.url.host for call in api.calls} == {"api.eu.assemblyai.com"}
    assert US not in {str(call.request.url) for call in api.calls}


async def test_real_hosts_eu_async_paths_never_reach_us(
    api: respx.MockRouter, real_eu: respx.Route, shared_clients: None
) -> None:
    hook = AssemblyAIHook()
    assert (await hook.aget_transcript("a")).id == "a"
    assert (await hook.adelete_transcript("a")).is_deleted
    assert [item.id async for item in hook.alist_transcripts(limit=2)] == ["a", "b", "c"]
    event = await asyncio.wait_for(TranscriptStatusTrigger(transcript_id="a").run().__anext__(), 30)
    assert event.payload["status"] == "success"

    assert not real_eu.called
    assert len(api.calls) == 5  # get, delete, two list pages, one poll
    assert {call.request.url.host for call in api.calls} == {"api.eu.assemblyai.com"}
