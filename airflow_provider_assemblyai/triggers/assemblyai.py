"""
TranscriptStatusTrigger: wait in the triggerer until a transcript reaches a status, fails, or time is up.

The trigger row stores only plain values (ids, statuses, numbers): the API key is read from the
connection inside :meth:`TranscriptStatusTrigger.run`, with ``get_async_connection`` (through
:meth:`AssemblyAIHook.aget_settings`), and polls go through the hook's async client, which is shared
by every trigger on the triggerer's event loop.

Many triggers waiting on one loop and account share a status board (:mod:`._status_board`): a few
list pages of the account's queued and processing transcripts stand in for one ``GET`` per trigger
and poll.

DAG files import this module to build a :class:`TranscriptEventTrigger` for an ``AssetWatcher``: the
hook (httpx, tenacity, pydantic models) is imported only where a trigger runs.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Hashable, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.triggers import BaseEventTrigger
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_assemblyai._loop_state import PerEventLoop
from airflow_provider_assemblyai.exceptions import TRANSIENT_ERRORS
from airflow_provider_assemblyai.triggers._status_board import (
    BOARD_MIN_WAITERS,
    BOARD_STATUSES,
    StatusBoard,
    board_for,
)
from airflow_provider_assemblyai.validation import (
    check_conn_id,
    check_positive_seconds,
    finished_statuses,
    parse_status_sets,
    validate_transcript_id,
)

if TYPE_CHECKING:
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
    from airflow_provider_assemblyai.models import Transcript
    from airflow_provider_assemblyai.triggers._transcript_feed import FinishedTranscript, TranscriptFeed

__all__ = [
    "BOARD_MIN_WAITERS",
    "BOARD_STATUSES",
    "EVENT_TRIGGERS_SUPPORTED",
    "MAX_LOOKBACK",
    "TRANSIENT_ERRORS",
    "TranscriptEventTrigger",
    "TranscriptPoll",
    "TranscriptStatusTrigger",
    "utc_iso",
]


def utc_iso(timestamp: float) -> str:
    """Format a Unix timestamp as ISO 8601 UTC to the second, e.g. ``2026-12-03T09:12:38Z``.

    :param timestamp: seconds since the epoch (``time.time()``).
    """
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class TranscriptPoll:
    """
    What one poll learned about a transcript.

    :param status: its status (read with its own ``GET``, or listed in flight by the status board).
    :param error: the API's error text, from the ``GET`` (None when only listed).
    :param audio_duration: the audio's length in seconds, from the ``GET`` (None when only listed).
    """

    status: str
    error: str | None = None
    audio_duration: float | None = None

    @classmethod
    def read(cls, transcript: Transcript) -> TranscriptPoll:
        """The poll result of a transcript read with ``GET``.

        :param transcript: the transcript as the API returned it.
        """
        return cls(transcript.status.value, transcript.error, transcript.audio_duration)


class TranscriptStatusTrigger(BaseTrigger):
    """
    Poll ``GET /v2/transcript/{id}`` until the status is a target or failure status, or the deadline passes.

    Emits exactly one event, ``{"status", "transcript_id", "transcript_status", "error",
    "audio_duration", "message"}``, whose ``status`` is ``success`` (a target status), ``failure`` (a
    failure status), ``timeout`` (``end_time`` passed first) or ``error`` (a non-transient API error
    such as a rejected key or an unknown transcript). ``error`` and ``audio_duration`` are the
    transcript's own fields as its last ``GET`` returned them (None if it was never read), so the
    task resuming on the event needs no request of its own. Rate limits, 5xx and dropped
    connections that outlast the hook's retries are retried on the next poll, until the deadline.
    With :data:`BOARD_MIN_WAITERS` or more triggers waiting on the loop for the same account, a poll
    of a transcript the shared status board lists as still in flight costs no request of its own.

    .. seealso:: README section "Operators and sensor".

    :param transcript_id: the transcript to wait for.
    :param assemblyai_conn_id: the Airflow connection id.
    :param target_statuses: statuses that end the wait with ``success``.
    :param failure_statuses: statuses that end the wait with ``failure`` (disjoint from the targets).
    :param poll_interval: seconds between polls.
    :param end_time: absolute deadline as a Unix timestamp (``time.time()``); None waits forever.
    """

    def __init__(
        self,
        *,
        transcript_id: str,
        assemblyai_conn_id: str = "assemblyai_default",
        target_statuses: Sequence[str] = ("completed",),
        failure_statuses: Sequence[str] = ("error",),
        poll_interval: float = 5.0,
        end_time: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.transcript_id = validate_transcript_id(transcript_id)
        self.assemblyai_conn_id = check_conn_id(assemblyai_conn_id)
        targets, failures = parse_status_sets(target_statuses, failure_statuses)
        self.target_statuses = [status.value for status in targets]
        self.failure_statuses = [status.value for status in failures]
        self.poll_interval = check_positive_seconds(poll_interval)
        if end_time is not None and (
            isinstance(end_time, bool)
            or not isinstance(end_time, (int, float))
            or not math.isfinite(end_time)
        ):
            raise ValueError(f"end_time must be a Unix timestamp (float) or None, got {end_time!r}")
        self.end_time = None if end_time is None else float(end_time)
        self._board: StatusBoard | None = None  # joined by the first poll that knows the account

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the plain-value kwargs to re-create this trigger (never the key)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "transcript_id": self.transcript_id,
                "assemblyai_conn_id": self.assemblyai_conn_id,
                "target_statuses": list(self.target_statuses),
                "failure_statuses": list(self.failure_statuses),
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
            },
        )

    def _seconds_left(self) -> float | None:
        return None if self.end_time is None else self.end_time - time.time()

    def _event(self, status: str, last: TranscriptPoll | None, message: str) -> TriggerEvent:
        return TriggerEvent(  # type: ignore[no-untyped-call]
            {
                "status": status,
                "transcript_id": self.transcript_id,
                "transcript_status": last.status if last else None,
                "error": last.error if last else None,
                "audio_duration": last.audio_duration if last else None,
                "message": message,
            }
        )

    async def _fetch(self, hook: AssemblyAIHook) -> TranscriptPoll:
        """The transcript from its own GET, or its listed status while the board shows it in flight."""
        if self._board is None:
            settings = await hook.aget_settings()
            self._board = board_for(settings.base_url, settings.api_key)
            self._board.join(self.transcript_id)
        listed = await self._board.listed_status(hook, self.transcript_id, max_age=self.poll_interval / 2)
        if listed is None or listed in self.target_statuses or listed in self.failure_statuses:
            return TranscriptPoll.read(await hook.aget_transcript(self.transcript_id))
        return TranscriptPoll(listed)

    async def _poll(self, hook: AssemblyAIHook) -> TranscriptPoll:
        """
        Fetch the transcript (or its listed status); a poll may not run past the deadline.

        ``asyncio.wait`` rather than ``asyncio.wait_for``: before Python 3.12, ``wait_for`` can swallow
        a cancellation that arrives as the request finishes, and the triggerer must see every one.
        """
        left = self._seconds_left()
        if left is None or left <= 0:  # no deadline, or restarted past it: one poll, uncut
            return await self._fetch(hook)
        request = asyncio.ensure_future(self._fetch(hook))
        try:
            await asyncio.wait({request}, timeout=left)
        finally:
            if not request.done():
                request.cancel()
        if not request.done():
            await asyncio.wait({request})  # let the cancelled request unwind; its outcome is ignored
            raise asyncio.TimeoutError
        return request.result()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until done and yield exactly one event (cancellation propagates; nothing remote stops)."""
        from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

        # One hook per trigger; its AsyncClient is the loop's shared one, so it is never closed here.
        hook = AssemblyAIHook(self.assemblyai_conn_id)
        self._board = None
        try:
            async with aclosing(self._wait(hook)) as events:
                async for event in events:
                    yield event
                    return
        finally:
            if self._board is not None:
                self._board.leave(self.transcript_id)

    async def _wait(self, hook: AssemblyAIHook) -> AsyncGenerator[TriggerEvent, None]:
        last: TranscriptPoll | None = None
        last_problem = "no poll finished"
        while True:
            try:
                last = await self._poll(hook)
            except TRANSIENT_ERRORS as error:
                last_problem = f"the last poll failed: {error}"
                self.log.warning("Polling transcript %s failed, will retry: %s", self.transcript_id, error)
            except asyncio.TimeoutError:
                last_problem = "the last poll was still running at the deadline"
            except Exception as error:  # auth, not found, bad connection, malformed answer: not transient
                yield self._event(
                    "error",
                    last,
                    f"Could not poll transcript {self.transcript_id}: {type(error).__name__}: {error}",
                )
                return
            else:
                # A status listed by the board is never a target or failure one: those are read with GET.
                if last.status in self.target_statuses:
                    self.log.info("Transcript %s reached status %s", self.transcript_id, last.status)
                    yield self._event("success", last, f"Transcript {self.transcript_id} is {last.status}")
                    return
                if last.status in self.failure_statuses:
                    yield self._event(
                        "failure",
                        last,
                        f"Transcript {self.transcript_id} ended with status {last.status!r}: "
                        f"{last.error or 'the API gave no error text'}",
                    )
                    return
                last_problem = f"its status was still {last.status!r}"
                self.log.debug("Transcript %s is %s", self.transcript_id, last.status)
            left = self._seconds_left()
            if self.end_time is not None and left is not None and left <= 0:
                yield self._event(
                    "timeout",
                    last,
                    f"Transcript {self.transcript_id} did not reach {self.target_statuses} before the "
                    f"deadline ({utc_iso(self.end_time)}): {last_problem}",
                )
                return
            await asyncio.sleep(self.poll_interval if left is None else min(self.poll_interval, left))


#: Whether this Airflow has event-driven scheduling (``BaseEventTrigger``, ``AssetWatcher``): Airflow 3.
EVENT_TRIGGERS_SUPPORTED = BaseEventTrigger is not BaseTrigger
#: The API lists only the transcripts of the last 90 days.
MAX_LOOKBACK = timedelta(days=90)


class TranscriptEventTrigger(BaseEventTrigger):
    """
    Watch an account (in the connection's region) and fire one event per finished, undeleted transcript.

    For Airflow 3's ``AssetWatcher``: ``Asset(..., watchers=[AssetWatcher(name=...,
    trigger=TranscriptEventTrigger())])`` runs the DAGs scheduled on the asset for the transcripts that
    finished. The account is the queue: "finished and not deleted" is the work left when the pipeline
    deletes what it exported. So the first poll offers every such transcript created within
    ``lookback``, later polls offer those that finish, each transcript is offered once per run of the
    trigger, and a restarted trigger offers again what is still finished and undeleted, never what was
    deleted meanwhile. The trigger itself never deletes anything; it runs until cancelled.

    With ``redeliver_after``, a transcript still finished and undeleted that long after it was
    offered is offered once more (``"redelivered": true``): a DAG run that failed gets a second
    chance, and so does an asset event Airflow 3.3 left unconsumed (apache/airflow#56050: events that
    arrive while a run is being created wait for the asset's next event).

    Each event's payload is ``{"transcript_id", "status", "region", "created", "audio_duration",
    "error", "redelivered"}`` (plain values; ``audio_duration`` is None for transcripts found already
    finished by the first scan, as the list does not carry it). After the first scan of the window, a
    poll costs a few list requests plus one GET per transcript that finished since the last poll (and
    one per transcript due for redelivery), whatever the account holds (see :mod:`._transcript_feed`).
    Errors (a rate limit, a bad key, an unreachable API) are logged and retried at the next poll. On
    Airflow 3.3+, watchers of one connection with the same ``lookback``, ``poll_interval`` and
    ``redeliver_after`` share one listing loop (``shared_stream_key``), whatever their ``statuses``.

    .. seealso:: README section "Event-driven cleanup (Airflow 3)".

    :param assemblyai_conn_id: the Airflow connection id (its key, region and base URL).
    :param statuses: the finished statuses to offer: ``completed`` and/or ``error``.
    :param poll_interval: seconds between polls.
    :param lookback: only transcripts created this recently (a timedelta, or seconds; at most the
        API's 90 days).
    :param redeliver_after: offer a transcript once more if it is still finished and undeleted this
        long (a timedelta, or seconds) after it was offered; None (the default): offer it once.
    """

    def __init__(
        self,
        *,
        assemblyai_conn_id: str = "assemblyai_default",
        statuses: Sequence[str] = ("completed",),
        poll_interval: float = 60.0,
        lookback: timedelta | float = timedelta(days=1),
        redeliver_after: timedelta | float | None = None,
    ) -> None:
        if not EVENT_TRIGGERS_SUPPORTED:
            from airflow.providers.common.compat.sdk import AirflowOptionalProviderFeatureException

            raise AirflowOptionalProviderFeatureException(
                "TranscriptEventTrigger needs Airflow 3 (event-driven scheduling with AssetWatcher); "
                "on Airflow 2, schedule a DAG with PurgeTranscriptsOperator or DeleteTranscriptOperator "
                "instead"
            )
        super().__init__()  # type: ignore[no-untyped-call]
        self.assemblyai_conn_id = check_conn_id(assemblyai_conn_id)
        self.statuses = _finished_statuses(statuses)
        self.poll_interval = check_positive_seconds(poll_interval)
        self.lookback = _lookback_seconds(lookback)
        self.redeliver_after = (
            None
            if redeliver_after is None
            else check_positive_seconds(redeliver_after, argument="redeliver_after", allow_timedelta=True)
        )
        self._offered: dict[str, tuple[datetime, int]] = {}  # per run: id -> (created, times offered)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the classpath and the plain-value kwargs to re-create this trigger (never the key)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "assemblyai_conn_id": self.assemblyai_conn_id,
                "statuses": list(self.statuses),
                "poll_interval": self.poll_interval,
                "lookback": self.lookback,
                "redeliver_after": self.redeliver_after,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the account until cancelled, yielding one event per newly found finished transcript."""
        self._offered = {}
        batches = _poll_feed(self._feed(Counter(self.statuses)), self.poll_interval)
        async with aclosing(batches):
            async for batch in batches:
                for event in self._events(batch):
                    yield event

    def _feed(self, wanted: Counter[str]) -> TranscriptFeed:
        from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
        from airflow_provider_assemblyai.triggers._transcript_feed import TranscriptFeed

        hook = AssemblyAIHook(self.assemblyai_conn_id)
        return TranscriptFeed(hook, self.lookback, self.redeliver_after, wanted)

    def shared_stream_key(self) -> Hashable | None:
        """Airflow 3.3+: watchers of one connection, window, interval and redelivery share one loop."""
        return (f"{type(self).__module__}.{type(self).__qualname__}", *self._stream_fields())

    def _stream_fields(self) -> tuple[str, float, float, float | None]:
        return (self.assemblyai_conn_id, self.lookback, self.poll_interval, self.redeliver_after)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """
        Airflow 3.3+: the shared listing loop, yielding one batch of finished transcripts per poll.

        :param kwargs: one watcher's kwargs; only those in :meth:`shared_stream_key` are used.
        """
        watcher = cls(**kwargs)
        key, streams = watcher.shared_stream_key(), _shared_streams.current()
        shared = streams.setdefault(key, _SharedStream())
        shared.feed = feed = watcher._feed(shared.wanted)
        try:
            async with aclosing(_poll_feed(feed, watcher.poll_interval)) as batches:
                async for batch in batches:
                    yield batch
        finally:
            if shared.feed is feed:
                shared.feed = None
            _forget_unused(streams, key)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """
        Airflow 3.3+: this watcher's events from the shared batches (its statuses, once per transcript).

        A watcher that joins a running loop has it scan the window again, so it is offered the
        transcripts already finished too (the others skip what they offered already).

        :param shared_stream: the batches of :meth:`open_shared_stream`.
        """
        self._offered = {}
        key, streams = self.shared_stream_key(), _shared_streams.current()
        shared = streams.setdefault(key, _SharedStream())
        shared.wanted.update(self.statuses)
        if shared.feed is not None:
            shared.feed.rescan()
        try:
            async for batch in shared_stream:
                for event in self._events(batch):
                    yield event
        finally:
            shared.wanted -= Counter(self.statuses)
            _forget_unused(streams, key)

    def _events(self, batch: Sequence[FinishedTranscript]) -> list[TriggerEvent]:
        """The events of a batch: this watcher's statuses, each transcript once (twice if redelivered)."""
        window_start = datetime.now(timezone.utc) - timedelta(seconds=self.lookback)
        for transcript_id in [t for t, (created, _) in self._offered.items() if created < window_start]:
            del self._offered[transcript_id]  # out of the window: never listed again
        events = []
        for finished in batch:
            offered = self._offered.get(finished.transcript_id, (finished.created, 0))[1]
            if finished.status in self.statuses and offered < (2 if finished.redelivered else 1):
                self._offered[finished.transcript_id] = (finished.created, offered + 1)
                self.log.debug("Transcript %s is %s", finished.transcript_id, finished.status)
                events.append(TriggerEvent(finished.payload()))  # type: ignore[no-untyped-call]
        return events


async def _poll_feed(
    feed: TranscriptFeed, poll_interval: float
) -> AsyncGenerator[list[FinishedTranscript], None]:
    """Poll a feed forever, yielding each non-empty batch."""
    while True:
        batch = await feed.poll()
        if batch:
            yield batch
        await asyncio.sleep(poll_interval)


@dataclass
class _SharedStream:
    """What the watchers of one shared stream (Airflow 3.3+) have in common: the statuses, the feed."""

    wanted: Counter[str] = field(default_factory=Counter)  # the statuses of the subscribed watchers
    feed: TranscriptFeed | None = None  # while its listing loop runs


#: The shared streams of each event loop by key: a watcher registers its statuses, and one that
#: joins a running loop asks its feed for a rescan of the window.
_shared_streams: PerEventLoop[dict[Hashable, _SharedStream]] = PerEventLoop(dict)


def _forget_unused(streams: dict[Hashable, _SharedStream], key: Hashable) -> None:
    shared = streams.get(key)
    if shared is not None and shared.feed is None and not +shared.wanted:
        del streams[key]


def _finished_statuses(statuses: object) -> list[str]:
    reason = "a watcher offers finished transcripts, and {unfinished} ones are not finished"
    return list(finished_statuses(statuses, reason=reason))


def _lookback_seconds(lookback: object) -> float:
    seconds = lookback.total_seconds() if isinstance(lookback, timedelta) else lookback
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds <= MAX_LOOKBACK.total_seconds()
    ):
        raise ValueError(
            f"lookback must be a timedelta (or seconds) above 0 and at most 90 days, the API's list "
            f"window, got {lookback!r}"
        )
    return float(seconds)
