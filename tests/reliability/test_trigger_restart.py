"""
A triggerer restart: the trigger is cancelled, its row (classpath + kwargs) is all that survives, and
a new triggerer re-creates it from that row. It resumes polling and keeps its original absolute
deadline; re-created past that deadline, it emits ``timeout`` at once.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger, utc_iso
from tests.conftest import TEST_API_KEY


@pytest.fixture
def clocked(set_connection: Callable[..., None]) -> Iterator[AssemblyAIEmulator]:
    """An emulator on a manual clock: transcripts complete only when the test says so."""
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emu:
        set_connection(base_url=emu.base_url("us"), max_retries=0)
        yield emu


@pytest.fixture
async def loop_clients(shared_clients: None) -> AsyncIterator[None]:
    return


def through_the_trigger_table(trigger: TranscriptStatusTrigger) -> TranscriptStatusTrigger:
    """Store the trigger as the scheduler does (encrypted kwargs row), read it back, re-create it."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        row = Trigger.from_object(trigger)
        session.add(row)
        session.flush()
        row_id = row.id
    with create_session() as session:
        stored = session.get(Trigger, row_id)
        assert stored is not None
        classpath, kwargs = stored.classpath, stored.kwargs
        session.delete(stored)
    module, name = classpath.rsplit(".", 1)
    recreated = getattr(importlib.import_module(module), name)(**kwargs)
    assert isinstance(recreated, TranscriptStatusTrigger)
    return recreated


async def polls(emu: AssemblyAIEmulator, count: int) -> None:
    """Wait until the emulator has served ``count`` GETs (its log is the only signal)."""
    while len(emu.requests_for("GET")) < count:  # noqa: ASYNC110
        await asyncio.sleep(0.02)


async def first_event(trigger: TranscriptStatusTrigger) -> dict[str, Any]:
    event = await asyncio.wait_for(trigger.run().__anext__(), timeout=30)
    payload: dict[str, Any] = event.payload
    return payload


async def test_a_restarted_trigger_resumes_with_its_original_deadline(
    clocked: AssemblyAIEmulator, loop_clients: None
) -> None:
    tid = clocked.create_transcript("us", status="processing", completes_in=600, audio_duration=60)
    deadline = time.time() + 120
    trigger = TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05, end_time=deadline)

    running = asyncio.ensure_future(first_event(trigger))
    await polls(clocked, 2)  # polled, and polling on: the transcript is processing
    running.cancel()  # the triggerer stops (restart, rebalance)
    with pytest.raises(asyncio.CancelledError):
        await running  # the cancellation is not swallowed
    assert running.cancelled()

    recreated = await asyncio.to_thread(through_the_trigger_table, trigger)

    assert recreated.end_time == deadline  # absolute: a restart never extends it
    assert recreated.serialize() == trigger.serialize()
    clocked.advance(601)  # the transcript completes while no triggerer runs
    assert await first_event(recreated) == {
        "status": "success",
        "transcript_id": tid,
        "transcript_status": "completed",
        "error": None,
        "audio_duration": 60,
        "message": f"Transcript {tid} is completed",
    }


async def test_a_trigger_recreated_past_its_deadline_times_out_at_once(
    clocked: AssemblyAIEmulator, loop_clients: None
) -> None:
    tid = clocked.create_transcript("us", status="processing")
    deadline = time.time() + 3600
    trigger = TranscriptStatusTrigger(transcript_id=tid, poll_interval=3600, end_time=deadline)
    recreated = await asyncio.to_thread(through_the_trigger_table, trigger)
    assert recreated.end_time == deadline

    # The triggerer was down until after the deadline: the same row, read later.
    late = TranscriptStatusTrigger(**{**recreated.serialize()[1], "end_time": time.time() - 5})
    payload = await first_event(late)  # poll_interval=3600: only an immediate timeout can end this

    assert payload["status"] == "timeout"
    assert payload["transcript_status"] == "processing"  # one last look, then the timeout
    assert f"({utc_iso(late.end_time)})" in payload["message"]  # type: ignore[arg-type]
    assert len(clocked.requests_for("GET")) == 1


async def test_a_restarted_trigger_times_out_at_the_original_deadline(
    clocked: AssemblyAIEmulator, loop_clients: None
) -> None:
    tid = clocked.create_transcript("us", status="processing")
    trigger = TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05, end_time=time.time() + 1.0)
    running = asyncio.ensure_future(first_event(trigger))
    await polls(clocked, 1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    recreated = await asyncio.to_thread(through_the_trigger_table, trigger)
    payload = await first_event(recreated)

    assert payload["status"] == "timeout"
    assert time.time() >= trigger.end_time  # type: ignore[operator]  # never before the deadline
    assert f"({utc_iso(trigger.end_time)})" in payload["message"]  # type: ignore[arg-type]
