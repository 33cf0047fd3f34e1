"""The hook against the local emulator over real HTTP on 127.0.0.1: both regions, sync and async."""

from __future__ import annotations

import asyncio

import pytest

from airflow_provider_assemblyai.exceptions import AssemblyAIAuthError, TranscriptNotFoundError
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.models import TranscriptStatus
from airflow_provider_assemblyai.testing import AssemblyAIEmulator

REGIONS = ["us", "eu"]


@pytest.fixture
def connect(assemblyai_emulator: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch) -> AssemblyAIEmulator:
    """Point ``assemblyai_us`` / ``assemblyai_eu`` at the emulator's regions."""
    for region in REGIONS:
        env = assemblyai_emulator.connection_env(region, conn_id=f"assemblyai_{region}")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
    return assemblyai_emulator


@pytest.mark.parametrize("region", REGIONS)
def test_get_delete_list_sync(connect: AssemblyAIEmulator, region: str) -> None:
    emu = connect
    ids = emu.seed(25, region)
    hook = AssemblyAIHook(f"assemblyai_{region}")
    try:
        assert hook.base_url == emu.base_url(region)
        listed = list(hook.list_transcripts(limit=10))
        assert [item.id for item in listed] == ids  # newest first, over 3 pages
        pages = emu.requests_for(method="GET", region=region, path="/v2/transcript")
        assert len(pages) == 3
        assert "before_id=" in pages[1].query

        target = next(item for item in listed if item.status.is_terminal)
        fetched = hook.get_transcript(target.id)
        assert fetched.id == target.id
        assert not fetched.is_deleted
        deleted = hook.delete_transcript(target.id)
        assert deleted.is_deleted
        assert emu.is_deleted(region, target.id)
        assert hook.get_transcript(target.id).is_deleted  # still visible, in its deleted shape
        assert hook.delete_transcript(target.id).is_deleted  # deleting twice is fine
        assert {r.region for r in emu.requests} == {region}
        assert all(r.key_matched for r in emu.requests)
    finally:
        hook.close()


@pytest.mark.parametrize("region", REGIONS)
async def test_get_delete_list_async(connect: AssemblyAIEmulator, region: str) -> None:
    emu = connect
    ids = emu.seed(23, region)
    hook = AssemblyAIHook(f"assemblyai_{region}")
    try:
        listed = [item async for item in hook.alist_transcripts(limit=5)]
        assert [item.id for item in listed] == ids
        assert len(emu.requests_for(method="GET", path="/v2/transcript")) == 5
        completed = [item.id for item in listed if item.status is TranscriptStatus.COMPLETED][:3]
        results = await asyncio.gather(*(hook.adelete_transcript(tid) for tid in completed))
        assert all(t.is_deleted for t in results)
        assert all(emu.is_deleted(region, tid) for tid in completed)
        assert (await hook.aget_transcript(completed[0])).is_deleted
    finally:
        await AssemblyAIHook.aclose_shared_clients()


async def test_alist_transcript_page_filters_and_pages_with_before_id(connect: AssemblyAIEmulator) -> None:
    processing = [connect.create_transcript("us", status="processing") for _ in range(5)][::-1]
    connect.seed(4, "us")  # completed ones, newer: filtered out
    hook = AssemblyAIHook("assemblyai_us")
    try:
        first = await hook.alist_transcript_page(status="processing", limit=3)
        second = await hook.alist_transcript_page(
            status=TranscriptStatus.PROCESSING, before_id=first.transcripts[-1].id, limit=3
        )
        with pytest.raises(ValueError, match="limit must be an integer from 1 to 200, got 0"):
            await hook.alist_transcript_page(limit=0)
    finally:
        await AssemblyAIHook.aclose_shared_clients()
    assert [t.id for t in first.transcripts + second.transcripts] == processing  # newest first
    assert {t.status for t in first.transcripts + second.transcripts} == {TranscriptStatus.PROCESSING}
    queries = [r.query for r in connect.requests_for(method="GET", path="/v2/transcript")]
    assert queries == [
        "limit=3&status=processing",
        f"limit=3&status=processing&before_id={processing[2]}",
    ]


def test_transcripts_exist_only_in_their_region(connect: AssemblyAIEmulator) -> None:
    tid = connect.create_transcript("us", status="completed")
    with pytest.raises(TranscriptNotFoundError):
        AssemblyAIHook("assemblyai_eu").delete_transcript(tid)
    assert not connect.is_deleted("us", tid)
    assert AssemblyAIHook("assemblyai_us").delete_transcript(tid).is_deleted


def test_sync_connections_are_reused(connect: AssemblyAIEmulator) -> None:
    ids = connect.seed(5, "us")
    hook = AssemblyAIHook("assemblyai_us")
    try:
        client = hook.get_conn()
        for tid in ids:
            hook.get_transcript(tid)
        assert hook.get_conn() is client
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1  # five requests, one keep-alive TCP connection
    finally:
        hook.close()


async def test_async_pool_is_shared_and_connections_reused(connect: AssemblyAIEmulator) -> None:
    ids = connect.seed(6, "us")
    first, second = AssemblyAIHook("assemblyai_us"), AssemblyAIHook("assemblyai_us")
    try:
        for tid in ids:
            await first.aget_transcript(tid)
            await second.aget_transcript(tid)
        shared = await first._async_client(await first.aget_settings())
        assert await second._async_client(await second.aget_settings()) is shared
        pool = shared.client._transport._pool  # type: ignore[attr-defined]
        assert len(pool.connections) == 1
    finally:
        await AssemblyAIHook.aclose_shared_clients()


async def test_async_pool_is_split_into_small_clients_within_its_size(connect: AssemblyAIEmulator) -> None:
    ids = connect.seed(30, "us")
    hook = AssemblyAIHook("assemblyai_us", async_pool_size=6)
    try:
        transcripts = await asyncio.gather(*(hook.aget_transcript(tid) for tid in ids))
        assert [t.id for t in transcripts] == ids
        shared = await hook._async_client(await hook.aget_settings())
        assert shared.capacity == [4, 2]  # POOL_SHARD_SIZE connections per httpx client
        pools = [shard._transport._pool for shard in shared.shards]  # type: ignore[attr-defined]
        assert all(len(pool.connections) <= n for pool, n in zip(pools, shared.capacity, strict=True))
        assert sum(len(pool.connections) for pool in pools) == 6  # 30 at once: every connection used
        assert shared.busy == [0, 0]
    finally:
        await AssemblyAIHook.aclose_shared_clients()
    assert all(shard.is_closed for shard in shared.shards)


def test_test_connection(connect: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    ok, message = AssemblyAIHook("assemblyai_eu").test_connection()
    assert ok, message
    (request,) = connect.requests
    assert (request.method, request.path, request.query, request.region) == (
        "GET",
        "/v2/transcript",
        "limit=1",
        "eu",
    )
    monkeypatch.setenv("AIRFLOW_CONN_BAD_KEY", connect.connection_json("us", api_key="wrong-key-123"))
    ok, message = AssemblyAIHook("bad_key").test_connection()
    assert not ok
    assert "HTTP 401" in message


def test_wrong_key_is_an_auth_error(connect: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BAD_KEY", connect.connection_json("eu", api_key="wrong-key-123"))
    with pytest.raises(AssemblyAIAuthError):
        AssemblyAIHook("bad_key").get_transcript(connect.create_transcript("eu"))
    assert len(connect.requests) == 1  # not retried


@pytest.mark.parametrize("kind", ["error", "empty", "html", "rate_limit", "drop"])
def test_faults_before_the_effect_are_retried(connect: AssemblyAIEmulator, kind: str) -> None:
    tid = connect.create_transcript("us", status="completed")
    connect.fail_next(kind, times=2, method="DELETE")  # type: ignore[arg-type]
    assert AssemblyAIHook("assemblyai_us").delete_transcript(tid).is_deleted
    assert connect.is_deleted("us", tid)
    assert len(connect.requests_for(method="DELETE")) == 3


def test_delete_dropped_after_its_effect_is_retried_and_reported(connect: AssemblyAIEmulator) -> None:
    """The deletion happened but its answer was lost: the retry sees the deleted shape, so it is reported."""
    tid = connect.create_transcript("eu", status="completed")
    connect.fail_next("drop_after_effect", method="DELETE")
    assert AssemblyAIHook("assemblyai_eu").delete_transcript(tid).is_deleted
    assert connect.is_deleted("eu", tid)
    assert len(connect.requests_for(method="DELETE")) == 2


async def test_async_faults_are_retried(connect: AssemblyAIEmulator) -> None:
    tid = connect.create_transcript("eu", status="completed")
    connect.fail_next("html", times=1, method="DELETE")
    connect.fail_next("rate_limit", times=1, method="DELETE")
    try:
        assert (await AssemblyAIHook("assemblyai_eu").adelete_transcript(tid)).is_deleted
    finally:
        await AssemblyAIHook.aclose_shared_clients()
    assert [r.status for r in connect.requests_for(method="DELETE")] == [502, 429, 200]
