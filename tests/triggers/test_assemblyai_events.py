"""TranscriptEventTrigger (AssetWatcher), against the emulator over real HTTP on a manual clock."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
from airflow_provider_assemblyai.testing import AssemblyAIEmulator, ManualClock
from airflow_provider_assemblyai.triggers._transcript_feed import TranscriptFeed
from airflow_provider_assemblyai.triggers.assemblyai import TranscriptEventTrigger
from tests.conftest import TEST_API_KEY, provider_modules_loaded_by
from tests.triggers.conftest import recreate

pytestmark = pytest.mark.af3_only

CLASSPATH = "airflow_provider_assemblyai.triggers.assemblyai.TranscriptEventTrigger"
WAIT_S = 120.0  # generous: conditions are waited for, never timed


@pytest.fixture
def emu(set_connection: Callable[..., None]) -> Iterator[AssemblyAIEmulator]:
    """An emulator on a manual clock behind ``assemblyai_default`` (US, hook retries off)."""
    with AssemblyAIEmulator(api_keys=(TEST_API_KEY,), clock=ManualClock()) as emulator:
        set_connection(password=TEST_API_KEY, region="us", base_url=emulator.base_url("us"), max_retries=0)
        yield emulator


class Watching:
    """A trigger's run() in a task, as the triggerer drives it; events collected as they come."""

    def __init__(self, trigger: TranscriptEventTrigger) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.ensure_future(self._consume())

    async def _consume(self) -> None:
        async for event in self.trigger.run():
            self.events.append(event.payload)

    def ids(self) -> list[str]:
        return [event["transcript_id"] for event in self.events]

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        for _ in range(int(WAIT_S / 0.02)):
            if condition():
                return
            if self.task.done():
                self.task.result()
                raise AssertionError(f"the trigger ended while waiting for {what}")
            await asyncio.sleep(0.02)
        raise AssertionError(f"never happened: {what} (events: {self.events})")

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def lists(emulator: AssemblyAIEmulator) -> int:
    return sum(1 for r in emulator.requests if (r.method, r.path) == ("GET", "/v2/transcript"))


async def polls_after(emulator: AssemblyAIEmulator, watching: Watching, polls: int) -> None:
    """Wait until the trigger listed ``polls`` more times (so it polled at least that often)."""
    target = lists(emulator) + polls
    await watching.until(lambda: lists(emulator) >= target, f"{polls} more polls")


# -- construction and serialization ------------------------------------------------------------------


def test_serializes_plain_values_only_and_never_the_key() -> None:
    trigger = TranscriptEventTrigger(
        assemblyai_conn_id="aai_eu",
        statuses=["completed", "error"],
        poll_interval=30,
        lookback=timedelta(hours=6),
    )
    assert trigger.serialize() == (
        CLASSPATH,
        {
            "assemblyai_conn_id": "aai_eu",
            "statuses": ["completed", "error"],
            "poll_interval": 30.0,
            "lookback": 21600.0,
            "redeliver_after": None,
        },
    )
    assert recreate(trigger).serialize() == trigger.serialize()
    assert TranscriptEventTrigger(lookback=3600).lookback == 3600.0
    assert TranscriptEventTrigger(redeliver_after=timedelta(minutes=10)).redeliver_after == 600.0
    assert trigger.shared_stream_key() == (CLASSPATH, "aai_eu", 21600.0, 30.0, None)


def test_is_an_event_trigger_an_asset_watcher_accepts() -> None:
    from airflow.sdk import Asset, AssetWatcher

    watcher = AssetWatcher(name="finished", trigger=TranscriptEventTrigger())
    asset = Asset("assemblyai_finished", watchers=[watcher])
    assert asset.watchers[0].trigger.serialize()[0] == CLASSPATH


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"statuses": ("processing",)}, "statuses must only contain 'completed' and/or 'error'"),
        ({"statuses": ("completed", "queued")}, "queued ones are not finished"),
        ({"statuses": ("done",)}, "statuses has unknown status 'done'"),
        ({"statuses": ()}, "statuses must be a non-empty list"),
        ({"poll_interval": 0}, "poll_interval must be a positive number of seconds, got 0"),
        ({"lookback": timedelta(0)}, r"lookback must be .* got datetime.timedelta\(0\)"),
        ({"lookback": timedelta(days=91)}, "at most 90 days, the API's list window"),
        ({"lookback": "1d"}, "got '1d'"),
        ({"assemblyai_conn_id": " "}, "assemblyai_conn_id must be a non-empty string"),
        ({"redeliver_after": 0}, "redeliver_after must be a positive number of seconds or a timedelta"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TranscriptEventTrigger(**kwargs)


def test_dag_files_defining_a_watcher_do_not_import_the_hook() -> None:
    loaded = provider_modules_loaded_by(
        "from airflow_provider_assemblyai.triggers.assemblyai import TranscriptEventTrigger\n"
        "TranscriptEventTrigger(statuses=['completed', 'error'])\n"
    )
    assert "airflow_provider_assemblyai.triggers.assemblyai" in loaded
    assert not [m for m in loaded if m.startswith("airflow_provider_assemblyai.hooks")]
    assert "airflow_provider_assemblyai.models" not in loaded
    assert "airflow_provider_assemblyai.triggers._transcript_feed" not in loaded


# -- what is offered ---------------------------------------------------------------------------------


async def test_offers_finished_undeleted_transcripts_of_the_window_once(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    now = emu.clock.now()
    completed = emu.create_transcript("us", status="completed", created=now - timedelta(hours=20))
    failed = emu.create_transcript(
        "us", status="error", error="Download error", created=now - timedelta(hours=2)
    )
    emu.create_transcript("us", status="completed", created=now - timedelta(hours=30))  # outside the window
    emu.create_transcript("us", status="completed", deleted=True, created=now - timedelta(hours=1))
    emu.create_transcript("us", status="error", deleted=True)  # deleted transcripts list as completed
    emu.create_transcript("us", status="processing")  # never finishes
    emu.create_transcript("us", status="queued")
    both = Watching(TranscriptEventTrigger(statuses=["completed", "error"], poll_interval=0.02))
    completed_only = Watching(TranscriptEventTrigger(poll_interval=0.02))
    await both.until(lambda: len(both.events) >= 2, "two events")
    await polls_after(emu, both, 10)
    await polls_after(emu, completed_only, 10)
    await both.stop()
    await completed_only.stop()
    assert sorted(both.ids()) == sorted([completed, failed])  # once each, however many polls
    assert completed_only.ids() == [completed]
    by_id = {event["transcript_id"]: event for event in both.events}
    assert by_id[failed] == {
        "transcript_id": failed,
        "status": "error",
        "region": "us",
        "created": by_id[failed]["created"],
        "audio_duration": None,  # found by the window scan: the list does not carry it
        "error": "Download error",
        "redelivered": False,
    }
    assert by_id[failed]["created"].endswith("Z")
    assert by_id[completed]["status"] == "completed"
    assert {r.method for r in emu.requests} == {"GET"}  # it never deletes anything


async def test_offers_transcripts_that_finish_while_it_runs(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    finishing = [
        emu.create_transcript("us", status="queued", completes_in=60 * (i + 1), audio_duration=10 + i)
        for i in range(3)
    ]
    failing = emu.create_transcript(
        "us", status="processing", completes_in=200, final_status="error", error="Audio too short: 0.2 s"
    )
    watching = Watching(TranscriptEventTrigger(statuses=["completed", "error"], poll_interval=0.02))
    await polls_after(emu, watching, 3)
    assert watching.events == []  # nothing finished yet
    arriving = emu.create_transcript("us", status="processing", completes_in=30, audio_duration=99)
    finished_on_arrival = emu.create_transcript("us", status="completed", audio_duration=5)
    for _ in range(4):
        emu.advance(60)
        await polls_after(emu, watching, 4)
    await watching.until(lambda: len(watching.events) == 6, "six events")
    await polls_after(emu, watching, 5)
    await watching.stop()
    assert sorted(watching.ids()) == sorted([*finishing, failing, arriving, finished_on_arrival])
    by_id = {event["transcript_id"]: event for event in watching.events}
    # Found finishing: read with their own GET, so audio_duration and error are known.
    assert [by_id[t]["audio_duration"] for t in finishing] == [10, 11, 12]
    assert (by_id[arriving]["audio_duration"], by_id[finished_on_arrival]["audio_duration"]) == (99, 5)
    assert (by_id[failing]["status"], by_id[failing]["error"]) == ("error", "Audio too short: 0.2 s")


async def test_a_restarted_watcher_offers_what_is_still_undeleted_and_nothing_deleted_meanwhile(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    first, second, third = (emu.create_transcript("us", status="completed") for _ in range(3))
    later = emu.create_transcript("us", status="processing", completes_in=60)
    trigger = TranscriptEventTrigger(poll_interval=0.02)
    before = Watching(trigger)
    await before.until(lambda: len(before.events) == 3, "the three finished transcripts")
    await before.stop()  # the triggerer stops (restart, redeploy, SIGKILL)
    await AssemblyAIHook().adelete_transcript(first)  # the pipeline deleted one of them meanwhile
    emu.advance(60)  # and another one finished while no triggerer ran
    after = Watching(recreate(trigger))
    await after.until(lambda: len(after.events) == 3, "the undeleted and the newly finished transcripts")
    await polls_after(emu, after, 5)
    await after.stop()
    assert sorted(before.ids()) == sorted([first, second, third])
    assert sorted(after.ids()) == sorted([second, third, later])  # never the deleted one


async def test_a_us_watcher_never_touches_the_eu_region(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    eu_done = [emu.create_transcript("eu", status="completed") for _ in range(3)]
    eu_finishing = emu.create_transcript("eu", status="processing", completes_in=30)
    us_done = emu.create_transcript("us", status="completed")
    watching = Watching(TranscriptEventTrigger(statuses=["completed", "error"], poll_interval=0.02))
    await watching.until(lambda: len(watching.events) == 1, "the US transcript")
    emu.advance(60)
    await polls_after(emu, watching, 5)
    await watching.stop()
    assert watching.ids() == [us_done]
    assert emu.requests_for(region="eu") == []
    assert not any(emu.is_deleted("eu", t) for t in [*eu_done, eu_finishing])


async def test_cancellation_propagates_and_nothing_remote_changes(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    ids = [emu.create_transcript("us", status="completed") for _ in range(2)]
    watching = Watching(TranscriptEventTrigger(poll_interval=0.02))
    await watching.until(lambda: len(watching.events) == 2, "two events")
    watching.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watching.task
    requests = len(emu.requests)
    await asyncio.sleep(0.2)
    assert len(emu.requests) == requests  # stopped polling
    assert {r.method for r in emu.requests} == {"GET"}
    assert not any(emu.is_deleted("us", t) for t in ids)


async def test_with_redelivery_an_undeleted_transcript_is_reported_once_more_then_never(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    handled, stuck = (emu.create_transcript("us", status="completed") for _ in range(2))
    feed = TranscriptFeed(AssemblyAIHook(), lookback=86400, redeliver_after=0.05)
    assert sorted(f.transcript_id for f in await feed.poll()) == sorted([handled, stuck])
    await AssemblyAIHook().adelete_transcript(handled)  # the pipeline handled one; the other is stuck
    await asyncio.sleep(0.1)  # both are due for their redelivery check
    [again] = await feed.poll()
    assert (again.transcript_id, again.redelivered) == (stuck, True)
    await asyncio.sleep(0.1)
    assert await feed.poll() == []  # once more, never a third time
    gets = [r.path for r in emu.requests_for(method="GET") if r.path.startswith("/v2/transcript/")]
    assert sorted(gets) == sorted([f"/v2/transcript/{handled}", f"/v2/transcript/{stuck}"])  # one check each


def test_a_watcher_offers_a_transcript_once_or_once_more_when_redelivered() -> None:
    from airflow_provider_assemblyai.triggers._transcript_feed import FinishedTranscript

    trigger = TranscriptEventTrigger(redeliver_after=60)
    now = datetime.now(timezone.utc)
    first = FinishedTranscript("t1", "completed", "us", now)
    again = FinishedTranscript("t1", "completed", "us", now, redelivered=True)
    offered = [
        e.payload["redelivered"]
        for batch in ([first], [first], [again], [again])
        for e in trigger._events(batch)
    ]
    assert offered == [False, True]
    errored = FinishedTranscript("t2", "error", "us", now)
    assert trigger._events([errored]) == []  # not one of its statuses


# -- faults ------------------------------------------------------------------------------------------


async def test_transient_faults_are_survived_and_nothing_is_missed_or_repeated(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    emu.seed(450, statuses=["deleted"], span=timedelta(hours=12))  # a window scan of 3 pages
    done = [emu.create_transcript("us", status="completed", created=emu.clock.now() - timedelta(hours=13))]
    finishing = [emu.create_transcript("us", status="processing", completes_in=60) for _ in range(3)]
    emu.fail_next("empty", path="/v2/transcript", status=503)  # the scan's first page, three times
    emu.fail_next("drop", 2, path="/v2/transcript")
    watching = Watching(TranscriptEventTrigger(poll_interval=0.02))
    await watching.until(lambda: len(watching.events) == 1, "the finished transcript")
    for tid in finishing:
        emu.fail_next("rate_limit", path=f"/v2/transcript/{tid}", retry_after=0)
        emu.fail_next("error", path=f"/v2/transcript/{tid}", status=500)
    emu.fail_next("empty", path="/v2/transcript", status=504)
    emu.advance(60)
    await watching.until(lambda: len(watching.events) == 4, "the transcripts that finished")
    await polls_after(emu, watching, 5)
    await watching.stop()
    assert sorted(watching.ids()) == sorted(done + finishing)
    assert len([r for r in emu.requests if r.fault]) == 3 + 2 * 3 + 1  # every fault was hit


async def test_a_failing_connection_is_logged_and_retried_and_heals_once_fixed(
    emu: AssemblyAIEmulator,
    shared_clients: None,
    set_connection: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="airflow_provider_assemblyai.triggers._transcript_feed")
    set_connection(password="wrong-key-1234", region="us", base_url=emu.base_url("us"), max_retries=0)
    tid = emu.create_transcript("us", status="completed")
    watching = Watching(TranscriptEventTrigger(poll_interval=0.02))

    def failed() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "Watching transcripts failed, will retry" in r.getMessage()]

    await watching.until(lambda: len(failed()) >= 3, "three failed polls")
    assert watching.events == []
    assert len(emu.requests_for(status=401)) >= 3
    assert [r.levelname for r in failed()[:3]] == ["ERROR", "DEBUG", "DEBUG"]  # loud once, then quiet
    assert "HTTP 401" in failed()[0].getMessage()
    assert "wrong-key-1234" not in caplog.text
    # The key is fixed in the connection: the same watcher reads it again and carries on.
    set_connection(password=TEST_API_KEY, region="us", base_url=emu.base_url("us"), max_retries=0)
    await watching.until(lambda: len(watching.events) == 1, "the finished transcript")
    await watching.stop()
    assert watching.ids() == [tid]
    assert "Watching transcripts works again" in caplog.text


# -- cost: requests per poll (the feed, poll by poll) -----------------------------------------------


async def test_a_poll_costs_a_few_lists_plus_one_get_per_newly_finished_transcript(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    """5,000 deleted transcripts in the window, 20 finishing: the window is read once, then change only."""
    emu.seed(5000, statuses=["deleted"], span=timedelta(hours=20))
    finishing = [
        emu.create_transcript("us", status="processing", completes_in=10 * (i + 1)) for i in range(20)
    ]
    feed = TranscriptFeed(AssemblyAIHook(), lookback=86400)
    start = len(emu.requests)
    assert await feed.poll() == []
    first = emu.requests[start:]
    assert len(first) == 5020 // 200 + 1  # the window scan: every page, no GET
    per_poll: list[tuple[int, int, int]] = []
    found: list[str] = []
    for _ in range(10):
        emu.advance(20)  # two transcripts finish per poll
        start = len(emu.requests)
        found += [f.transcript_id for f in await feed.poll()]
        requests = emu.requests[start:]
        list_pages = sum(1 for r in requests if r.path == "/v2/transcript")
        gets = sum(1 for r in requests if r.path.startswith("/v2/transcript/"))
        per_poll.append((list_pages, gets, len(requests)))
    assert sorted(found) == sorted(finishing)
    # The top of the list and the processing list; one GET per transcript that finished.
    assert per_poll == [(2, 2, 4)] * 10
    start = len(emu.requests)
    assert await feed.poll() == []
    assert len(emu.requests) - start == 1  # an idle poll: one list request


async def test_new_transcripts_beyond_one_page_and_an_interrupted_scan_resume(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    emu.seed(500, statuses=["deleted"], span=timedelta(hours=20))
    emu.fail_next("drop", path="/v2/transcript", method="GET")  # kept for the scan's first page
    feed = TranscriptFeed(AssemblyAIHook(), lookback=86400)
    await feed.poll()  # the first page failed
    assert feed.scanning
    start = len(emu.requests)
    await feed.poll()
    assert len(emu.requests) - start == 3  # the whole scan, once
    emu.fail_next("drop", path="/v2/transcript")
    burst = [emu.create_transcript("us", status="completed") for _ in range(450)]
    assert await feed.poll() == []  # failed: nothing lost, nothing half-committed
    start = len(emu.requests)
    found = await feed.poll()
    assert sorted(f.transcript_id for f in found) == sorted(burst)
    pages = [r for r in emu.requests[start:] if r.path == "/v2/transcript"]
    assert len(pages) == 3  # 450 new transcripts: three pages down to the newest one seen before


async def test_a_status_no_watcher_wants_is_not_reported_nor_read_when_listed_finished(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    feed = TranscriptFeed(AssemblyAIHook(), lookback=86400, wanted=Counter({"completed": 1}))
    failed_before = emu.create_transcript("us", status="error")
    assert await feed.poll() == []
    failed_after = emu.create_transcript("us", status="error")
    completed = emu.create_transcript("us", status="completed")
    failing = emu.create_transcript("us", status="processing", completes_in=10, final_status="error")
    assert [f.transcript_id for f in await feed.poll()] == [completed]
    emu.advance(10)
    await feed.poll()
    read = {r.path.rsplit("/", 1)[1] for r in emu.requests if r.path.startswith("/v2/transcript/")}
    assert completed in read
    assert failing in read  # it was in flight: its GET is the only way to learn how it ended
    assert failed_before not in read
    assert failed_after not in read  # listed as error: not wanted, not read


async def test_a_transcript_gone_from_the_api_is_dropped(
    emu: AssemblyAIEmulator, shared_clients: None
) -> None:
    tid = emu.create_transcript("us", status="processing", completes_in=10)
    feed = TranscriptFeed(AssemblyAIHook(), lookback=86400)
    await feed.poll()
    emu.advance(10)
    emu.fail_next("error", path=f"/v2/transcript/{tid}", status=404)
    assert await feed.poll() == []
    assert feed.unresolved == {}
    assert feed.in_flight == {}


# -- Airflow 3.3+: one listing loop for several watchers of an account --------------------------------


async def test_watchers_of_one_account_share_one_listing_loop_and_a_late_one_gets_the_backlog(
    emu: AssemblyAIEmulator, shared_clients: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Driven through Airflow's own SharedStreamManager, as the 3.3 triggerer drives it."""
    shared_stream = pytest.importorskip("airflow.triggers.shared_stream")
    feeds: list[TranscriptFeed] = []
    original_init = TranscriptFeed.__init__

    def counting_init(self: TranscriptFeed, *args: Any, **kwargs: Any) -> None:
        feeds.append(self)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(TranscriptFeed, "__init__", counting_init)
    completed = emu.create_transcript("us", status="completed")
    failed = emu.create_transcript("us", status="error")
    finishing = emu.create_transcript("us", status="processing", completes_in=60)
    watchers = {
        "completed": TranscriptEventTrigger(poll_interval=0.02),
        "error": TranscriptEventTrigger(statuses=["error"], poll_interval=0.02),
        "late": TranscriptEventTrigger(statuses=["completed", "error"], poll_interval=0.02),
    }
    assert len({w.shared_stream_key() for w in watchers.values()}) == 1
    manager = shared_stream.SharedStreamManager()
    events: dict[str, list[str]] = {name: [] for name in watchers}

    async def subscribe(trigger_id: int, name: str) -> None:
        trigger, key = watchers[name], watchers[name].shared_stream_key()
        stream = manager.subscribe(trigger_id=trigger_id, trigger=trigger, key=key)
        try:
            async for event in trigger.filter_shared_stream(stream):
                events[name].append(event.payload["transcript_id"])
        finally:
            await manager.unsubscribe(trigger_id, key)

    async def until(condition: Callable[[], bool], what: str) -> None:
        for _ in range(int(WAIT_S / 0.02)):
            if condition():
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"never happened: {what} ({events})")

    tasks = [asyncio.ensure_future(subscribe(1, "completed")), asyncio.ensure_future(subscribe(2, "error"))]
    try:
        await until(
            lambda: events["completed"] == [completed] and events["error"] == [failed], "the first scan"
        )
        emu.advance(60)
        await until(lambda: len(events["completed"]) == 2, "the transcript that finished")
        tasks.append(asyncio.ensure_future(subscribe(3, "late")))
        await until(lambda: len(events["late"]) == 3, "the backlog, for the watcher that joined late")
        requests = lists(emu)
        await until(lambda: lists(emu) >= requests + 10, "ten more polls")
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await manager.stop_all()
    from airflow_provider_assemblyai.triggers.assemblyai import _shared_streams

    assert _shared_streams.get(asyncio.get_running_loop()) == {}  # nothing left behind
    assert len(feeds) == 1  # one listing loop for the three watchers
    assert events["completed"] == [completed, finishing]  # once each: the rescan repeated nothing
    assert events["error"] == [failed]
    assert sorted(events["late"]) == sorted([completed, failed, finishing])
