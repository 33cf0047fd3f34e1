"""
Listing behind an API gateway, over real HTTP: the API writes its page links on its own host, so
the hook pages with ``before_id`` on the connection's base URL and never requests those links.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from urllib.parse import parse_qs

import pytest

from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.conftest import TEST_API_KEY, Gateway


def list_queries(emu: AssemblyAIEmulator) -> list[dict[str, str]]:
    """The query of every list request the emulator served, in order."""
    return [
        {key: values[0] for key, values in parse_qs(record.query).items()}
        for record in emu.requests_for(method="GET", path="/v2/transcript")
        if record.path == "/v2/transcript"
    ]


def test_the_emulator_names_another_host_in_its_links(behind_gateway: Gateway) -> None:
    behind_gateway.emu.seed(3, "us")
    page = AssemblyAIHook()._request("GET", "/v2/transcript?limit=2")
    assert page["page_details"]["prev_url"].startswith(f"{behind_gateway.link_base_url}/v2/transcript?")
    assert behind_gateway.link_base_url != behind_gateway.emu.base_url("us")


def test_list_pages_with_before_id_behind_a_gateway(behind_gateway: Gateway) -> None:
    emu = behind_gateway.emu
    ids = emu.seed(25, "us", statuses=["completed", "error"])
    completed = emu.ids("us", status="completed")

    assert [item.id for item in AssemblyAIHook().list_transcripts(limit=10)] == ids
    assert [item.id for item in AssemblyAIHook().list_transcripts(status="completed", limit=5)] == completed

    queries = list_queries(emu)
    assert [q.get("before_id") for q in queries[:3]] == [None, ids[9], ids[19]]  # ends at a null prev_url
    assert all(q["status"] == "completed" and q["limit"] == "5" for q in queries[3:])
    assert [q.get("before_id") for q in queries[3:]] == [None, *completed[4:-1:5]]
    assert all(record.key_matched for record in emu.requests)
    behind_gateway.assert_nothing_sent_upstream()


async def test_alist_pages_with_before_id_behind_a_gateway(behind_gateway: Gateway) -> None:
    emu = behind_gateway.emu
    ids = emu.seed(23, "us")
    try:
        listed = [item.id async for item in AssemblyAIHook().alist_transcripts(limit=5)]
    finally:
        await AssemblyAIHook.aclose_shared_clients()

    assert listed == ids
    assert [q.get("before_id") for q in list_queries(emu)] == [None, *ids[4:20:5]]
    behind_gateway.assert_nothing_sent_upstream()


@pytest.mark.parametrize("region", ["us", "eu"])
def test_created_on_and_a_starting_before_id_are_kept_on_every_page(
    behind_gateway: Gateway, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = behind_gateway.emu
    monkeypatch.setenv(*next(iter(emu.connection_env(region, TEST_API_KEY).items())))
    day = datetime.combine(emu.clock.now().date() - timedelta(days=10), time(), timezone.utc)
    for hours in range(-30, 54, 3):  # the day before, the day, and the day after, newest last
        emu.create_transcript(region, created=day + timedelta(hours=hours))
    ids = emu.ids(region)  # newest first
    on_the_day = [tid for tid, hours in zip(ids, range(51, -31, -3), strict=True) if 0 <= hours < 24]
    start = on_the_day[1]

    listed = AssemblyAIHook().list_transcripts(created_on=day.date(), before_id=start, limit=2)

    assert [item.id for item in listed] == on_the_day[2:]
    queries = list_queries(emu)
    assert len(queries) == 3  # 6 transcripts, 2 a page; the third page's prev_url is null
    assert all(q["created_on"] == day.date().isoformat() and q["limit"] == "2" for q in queries)
    assert [q["before_id"] for q in queries] == [start, on_the_day[3], on_the_day[5]]
    assert emu.requests_for(region="us" if region == "eu" else "eu") == []
    behind_gateway.assert_nothing_sent_upstream()


def test_after_id_lists_the_newer_transcripts_oldest_first(behind_gateway: Gateway) -> None:
    """The API refuses after_id older than before_id, so these pages go forward with after_id."""
    emu = behind_gateway.emu
    ids = emu.seed(25, "us")  # newest first

    listed = [item.id for item in AssemblyAIHook().list_transcripts(after_id=ids[20], limit=5)]

    assert listed == ids[:20][::-1]
    queries = list_queries(emu)
    assert all("before_id" not in q for q in queries)
    assert [q["after_id"] for q in queries] == [ids[20], ids[15], ids[10], ids[5], ids[0]]
    behind_gateway.assert_nothing_sent_upstream()


async def test_alist_after_id_lists_the_newer_transcripts_oldest_first(behind_gateway: Gateway) -> None:
    ids = behind_gateway.emu.seed(12, "us")
    try:
        listed = [item.id async for item in AssemblyAIHook().alist_transcripts(after_id=ids[7], limit=200)]
    finally:
        await AssemblyAIHook.aclose_shared_clients()
    assert listed == ids[:7][::-1]
    assert len(list_queries(behind_gateway.emu)) == 2  # the page, then an empty one ends the walk
