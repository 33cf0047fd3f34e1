"""The transcript list's requests: the checked query, and the walk from page to page by id cursor."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from airflow_provider_assemblyai.exceptions import AssemblyAIError
from airflow_provider_assemblyai.hooks._connection import ConnectionSettings, describe
from airflow_provider_assemblyai.models import (
    TranscriptList,
    TranscriptListItem,
    TranscriptStatus,
    validate_transcript_id,
)

TRANSCRIPT_PATH = "/v2/transcript"
MAX_LIST_LIMIT = 200


def transcript_path(transcript_id: object) -> str:
    return f"{TRANSCRIPT_PATH}/{validate_transcript_id(transcript_id)}"


def list_params(
    status: str | TranscriptStatus | None,
    created_on: str | date | None,
    before_id: str | None,
    after_id: str | None,
    limit: int,
) -> dict[str, str]:
    """The query of ``GET /v2/transcript``, every argument checked before any request."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {limit!r}")
    params = {"limit": str(limit)}
    if status is not None:
        params["status"] = TranscriptStatus.parse_many(status, argument="status")[0].value
    if created_on is not None:
        try:
            params["created_on"] = (
                created_on if isinstance(created_on, date) else date.fromisoformat(str(created_on))
            ).isoformat()[:10]
        except ValueError:
            raise ValueError(f"created_on must be a date (YYYY-MM-DD), got {created_on!r}") from None
    if before_id is not None:
        params["before_id"] = validate_transcript_id(before_id, argument="before_id")
    if after_id is not None:
        params["after_id"] = validate_transcript_id(after_id, argument="after_id")
    return params


def list_path(params: dict[str, str]) -> str:
    return f"{TRANSCRIPT_PATH}?{urlencode(params)}"


class ListWalk:
    """
    The requests of one transcript listing, each built from the caller's filters and an id cursor.

    The API's page links are never requested: behind a gateway (a ``base_url`` override) they name
    the API's own host, and the key only goes to ``base_url``. Older pages are read with
    ``before_id`` = the last (oldest) id of the page; the walk ends at an empty page or when the
    API's ``prev_url`` is null (its end signal; without the field, at a short page). With
    ``after_id`` and no ``before_id`` it walks towards newer transcripts instead (``after_id`` =
    the newest id of the page, oldest first, until an empty page), because the API refuses an
    ``after_id`` older than ``before_id`` (400), so the two cannot be combined to page. A cursor
    used twice (a page that does not advance) stops the walk with an error.

    :param params: the validated query parameters of the first page (see :func:`list_params`).
    :param settings: the connection's settings, named in errors.
    """

    def __init__(self, params: dict[str, str], settings: ConnectionSettings) -> None:
        self.params = params
        self.settings = settings
        self.limit = int(params["limit"])
        self.forward = "after_id" in params and "before_id" not in params
        self.cursor = "after_id" if self.forward else "before_id"
        self.used = {params[self.cursor]} if self.cursor in params else set()
        self.path: str | None = list_path(params)

    def advance(self, page: TranscriptList) -> list[TranscriptListItem]:
        """Return the page's items in walk order and set :attr:`path` to the next page (None: done)."""
        items = page.transcripts
        if self.forward:
            self.path = None if not items else self._next(items[0].id)
            return items[::-1]
        details = page.page_details
        if "prev_url" in details.model_fields_set:
            last = not items or details.prev_url is None
        else:
            last = len(items) < self.limit
        self.path = None if last else self._next(items[-1].id)
        return items

    def _next(self, cursor: str) -> str:
        if cursor in self.used:
            raise AssemblyAIError(
                f"AssemblyAI's transcript list ({describe(self.settings)}) loops: the next page "
                f"would again be read with {self.cursor}={cursor}, already used; stopping instead of "
                "paging forever"
            )
        self.used.add(cursor)
        try:
            self.params[self.cursor] = validate_transcript_id(cursor, argument=self.cursor)
        except ValueError as error:
            where = f"AssemblyAI's transcript list ({describe(self.settings)})"
            raise AssemblyAIError(f"{where} cannot be paged further: {error}") from None
        return list_path(self.params)
