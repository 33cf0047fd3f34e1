"""
The finished transcripts of one account and region, from ``GET /v2/transcript``, at a cost bounded by change.

:class:`TranscriptFeed` is the listing loop behind :class:`~.assemblyai.TranscriptEventTrigger`. Its
first poll scans the window (every transcript created within ``lookback``, newest first, paging with
``before_id``) and reports the finished, undeleted ones from the list itself. After that, a poll reads:

1. the top of the list down to the newest transcript it had seen (one page unless more than 200
   transcripts were created since the last poll): new transcripts, finished or still in flight;
2. while it tracks in-flight transcripts, the ``queued`` list (only if one of them was queued), then
   the ``processing`` list, down to the oldest one it tracks: a tracked transcript in neither has
   finished (statuses only move forward, and ``processing`` is read after ``queued``);
3. one ``GET`` per transcript that finished since the last poll (from step 1 or 2), for its final
   status, ``error`` and ``audio_duration`` (a new one listed in a status no watcher wants is not
   read).

So a poll costs a few list requests plus one GET per newly finished transcript, however many
transcripts the account holds. Deleted transcripts stay listed (as ``completed``, with the deleted
``audio_url``) and are skipped. With ``redeliver_after``, a reported transcript is read once more
that long after it was reported (one more GET), and reported again, once, if it is still not deleted.

Errors never end the feed: the poll stops where it failed, keeps what it learned, and the next poll
carries on from there. A poll that failed for a reason other than a rate limit, a 5xx or a dropped
connection (a rejected key, a missing connection) reads the connection again at the next poll, so a
watcher heals when the connection is fixed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_assemblyai.exceptions import TRANSIENT_ERRORS, TranscriptNotFoundError
from airflow_provider_assemblyai.hooks.assemblyai import MAX_LIST_LIMIT
from airflow_provider_assemblyai.validation import TranscriptStatus

if TYPE_CHECKING:
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
    from airflow_provider_assemblyai.models import Transcript, TranscriptListItem

log = logging.getLogger(__name__)

#: Listed in this order: a transcript moving on between the two reads is still seen in the second.
IN_FLIGHT = (TranscriptStatus.QUEUED, TranscriptStatus.PROCESSING)
FINISHED = frozenset({TranscriptStatus.COMPLETED.value, TranscriptStatus.ERROR.value})


@dataclass(frozen=True)
class FinishedTranscript:
    """
    A transcript found finished (``completed`` or ``error``) and not deleted.

    :param transcript_id: its id.
    :param status: ``completed`` or ``error``.
    :param region: the connection's region.
    :param created: when it was created (UTC).
    :param error: the API's error text, if any.
    :param audio_duration: seconds of audio; None when it was found by the window scan (the list
        does not carry it).
    :param redelivered: reported again because it was still undeleted ``redeliver_after`` later.
    """

    transcript_id: str
    status: str
    region: str
    created: datetime
    error: str | None = None
    audio_duration: float | None = None
    redelivered: bool = False

    def payload(self) -> dict[str, Any]:
        """The event payload: plain JSON values."""
        return {
            "transcript_id": self.transcript_id,
            "status": self.status,
            "region": self.region,
            "created": self.created.isoformat().replace("+00:00", "Z"),
            "audio_duration": self.audio_duration,
            "error": self.error,
            "redelivered": self.redelivered,
        }


@dataclass
class _Head:
    """The newest transcript seen: where reading the top of the list stops."""

    transcript_id: str
    created: datetime

    def reached(self, item: TranscriptListItem) -> bool:
        """Whether ``item`` is this transcript or older (so was seen before)."""
        return item.id == self.transcript_id or item.created < self.created


class TranscriptFeed:
    """
    Poll an account's transcript list and return the transcripts that finished since the last poll.

    :param hook: the hook of the connection to watch (its account and region).
    :param lookback: seconds: only transcripts created this recently are reported or tracked.
    :param redeliver_after: seconds after which a reported transcript is read again and reported
        once more if it is still finished and not deleted (None: never).
    :param wanted: the statuses to report, counted per watcher (read at each poll: watchers sharing
        the feed come and go); none counted: every finished status.
    """

    def __init__(
        self,
        hook: AssemblyAIHook,
        lookback: float,
        redeliver_after: float | None = None,
        wanted: Counter[str] | None = None,
    ) -> None:
        self.hook = hook
        self.lookback = timedelta(seconds=lookback)
        self.wanted = wanted if wanted is not None else Counter()
        self.statuses = FINISHED  # the statuses this poll reports
        self.redeliver_after = redeliver_after
        self.reported: dict[str, tuple[datetime, float]] = {}  # to read again: created, when (monotonic)
        self.in_flight: dict[str, datetime] = {}  # listed as queued/processing at the last look
        self.queued: set[str] = set()  # the in-flight ones that were queued at the last look
        self.unresolved: dict[str, datetime] = {}  # finished since: to read with GET
        self.head: _Head | None = None
        self.scanning = True  # the window scan is due (first poll, or a rescan)
        self.scan_cursor: str | None = None  # where an interrupted scan resumes (before_id)
        self.failing = False
        self.polls = 0

    def rescan(self) -> None:
        """Scan the whole window again at the next poll (for a watcher that joined late)."""
        if not self.scanning:
            self.scanning, self.scan_cursor = True, None

    async def poll(self) -> list[FinishedTranscript]:
        """Read what changed; return the transcripts found finished (raises nothing but cancellation)."""
        window_start = datetime.now(timezone.utc) - self.lookback
        self.statuses = frozenset(s for s, n in self.wanted.items() if n > 0) or FINISHED
        found: list[FinishedTranscript] = []
        try:
            region = (await self.hook.aget_settings()).region
            if self.scanning:
                await self._scan(window_start, region, found)
            else:
                await self._read_new(window_start)
                await self._check_in_flight()
                await self._resolve(region, found)
                await self._redeliver(region, found)
        except Exception as error:  # the next poll carries on from where this one stopped
            self._failed(error)
        else:
            if self.failing:
                log.info("Watching transcripts works again")
            self.failing = False
        finally:
            self._forget_before(window_start)
        self.polls += 1
        log.debug(
            "Poll %d: %d found finished, %d in flight, %d to read",
            self.polls,
            len(found),
            len(self.in_flight),
            len(self.unresolved),
        )
        return found

    def _failed(self, error: Exception) -> None:
        """Log a failed poll: loudly when polls start failing, quietly while they keep failing."""
        if self.failing:
            level = logging.DEBUG
        else:
            level = logging.WARNING if isinstance(error, TRANSIENT_ERRORS) else logging.ERROR
        log.log(level, "Watching transcripts failed, will retry at the next poll: %s", error)
        self.failing = True
        if not isinstance(error, TRANSIENT_ERRORS):  # a rejected key or a bad connection: read it again
            self.hook = type(self.hook)(self.hook.assemblyai_conn_id)

    async def _scan(self, window_start: datetime, region: str, found: list[FinishedTranscript]) -> None:
        """Read the window, newest first; report finished transcripts from the list, track the rest."""
        while True:
            page = (await self.hook.alist_transcript_page(before_id=self.scan_cursor)).transcripts
            if self.scan_cursor is None and page:
                self.head = _Head(page[0].id, page[0].created)
            in_window = [item for item in page if item.created >= window_start]
            for item in in_window:
                self._track(item)
                if item.status.value in self.statuses and not item.is_deleted:
                    self._report(
                        found,
                        FinishedTranscript(item.id, item.status.value, region, item.created, item.error),
                    )
            if len(in_window) < len(page) or len(page) < MAX_LIST_LIMIT:
                self.scanning, self.scan_cursor = False, None
                return
            self.scan_cursor = page[-1].id

    def _track(self, item: TranscriptListItem) -> None:
        """Track a listed transcript while it is in flight; stop once it is finished or deleted."""
        if item.status in IN_FLIGHT:
            self.in_flight[item.id] = item.created
            if item.status is TranscriptStatus.QUEUED:
                self.queued.add(item.id)
            return
        self.in_flight.pop(item.id, None)
        self.unresolved.pop(item.id, None)

    async def _read_new(self, window_start: datetime) -> None:
        """Read the top of the list down to the newest transcript seen before."""
        head, before_id = self.head, None
        newest: _Head | None = None
        in_flight: dict[str, datetime] = {}
        finished: dict[str, datetime] = {}
        while True:
            page = (await self.hook.alist_transcript_page(before_id=before_id)).transcripts
            if newest is None and page:
                newest = _Head(page[0].id, page[0].created)
            reached_known = False
            for item in page:
                if (head is not None and head.reached(item)) or item.created < window_start:
                    reached_known = True
                    break
                if item.status in IN_FLIGHT:
                    in_flight[item.id] = item.created
                    if item.status is TranscriptStatus.QUEUED:
                        self.queued.add(item.id)
                elif item.status.value in self.statuses and not item.is_deleted:
                    finished[item.id] = item.created
            if reached_known or len(page) < MAX_LIST_LIMIT:
                break
            before_id = page[-1].id
        self.in_flight.update(in_flight)
        self.unresolved.update(finished)
        self.head = newest or head

    async def _check_in_flight(self) -> None:
        """List the queued, then the processing transcripts: tracked ones in neither have finished."""
        if not self.in_flight:
            return
        oldest = min(self.in_flight.values())
        # A transcript seen processing is never queued again: no queued list if none was queued.
        statuses = IN_FLIGHT if self.queued & self.in_flight.keys() else (TranscriptStatus.PROCESSING,)
        listed: dict[TranscriptStatus, set[str]] = {}
        for status in statuses:
            listed[status], before_id = set(), None
            while True:
                page = (await self.hook.alist_transcript_page(status=status, before_id=before_id)).transcripts
                listed[status].update(item.id for item in page)
                if len(page) < MAX_LIST_LIMIT or page[-1].created < oldest:
                    break
                before_id = page[-1].id
        still = set().union(*listed.values())
        for transcript_id in [t for t in self.in_flight if t not in still]:
            self.unresolved[transcript_id] = self.in_flight.pop(transcript_id)
        self.queued = listed.get(TranscriptStatus.QUEUED, set()) & self.in_flight.keys()

    async def _resolve(self, region: str, found: list[FinishedTranscript]) -> None:
        """GET each transcript that finished since the last poll; keep the ones that failed for later."""
        read, problem = await self._read(self.unresolved)
        for transcript_id, transcript in read:
            created = self.unresolved.pop(transcript_id)
            if transcript is None:
                continue
            if transcript.status in IN_FLIGHT:  # listed as finished, read as not yet: look again later
                self.in_flight[transcript_id] = created
                if transcript.status is TranscriptStatus.QUEUED:
                    self.queued.add(transcript_id)
            elif transcript.status.value in self.statuses and not transcript.is_deleted:
                self._report(found, _finished(transcript, region, created))
        if problem is not None:
            raise problem

    async def _redeliver(self, region: str, found: list[FinishedTranscript]) -> None:
        """GET each reported transcript whose time came; report it again if it is still undeleted."""
        now = time.monotonic()
        due = {tid: created for tid, (created, when) in self.reported.items() if when <= now}
        read, problem = await self._read(due)
        for transcript_id, transcript in read:
            del self.reported[transcript_id]
            if transcript is not None and transcript.status.is_terminal and not transcript.is_deleted:
                log.info("Transcript %s is still not deleted: reporting it once more", transcript_id)
                found.append(_finished(transcript, region, due[transcript_id], redelivered=True))
        if problem is not None:
            raise problem

    async def _read(
        self, ids: dict[str, datetime]
    ) -> tuple[list[tuple[str, Transcript | None]], BaseException | None]:
        """
        GET these transcripts at once.

        Returns ``(id, transcript)`` for each one read and ``(id, None)`` for each one no longer found,
        and the first other error: the ones it hit are left out, to be read at the next poll.
        """
        wanted = list(ids)
        results = await asyncio.gather(
            *(self.hook.aget_transcript(transcript_id) for transcript_id in wanted), return_exceptions=True
        )
        read: list[tuple[str, Transcript | None]] = []
        problem: BaseException | None = None
        for transcript_id, result in zip(wanted, results, strict=True):
            if isinstance(result, TranscriptNotFoundError):
                log.warning("Transcript %s is no longer found; not reporting it", transcript_id)
                read.append((transcript_id, None))
            elif isinstance(result, BaseException):
                problem = problem or result
            else:
                read.append((transcript_id, result))
        return read, problem

    def _report(self, found: list[FinishedTranscript], finished: FinishedTranscript) -> None:
        """Add a finished transcript to this poll's result; read it again later if redelivery is on."""
        found.append(finished)
        if self.redeliver_after is not None:
            due = time.monotonic() + self.redeliver_after
            self.reported[finished.transcript_id] = (finished.created, due)

    def _forget_before(self, window_start: datetime) -> None:
        """Stop tracking transcripts created before the window: they are never reported."""
        for tracked in (self.in_flight, self.unresolved):
            for transcript_id in [t for t, created in tracked.items() if created < window_start]:
                del tracked[transcript_id]
        for transcript_id in [t for t, (created, _) in self.reported.items() if created < window_start]:
            del self.reported[transcript_id]


def _finished(
    transcript: Transcript, region: str, created: datetime, *, redelivered: bool = False
) -> FinishedTranscript:
    return FinishedTranscript(
        transcript.id,
        transcript.status.value,
        region,
        created,
        transcript.error,
        transcript.audio_duration,
        redelivered,
    )
