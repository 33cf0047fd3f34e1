"""
The status board: many ``TranscriptStatusTrigger`` waiting on one event loop and account read a few
list pages of the account's queued and processing transcripts instead of one ``GET`` each per poll.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from typing import TYPE_CHECKING

from airflow_provider_assemblyai._loop_state import PerEventLoop
from airflow_provider_assemblyai.validation import TranscriptStatus

if TYPE_CHECKING:
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

#: From this many triggers waiting on one loop and account, they read a shared status board.
BOARD_MIN_WAITERS = 20
#: The statuses a board lists: the ones a transcript is in while it is still being worked on.
BOARD_STATUSES = (TranscriptStatus.QUEUED, TranscriptStatus.PROCESSING)

#: The board logs under the name of the triggers' module, which it serves.
log = logging.getLogger("airflow_provider_assemblyai.triggers.assemblyai")


class StatusBoard:
    """
    The queued and processing transcripts of one account, listed for every trigger on one event loop.

    A refresh reads ``GET /v2/transcript?status=queued`` and ``...?status=processing``, paging with
    ``before_id`` (at most ``1 + waiters // 200`` pages each, so unrelated work on the account cannot
    make it grow without bound). A trigger whose transcript is listed as still in flight skips its
    own ``GET`` for that poll; a transcript not on the board (finished, never listed, beyond the
    pages read, or the refresh failed) is fetched with a ``GET`` as usual. So the board only ever
    saves requests: every event is still built from the transcript's own ``GET``.
    """

    def __init__(self) -> None:
        self.waiters: Counter[str] = Counter()
        self.waiting = 0  # triggers, i.e. the sum of ``waiters``
        self.statuses: dict[str, str] = {}
        self.refreshed_at = -math.inf
        self.refreshing: asyncio.Future[None] | None = None
        self.failing = False

    async def listed_status(self, hook: AssemblyAIHook, transcript_id: str, max_age: float) -> str | None:
        """
        Return the transcript's status as listed at most ``max_age`` seconds ago, or None if unlisted.

        :param hook: the hook whose connection the board lists (used when a refresh is due).
        :param transcript_id: the transcript to look up.
        :param max_age: how old (in seconds) a listing may be; an older one is refreshed first.
        """
        if self.waiting < BOARD_MIN_WAITERS:
            return None
        if self.refreshing is None and time.monotonic() - self.refreshed_at > max_age:
            self.refreshing = asyncio.ensure_future(self._refresh(hook))
        if self.refreshing is not None:
            await asyncio.shield(self.refreshing)  # one trigger's cancellation must not stop it
        return self.statuses.get(transcript_id)

    async def _refresh(self, hook: AssemblyAIHook) -> None:
        from airflow_provider_assemblyai.hooks.assemblyai import MAX_LIST_LIMIT

        started = time.monotonic()
        pages = 1 + len(self.waiters) // MAX_LIST_LIMIT
        statuses: dict[str, str] = {}
        try:
            for status in BOARD_STATUSES:
                before_id = None
                for _ in range(pages):
                    page = await hook.alist_transcript_page(status=status, before_id=before_id)
                    statuses.update((item.id, item.status.value) for item in page.transcripts)
                    if len(page.transcripts) < MAX_LIST_LIMIT:
                        break
                    before_id = page.transcripts[-1].id
        except Exception as error:  # every trigger falls back to its own GET until the next refresh
            # Warn when listing starts failing, not on every refresh while it keeps failing.
            level = logging.DEBUG if self.failing else logging.WARNING
            log.log(level, "Listing in-flight transcripts failed; triggers poll one by one: %s", error)
            statuses, self.failing = {}, True
        else:
            self.failing = False
            log.debug("Listed %d in-flight transcripts for %d triggers", len(statuses), self.waiting)
        finally:
            self.statuses, self.refreshed_at, self.refreshing = statuses, started, None

    def join(self, transcript_id: str) -> None:
        """Count a trigger waiting for ``transcript_id``.

        :param transcript_id: the transcript it waits for.
        """
        self.waiters[transcript_id] += 1
        self.waiting += 1

    def leave(self, transcript_id: str) -> None:
        """Stop counting a trigger that waited for ``transcript_id``.

        :param transcript_id: the transcript it waited for.
        """
        self.waiters[transcript_id] -= 1
        self.waiting -= 1
        if self.waiters[transcript_id] <= 0:
            del self.waiters[transcript_id]


#: The status boards of each event loop, by account (base URL and key).
boards: PerEventLoop[dict[tuple[str, str], StatusBoard]] = PerEventLoop(dict)


def board_for(base_url: str, api_key: str) -> StatusBoard:
    """
    The status board of an account on the running event loop.

    :param base_url: the connection's base URL.
    :param api_key: the account's key.
    """
    return boards.current().setdefault((base_url, api_key), StatusBoard())
