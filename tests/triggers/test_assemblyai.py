"""TranscriptStatusTrigger, driven with asyncio against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import httpcore
import pytest
from airflow.triggers.base import TriggerEvent

from airflow_provider_assemblyai.hooks._pool import shared_async_clients
from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from airflow_provider_assemblyai.triggers.assemblyai import TranscriptStatusTrigger, utc_iso
from tests.conftest import TEST_API_KEY, status_event
from tests.triggers.conftest import DeadlineClock, recreate

CLASSPATH = "airflow_provider_assemblyai.triggers.assemblyai.TranscriptStatusTrigger"


async def run_to_end(trigger: TranscriptStatusTrigger, timeout: float = 60.0) -> list[TriggerEvent]:
    """Every event run() yields until it returns (a trigger must yield exactly one)."""

    async def collect() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    return await asyncio.wait_for(collect(), timeout)


def gets(emu: AssemblyAIEmulator, transcript_id: str) -> list[Any]:
    return emu.requests_for(method="GET", path=f"/v2/transcript/{transcript_id}")


async def until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds (checked every 20 ms, for at most 2 minutes)."""
    for _ in range(6000):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition never held")


# -- construction and serialization ---------------------------------------------------------------


def test_serialize_returns_classpath_and_plain_values_only() -> None:
    trigger = TranscriptStatusTrigger(
        transcript_id="abc-123",
        assemblyai_conn_id="aai_eu",
        target_statuses=("completed", "error"),
        failure_statuses=[],
        poll_interval=2,
        end_time=1_900_000_000,
    )
    assert trigger.serialize() == (
        CLASSPATH,
        {
            "transcript_id": "abc-123",
            "assemblyai_conn_id": "aai_eu",
            "target_statuses": ["completed", "error"],
            "failure_statuses": [],
            "poll_interval": 2.0,
            "end_time": 1_900_000_000.0,
        },
    )
    _, kwargs = trigger.serialize()
    assert all(isinstance(v, (str, float, list)) for v in kwargs.values())
    assert recreate(trigger).serialize() == trigger.serialize()


async def test_round_trip_behaves_the_same_and_never_holds_the_key(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="error", error="Download error: 404 from the audio host")
    original = TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05, end_time=time.time() + 30)
    rebuilt = recreate(original)
    first, second = await run_to_end(original), await run_to_end(rebuilt)
    assert first == second
    assert first[0].payload["status"] == "failure"
    for text in (repr(original), repr(rebuilt), str(original.serialize()), repr(first)):
        assert TEST_API_KEY not in text
    assert TEST_API_KEY not in str(vars(original))
    assert TEST_API_KEY not in str(vars(rebuilt))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"transcript_id": "../v2/transcript"}, "not a valid transcript id"),
        ({"transcript_id": ""}, "transcript_id is empty"),
        ({"transcript_id": 123}, "must be a string"),
        ({"poll_interval": 0}, "poll_interval must be a positive number of seconds, got 0"),
        ({"poll_interval": -1.5}, "got -1.5"),
        ({"poll_interval": float("nan")}, "got nan"),
        ({"poll_interval": "5"}, "got '5'"),
        ({"target_statuses": ("done",)}, "target_statuses has unknown status 'done'"),
        ({"target_statuses": ()}, "target_statuses must be a non-empty list"),
        ({"failure_statuses": ("failed",)}, "failure_statuses has unknown status 'failed'"),
        ({"target_statuses": ("completed", "error")}, r"must not overlap; both contain \['error'\]"),
        ({"end_time": "tomorrow"}, "end_time must be a Unix timestamp"),
        ({"end_time": float("inf")}, "end_time must be a Unix timestamp"),
        ({"assemblyai_conn_id": ""}, "assemblyai_conn_id must be a non-empty string"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(kwargs: dict[str, Any], match: str) -> None:
    arguments: dict[str, Any] = {"transcript_id": "abc", **kwargs}
    with pytest.raises(ValueError, match=match):
        TranscriptStatusTrigger(**arguments)


# -- the four event kinds ---------------------------------------------------------------------------


async def test_success_once_the_transcript_completes(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="processing", completes_in=0.6, audio_duration=42)
    trigger = TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.1, end_time=time.time() + 60)
    events = await run_to_end(trigger)
    assert events == [
        TriggerEvent(
            status_event("success", tid, "completed", f"Transcript {tid} is completed", audio_duration=42)
        )
    ]
    polls = gets(emulator, tid)
    assert len(polls) >= 2
    assert all(r.status == 200 for r in polls)
    assert not emulator.requests_for(method="DELETE")


async def test_custom_target_statuses(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="processing")
    trigger = TranscriptStatusTrigger(
        transcript_id=tid, target_statuses=["processing"], failure_statuses=[], poll_interval=0.1
    )
    assert await run_to_end(trigger) == [
        TriggerEvent(status_event("success", tid, "processing", f"Transcript {tid} is processing"))
    ]


async def test_failure_carries_the_api_error_text(emulator: AssemblyAIEmulator) -> None:
    api_error = "Download error, unable to download https://example.com/a.mp3"
    tid = emulator.create_transcript(
        "us", status="queued", completes_in=0.4, final_status="error", error=api_error
    )
    trigger = TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.1, end_time=time.time() + 60)
    events = await run_to_end(trigger)
    assert events == [
        TriggerEvent(
            status_event(
                "failure",
                tid,
                "error",
                f"Transcript {tid} ended with status 'error': {api_error}",
                error=api_error,
            )
        )
    ]


async def test_events_carry_the_transcripts_fields_verbatim(emulator: AssemblyAIEmulator) -> None:
    """The event is the data contract: error text (even with "': " in it) and audio_duration as fields."""
    api_error = "Download error, unable to download 'https://example.com/a b.mp3': HTTP 404 from 'cdn'"
    failed = emulator.create_transcript("us", status="error", error=api_error)
    done = emulator.create_transcript("us", status="completed", audio_duration=1234.5)
    [failure] = await run_to_end(TranscriptStatusTrigger(transcript_id=failed, poll_interval=0.05))
    [success] = await run_to_end(TranscriptStatusTrigger(transcript_id=done, poll_interval=0.05))
    assert failure.payload["error"] == api_error
    assert failure.payload["audio_duration"] is None
    assert (success.payload["error"], success.payload["audio_duration"]) == (None, 1234.5)


async def test_timeout_at_the_deadline_then_no_more_polls(
    emulator: AssemblyAIEmulator, deadline_clock: DeadlineClock
) -> None:
    tid = emulator.create_transcript("us", status="processing")  # never completes
    end_time = deadline_clock.time() + 3600
    waiting = asyncio.create_task(
        run_to_end(TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05, end_time=end_time))
    )
    await until(lambda: len(gets(emulator, tid)) >= 3)  # polling until the deadline...
    assert not waiting.done()
    deadline_clock.advance(3600)  # ...which passes now
    events = await waiting
    assert deadline_clock.time() >= end_time
    assert len(events) == 1
    event = events[0].payload
    assert (event["status"], event["transcript_status"]) == ("timeout", "processing")
    assert f"Transcript {tid} did not reach ['completed'] before the deadline" in event["message"]
    # ISO 8601 UTC, not a Unix timestamp
    assert f"before the deadline ({utc_iso(end_time)}): " in event["message"]
    assert re.search(r"deadline \(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)", event["message"])
    assert "its status was still 'processing'" in event["message"]
    polls = len(gets(emulator, tid))
    await asyncio.sleep(0.3)
    assert len(gets(emulator, tid)) == polls


async def test_error_on_a_rejected_key(emulator: AssemblyAIEmulator, set_connection: Any) -> None:
    set_connection("aai_wrong_key", password="not-the-key", base_url=emulator.base_url("us"), max_retries=0)
    tid = emulator.create_transcript("us", status="completed")
    trigger = TranscriptStatusTrigger(
        transcript_id=tid, assemblyai_conn_id="aai_wrong_key", poll_interval=0.05, end_time=time.time() + 30
    )
    [event] = await run_to_end(trigger)
    assert event.payload["status"] == "error"
    assert event.payload["transcript_status"] is None
    assert "AssemblyAIAuthError" in event.payload["message"]
    assert "HTTP 401" in event.payload["message"]
    assert "not-the-key" not in event.payload["message"]
    assert len(gets(emulator, tid)) == 1  # not retried: a rejected key does not heal by itself


async def test_error_on_an_unknown_transcript(emulator: AssemblyAIEmulator) -> None:
    trigger = TranscriptStatusTrigger(transcript_id="no-such-transcript", poll_interval=0.05)
    [event] = await run_to_end(trigger)
    assert event.payload["status"] == "error"
    assert event.payload["transcript_id"] == "no-such-transcript"
    assert "TranscriptNotFoundError" in event.payload["message"]
    assert "transcript id not found" in event.payload["message"]


async def test_error_on_a_missing_connection(shared_clients: None) -> None:
    trigger = TranscriptStatusTrigger(transcript_id="abc", assemblyai_conn_id="aai_does_not_exist")
    [event] = await run_to_end(trigger)
    assert event.payload["status"] == "error"
    assert "aai_does_not_exist" in event.payload["message"]


# -- transient faults ------------------------------------------------------------------------------


async def test_transient_faults_are_retried_on_the_next_poll(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="completed", audio_duration=7)
    path = f"/v2/transcript/{tid}"
    emulator.fail_next("empty", path=path, status=503)
    emulator.fail_next("rate_limit", path=path, retry_after=0)
    emulator.fail_next("drop", path=path)
    trigger = TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05, end_time=time.time() + 60)
    assert await run_to_end(trigger) == [
        TriggerEvent(
            status_event("success", tid, "completed", f"Transcript {tid} is completed", audio_duration=7)
        )
    ]
    assert [(r.status, r.fault) for r in gets(emulator, tid)] == [
        (503, "empty"),
        (429, "rate_limit"),
        (None, "drop"),
        (200, None),
    ]


async def test_transient_faults_give_up_only_at_the_deadline(
    emulator: AssemblyAIEmulator, deadline_clock: DeadlineClock
) -> None:
    tid = emulator.create_transcript("us", status="completed")
    emulator.fail_randomly("error", 1.0, path=f"/v2/transcript/{tid}", status=500)
    end_time = deadline_clock.time() + 3600
    waiting = asyncio.create_task(
        run_to_end(TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05, end_time=end_time))
    )
    await until(lambda: len(gets(emulator, tid)) >= 3)  # failing polls are retried...
    assert not waiting.done()
    deadline_clock.advance(3600)  # ...until the deadline
    [event] = await waiting
    assert event.payload["status"] == "timeout"
    assert event.payload["transcript_status"] is None
    assert "the last poll failed" in event.payload["message"]
    assert "HTTP 500" in event.payload["message"]
    assert len(gets(emulator, tid)) >= 3


async def test_a_slow_poll_does_not_run_past_the_deadline(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="processing")
    emulator.fail_randomly("slow", 1.0, path=f"/v2/transcript/{tid}", delay=30)
    end_time = time.time() + 0.5
    [event] = await run_to_end(
        TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.1, end_time=end_time)
    )
    assert event.payload["status"] == "timeout"
    assert "still running at the deadline" in event.payload["message"]


# -- deadline across a triggerer restart, cancellation ---------------------------------------------


async def test_a_restart_keeps_the_absolute_deadline(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="processing")
    end_time = time.time() + 0.3
    before = TranscriptStatusTrigger(transcript_id=tid, poll_interval=30, end_time=end_time)
    _, stored = before.serialize()
    await asyncio.sleep(0.4)  # the triggerer is down past the deadline
    after = recreate(before)
    assert after.end_time == end_time == stored["end_time"]
    [event] = await run_to_end(after)
    # One poll, then the timeout: with a 30 s interval, a deadline restarted on recreation would hang.
    assert event.payload["status"] == "timeout"
    assert len(gets(emulator, tid)) == 1


async def test_a_restart_after_the_deadline_still_reports_a_finished_transcript(
    emulator: AssemblyAIEmulator,
) -> None:
    tid = emulator.create_transcript("us", status="completed")
    trigger = TranscriptStatusTrigger(transcript_id=tid, end_time=time.time() - 5)
    [event] = await run_to_end(trigger)
    assert event.payload["status"] == "success"


async def test_cancellation_propagates_and_stops_polling(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="processing")
    trigger = TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05, end_time=time.time() + 60)
    events: list[TriggerEvent] = []

    async def consume() -> None:
        async for event in trigger.run():
            events.append(event)

    task = asyncio.create_task(consume())
    for _ in range(400):
        if len(gets(emulator, tid)) >= 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    polls = len(gets(emulator, tid))
    await asyncio.sleep(0.3)
    assert polls >= 2
    assert len(gets(emulator, tid)) == polls
    assert events == []
    assert [r.method for r in emulator.requests] == ["GET"] * polls  # nothing remote was cancelled
    await trigger.cleanup()
    assert [r.method for r in emulator.requests] == ["GET"] * polls
    assert emulator.get("us", tid)["status"] == "processing"


async def test_cancellation_during_a_request_propagates(emulator: AssemblyAIEmulator) -> None:
    tid = emulator.create_transcript("us", status="processing")
    emulator.fail_randomly("slow", 1.0, path=f"/v2/transcript/{tid}", delay=30)
    task = asyncio.create_task(
        run_to_end(TranscriptStatusTrigger(transcript_id=tid, end_time=time.time() + 60))
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- no blocking calls, shared pools -------------------------------------------------------------


async def test_run_makes_no_blocking_calls(
    emulator: AssemblyAIEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync connection lookup and time.sleep would stall the triggerer: make them fail loudly."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("blocking call inside TranscriptStatusTrigger.run()")

    monkeypatch.setattr(AssemblyAIHook, "get_connection", forbidden)
    monkeypatch.setattr(time, "sleep", forbidden)
    tid = emulator.create_transcript("us", status="processing", completes_in=0.3)
    [event] = await run_to_end(TranscriptStatusTrigger(transcript_id=tid, poll_interval=0.05))
    assert event.payload["status"] == "success"


def lists(emu: AssemblyAIEmulator) -> list[Any]:
    return [r for r in emu.requests if (r.method, r.path) == ("GET", "/v2/transcript")]


async def complete_all_when(emu: AssemblyAIEmulator, condition: Callable[[], bool]) -> None:
    """Advance the emulator's manual clock by 10 minutes once ``condition()`` holds (at most 2 min)."""
    for _ in range(2400):
        if condition():
            emu.advance(600)
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the condition never held")


async def test_many_triggers_share_one_connection_pool_and_one_status_board(
    set_connection: Any, shared_clients: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 triggers on one loop: one pool, few TCP connections, list pages instead of a GET per poll."""
    opened: list[object] = []
    create_connection = httpcore.AsyncConnectionPool.create_connection

    def counting(pool: httpcore.AsyncConnectionPool, origin: httpcore.Origin) -> Any:
        opened.append(origin)
        return create_connection(pool, origin)

    monkeypatch.setattr(httpcore.AsyncConnectionPool, "create_connection", counting)
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emu:
        set_connection(password=TEST_API_KEY, base_url=emu.base_url("us"), max_retries=0)
        ids = [emu.create_transcript("us", status="processing", completes_in=60) for _ in range(50)]
        emu.create_transcript("us", status="queued", completes_in=60)  # listed, but nobody waits for it

        end_time = time.time() + 120
        triggers = [
            TranscriptStatusTrigger(transcript_id=t, poll_interval=0.1, end_time=end_time) for t in ids
        ]
        releaser = asyncio.create_task(
            complete_all_when(emu, lambda: len(lists(emu)) >= 2 * 5)
        )  # 5 refreshes
        results = await asyncio.wait_for(asyncio.gather(*(run_to_end(t) for t in triggers)), 120)
        await releaser
        log = emu.requests
        board = triggers_board(emu)
    assert [[e.payload["status"] for e in events] for events in results] == [["success"]] * 50
    # Before 20 have joined, a trigger GETs on each poll (how often depends on the machine's pace).
    # From the board's first listing on, its transcript is listed while processing: a trigger GETs
    # at most once more for a poll already under way then, and once when the transcript completes.
    first_listing = next(i for i, r in enumerate(log) if (r.method, r.path) == ("GET", "/v2/transcript"))
    for tid in ids:
        polled_while_listed = [r for r in log[first_listing:] if r.path == f"/v2/transcript/{tid}"]
        assert 1 <= len(polled_while_listed) <= 2, (tid, polled_while_listed)
    assert len([r for r in log if (r.method, r.path) == ("GET", "/v2/transcript")]) >= 2 * 5
    assert {r.query for r in log if r.path == "/v2/transcript"} == {
        "limit=200&status=queued",
        "limit=200&status=processing",
    }
    # One shared pool whose connections are reused (opened for fewer requests than were sent).
    assert 1 <= len(opened) < len(log)
    assert len(shared_async_clients[asyncio.get_running_loop()]) == 1
    assert board.waiters == {}  # every trigger left the board when it finished


def triggers_board(emu: AssemblyAIEmulator) -> Any:
    from airflow_provider_assemblyai.triggers._status_board import boards

    (board,) = boards[asyncio.get_running_loop()].values()
    return board


async def test_board_reads_a_bounded_number_of_pages(set_connection: Any, shared_clients: None) -> None:
    """Unrelated work on the account: the board reads 1 + waiters // 200 pages, the rest GET."""
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emu:
        set_connection(password=TEST_API_KEY, base_url=emu.base_url("us"), max_retries=0)
        waiting = [emu.create_transcript("us", status="processing", completes_in=60) for _ in range(25)]
        for _ in range(450):  # newer, and nobody waits for them
            emu.create_transcript("us", status="processing", completes_in=3600)
        releaser = asyncio.create_task(
            complete_all_when(emu, lambda: min(len(gets(emu, t)) for t in waiting) >= 4)
        )
        results = await asyncio.gather(
            *(run_to_end(TranscriptStatusTrigger(transcript_id=t, poll_interval=0.1)) for t in waiting)
        )
        await releaser
        processing_pages = [r for r in lists(emu) if "status=processing" in r.query]
    assert [[e.payload["status"] for e in events] for events in results] == [["success"]] * 25
    assert processing_pages
    # one page per refresh: the waiting transcripts (older) were beyond it, so each kept its own GET
    assert all("before_id" not in r.query for r in processing_pages)


async def test_board_failure_falls_back_to_one_get_per_poll(
    set_connection: Any,
    shared_clients: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow_provider_assemblyai.exceptions import AssemblyAIServerError

    async def failing_page(self: AssemblyAIHook, **kwargs: Any) -> Any:
        raise AssemblyAIServerError("AssemblyAI GET /v2/transcript (us) failed with HTTP 503")

    monkeypatch.setattr(AssemblyAIHook, "alist_transcript_page", failing_page)
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emu:
        set_connection(password=TEST_API_KEY, base_url=emu.base_url("us"), max_retries=0)
        ids = [emu.create_transcript("us", status="processing", completes_in=60) for _ in range(25)]
        # every trigger polls on its own, every time: each gets three GETs, then all complete
        releaser = asyncio.create_task(
            complete_all_when(emu, lambda: min(len(gets(emu, t)) for t in ids) >= 3)
        )
        results = await asyncio.gather(
            *(run_to_end(TranscriptStatusTrigger(transcript_id=t, poll_interval=0.1)) for t in ids)
        )
        await releaser
    assert [[e.payload["status"] for e in events] for events in results] == [["success"]] * 25
    warnings = [r for r in caplog.records if "Listing in-flight transcripts failed" in r.getMessage()]
    assert [r.levelname for r in warnings] == ["WARNING"]  # once, not on every failed refresh


async def test_a_cancelled_trigger_leaves_the_board(emulator: AssemblyAIEmulator) -> None:
    ids = [emulator.create_transcript("us", status="processing") for _ in range(30)]
    tasks = [
        asyncio.create_task(run_to_end(TranscriptStatusTrigger(transcript_id=t, poll_interval=0.05)))
        for t in ids
    ]
    for _ in range(400):
        if len(lists(emulator)) >= 4:
            break
        await asyncio.sleep(0.01)
    board = triggers_board(emulator)
    assert sum(board.waiters.values()) == 30
    before = len(emulator.requests)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with pytest.raises(asyncio.CancelledError):
            await task
    assert board.waiters == {}
    await asyncio.sleep(0.2)
    assert len(emulator.requests) <= before + 2  # at most the refresh that was running
    assert all(emulator.get("us", t)["status"] == "processing" for t in ids)


async def test_a_listed_target_status_is_confirmed_with_a_get(emulator: AssemblyAIEmulator) -> None:
    """Waiting for ``processing``: the board lists it so, and the event still comes from a GET."""
    others = [emulator.create_transcript("us", status="processing") for _ in range(20)]
    background = [  # 20 triggers that keep waiting, so the board is in use
        asyncio.create_task(run_to_end(TranscriptStatusTrigger(transcript_id=t, poll_interval=0.1)))
        for t in others
    ]
    for _ in range(400):
        if lists(emulator):
            break
        await asyncio.sleep(0.01)
    assert lists(emulator)
    ids = [emulator.create_transcript("us", status="processing") for _ in range(5)]
    results = await asyncio.gather(
        *(
            run_to_end(
                TranscriptStatusTrigger(transcript_id=t, target_statuses=["processing"], poll_interval=0.1)
            )
            for t in ids
        )
    )
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    for tid, events in zip(ids, results, strict=True):
        assert events == [
            TriggerEvent(status_event("success", tid, "processing", f"Transcript {tid} is processing"))
        ]
        assert len(gets(emulator, tid)) == 1  # listed as a target status: confirmed by one GET
