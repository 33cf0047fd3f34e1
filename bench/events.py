"""
Event-driven cleanup: what a TranscriptEventTrigger poll costs when the account holds a long history.

The emulator runs in its own process (:mod:`bench._emulator`, real clock). Its account holds 5,000
finished-and-deleted transcripts created over the last 20 hours, all inside the watcher's 1-day
window. A watcher (``statuses=["completed", "error"]``) starts; once its first poll (the window scan)
is done, 20 transcripts are created ``processing`` and finish at times staggered over 2 to 10 s
(every 10th in ``error``). The watcher runs until it has fired their 20 events, then for three more
polls, and is cancelled. Requests are read back from the emulator's request log and split into polls
at the pauses between them (the poll interval); the last poll, which the cancel may cut short, is not
counted.

The comparison is the naive watcher: every poll lists the whole window again (``before_id`` pages,
no status filter) and offers the finished, undeleted transcripts it has not offered yet.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

from bench._emulator import EmulatorProcess

CONN_ID = "assemblyai_bench"
LOOKBACK_S = 86400.0
WAIT_S = 300.0

FULL: dict[str, Any] = {
    "deleted": 5000,
    "finishing": 20,
    "finish_min": 2.0,
    "finish_max": 10.0,
    "poll_s": 1.0,
}
SMOKE: dict[str, Any] = {"deleted": 1000, "finishing": 5, "finish_min": 0.5, "finish_max": 1.5, "poll_s": 0.3}


async def _provider_events(poll_s: float) -> AsyncIterator[dict[str, Any]]:
    from airflow_provider_assemblyai.triggers.assemblyai import TranscriptEventTrigger

    trigger = TranscriptEventTrigger(
        assemblyai_conn_id=CONN_ID, statuses=["completed", "error"], poll_interval=poll_s, lookback=LOOKBACK_S
    )
    async for event in trigger.run():
        yield event.payload


async def _naive_events(poll_s: float) -> AsyncIterator[dict[str, Any]]:
    """Re-list the whole window every poll; offer what is finished, undeleted and new."""
    from airflow_provider_assemblyai.hooks.assemblyai import MAX_LIST_LIMIT, AssemblyAIHook

    hook, offered = AssemblyAIHook(CONN_ID), set()
    while True:
        window_start = datetime.now(timezone.utc) - timedelta(seconds=LOOKBACK_S)
        before_id = None
        while True:
            page = (await hook.alist_transcript_page(before_id=before_id)).transcripts
            in_window = [item for item in page if item.created >= window_start]
            for item in in_window:
                if item.status.is_terminal and not item.is_deleted and item.id not in offered:
                    offered.add(item.id)
                    yield {"transcript_id": item.id, "status": item.status.value}
            if len(in_window) < MAX_LIST_LIMIT:
                break
            before_id = page[-1].id
        await asyncio.sleep(poll_s)


WATCHERS = {
    "TranscriptEventTrigger (this provider)": _provider_events,
    "naive: re-list the window every poll": _naive_events,
}


async def _watch(label: str, emulator: EmulatorProcess, params: dict[str, Any]) -> dict[str, Any]:
    """Run one watcher through the scenario; return its events and the transcripts created."""
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

    events: list[dict[str, Any]] = []

    async def consume() -> None:
        async for payload in WATCHERS[label](params["poll_s"]):
            events.append(payload)

    async def until(condition: Any, what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise AssertionError(f"{label}: never happened: {what}")
            await asyncio.sleep(0.05)

    first_scan_pages = params["deleted"] // 200 + 1
    task = asyncio.ensure_future(consume())
    try:
        await until(lambda: _requests(emulator) >= first_scan_pages, "the first poll")
        await asyncio.sleep(params["poll_s"] / 2)
        created = await asyncio.to_thread(
            emulator.call,
            "create",
            n=params["finishing"],
            finish_min=params["finish_min"],
            finish_max=params["finish_max"],
        )
        await until(lambda: len(events) >= params["finishing"], "every event")
        await asyncio.sleep(3.5 * params["poll_s"])  # three more polls: nothing repeated, idle cost
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await AssemblyAIHook.aclose_shared_clients()
    return {"events": events, "created": created}


def _requests(emulator: EmulatorProcess) -> int:
    return int(emulator.call("stats")["requests"])


def _polls(log: list[list[Any]], poll_s: float) -> list[list[list[Any]]]:
    """Split the request log into polls: a pause longer than half the poll interval starts a new one."""
    polls: list[list[list[Any]]] = []
    last = None
    for record in log:
        if last is None or record[0] - last > poll_s / 2:
            polls.append([])
        polls[-1].append(record)
        last = record[0]
    return polls


def _measure(label: str, emulator: EmulatorProcess, params: dict[str, Any]) -> dict[str, Any]:
    emulator.call("prepare", n=params["deleted"], statuses=["deleted"], span_hours=20)
    since = _requests(emulator)
    started = time.perf_counter()
    result = asyncio.run(_watch(label, emulator, params))
    wall = time.perf_counter() - started
    log = emulator.call("requests", since=since)["requests"]
    expected = dict(zip(result["created"]["ids"], result["created"]["finals"], strict=True))
    got = [(event["transcript_id"], event["status"]) for event in result["events"]]
    if sorted(got) != sorted(expected.items()):
        raise AssertionError(f"{label}: wrong events: {got[:5]}... expected {len(expected)}")
    if any(record[4] != 200 for record in log):
        raise AssertionError(f"{label}: some requests were not answered 200")
    polls = _polls(log, params["poll_s"])[:-1]  # the last one may have been cut short by the cancel
    later = polls[1:]
    per_poll = [len(poll) for poll in later]
    lists_per_poll = [sum(1 for r in poll if r[2] == "/v2/transcript") for poll in later]
    gets = sum(1 for r in log if r[2].startswith("/v2/transcript/"))
    return {
        "benchmark": "event trigger",
        "case": label,
        "window_transcripts": params["deleted"] + params["finishing"],
        "finishing": params["finishing"],
        "poll_interval_s": params["poll_s"],
        "events_right": len(got),
        "polls": len(polls),
        "first_poll_requests": len(polls[0]),
        "requests_per_poll_median": statistics.median(per_poll),
        "requests_per_poll_max": max(per_poll),
        "list_pages_per_poll_max": max(lists_per_poll),
        "idle_poll_requests": per_poll[-1],
        "transcript_gets": gets,
        "requests": len(log),
        "wall_s": round(wall, 1),
    }


def run(smoke: bool) -> list[dict[str, Any]]:
    """
    Run both watchers through the same scenario; one row each. Raises if an event is wrong.

    :param smoke: 1,000 deleted transcripts and 5 finishing, 0.3 s polls.
    """
    import airflow_provider_assemblyai.hooks.assemblyai
    import airflow_provider_assemblyai.triggers._transcript_feed
    import airflow_provider_assemblyai.triggers.assemblyai  # noqa: F401  (imports are not measured)

    params = SMOKE if smoke else FULL
    with EmulatorProcess() as emulator:
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = emulator.connection_json(None)
        try:
            rows = [_measure(label, emulator, params) for label in WATCHERS]
        finally:
            del os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"]
    provider, naive = rows
    # 2 list pages (new ones, processing) + at most one GET per transcript that finished in the poll
    if provider["list_pages_per_poll_max"] > 2 or provider["idle_poll_requests"] != 1:
        raise AssertionError(f"a poll cost more than expected: {provider}")
    if provider["transcript_gets"] != params["finishing"]:
        raise AssertionError(f"expected one GET per finished transcript: {provider}")
    if naive["requests_per_poll_median"] <= provider["requests_per_poll_median"]:
        raise AssertionError(f"the naive watcher was not costlier: {rows}")
    return rows
