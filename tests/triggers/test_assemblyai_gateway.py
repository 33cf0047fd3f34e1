"""The triggers' status board behind an API gateway, over real HTTP: pages with before_id on base_url."""

from __future__ import annotations

import asyncio

from airflow_provider_assemblyai.hooks.assemblyai import MAX_LIST_LIMIT, AssemblyAIHook
from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger
from tests.conftest import Gateway


async def test_the_status_board_pages_with_before_id_behind_a_gateway(behind_gateway: Gateway) -> None:
    """200 waiters: the board reads two pages of processing transcripts, the second with before_id."""
    emu = behind_gateway.emu
    waited = [emu.create_transcript("us", status="processing", completes_in=60) for _ in range(200)]
    for _ in range(250):  # newer work on the account that nobody waits for
        emu.create_transcript("us", status="processing", completes_in=3600)
    newest_first = emu.ids("us", status="processing")

    def board_pages() -> list[str]:
        return [r.query for r in emu.requests_for(method="GET") if r.path == "/v2/transcript"]

    second_page = f"limit={MAX_LIST_LIMIT}&status=processing&before_id={newest_first[MAX_LIST_LIMIT - 1]}"

    async def complete_once_the_second_page_was_read() -> None:
        for _ in range(2400):  # at most 2 minutes
            if second_page in board_pages():
                emu.advance(600)
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"the board never read its second page: {set(board_pages())}")

    try:
        releaser = asyncio.create_task(complete_once_the_second_page_was_read())
        triggers = [TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.5) for tid in waited]
        results = await asyncio.wait_for(
            asyncio.gather(*(_first_event(trigger) for trigger in triggers)), timeout=180
        )
        await releaser
    finally:
        await AssemblyAIHook.aclose_shared_clients()

    assert {payload["status"] for payload in results} == {"success"}
    pages = set(board_pages())
    assert second_page in pages
    assert pages <= {"limit=200&status=queued", "limit=200&status=processing", second_page}
    behind_gateway.assert_nothing_sent_upstream()


async def _first_event(trigger: TranscriptStatusTrigger) -> dict[str, object]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")
