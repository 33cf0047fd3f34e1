"""Typed shapes of AssemblyAI's transcript API (pydantic v2), and transcript id validation. No I/O here."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, PrivateAttr, field_validator

from airflow_provider_assemblyai.validation import TranscriptStatus, validate_transcript_id

__all__ = [
    "PageDetails",
    "Transcript",
    "TranscriptList",
    "TranscriptListItem",
    "TranscriptStatus",
    "validate_transcript_id",
]

DELETED_TEXT = "Deleted by user."
DELETED_URL_SUFFIX = "deleted_by_user"


def _is_deleted(text: str | None, audio_url: str | None) -> bool:
    return text == DELETED_TEXT or (audio_url or "").endswith(DELETED_URL_SUFFIX)


class _ApiModel(BaseModel):
    """Lenient base: unknown fields are kept, so nothing the API sends is lost."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Transcript(_ApiModel):
    """A transcript as ``GET`` or ``DELETE /v2/transcript/{id}`` return it (only id and status required)."""

    id: str
    status: TranscriptStatus
    audio_url: str | None = None
    text: str | None = None
    error: str | None = None
    audio_duration: float | None = None
    audio_channels: int | None = None
    audio_start_from: int | None = None
    audio_end_at: int | None = None
    confidence: float | None = None
    language_code: str | None = None
    language_confidence: float | None = None
    language_confidence_threshold: float | None = None
    language_detection: bool | None = None
    language_model: str | None = None
    acoustic_model: str | None = None
    speech_model: str | None = None
    speech_model_used: str | None = None
    punctuate: bool | None = None
    format_text: bool | None = None
    disfluencies: bool | None = None
    multichannel: bool | None = None
    speaker_labels: bool | None = None
    speakers_expected: int | None = None
    auto_highlights: bool | None = None
    auto_chapters: bool | None = None
    summarization: bool | None = None
    summary: str | None = None
    redact_pii: bool | None = None
    redact_pii_audio: bool | None = None
    throttled: bool | None = None
    webhook_url: str | None = None
    webhook_auth: bool | None = None
    webhook_status_code: int | None = None
    words: list[dict[str, Any]] | None = None
    utterances: list[dict[str, Any]] | None = None
    chapters: list[dict[str, Any]] | None = None

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Transcript:
        """Parse an API response body, keeping it verbatim for :attr:`raw`."""
        transcript = cls.model_validate(data)
        transcript._raw = data
        return transcript

    @property
    def raw(self) -> dict[str, Any]:
        """The body exactly as the API sent it: every field, unknown ones included, none added."""
        return self._raw or self.model_dump(mode="json", exclude_unset=True)

    @property
    def is_deleted(self) -> bool:
        """Whether the transcript is in the API's deleted shape."""
        return _is_deleted(self.text, self.audio_url)


def _as_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


class TranscriptListItem(_ApiModel):
    """One row of ``GET /v2/transcript``. Timestamps are UTC, with or without a trailing ``Z``."""

    id: str
    status: TranscriptStatus
    created: datetime
    completed: datetime | None = None
    resource_url: str | None = None
    audio_url: str | None = None
    error: str | None = None

    @field_validator("created", "completed")
    @classmethod
    def _timestamps_are_utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)

    @field_validator("error")
    @classmethod
    def _empty_error_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def is_deleted(self) -> bool:
        """Whether the transcript was deleted (list items keep only the deleted ``audio_url``)."""
        return _is_deleted(None, self.audio_url)


class PageDetails(_ApiModel):
    """Paging links of a transcript list page. ``prev_url`` points to OLDER transcripts."""

    limit: int
    result_count: int
    current_url: str | None = None
    prev_url: str | None = None
    next_url: str | None = None


class TranscriptList(_ApiModel):
    """One page of ``GET /v2/transcript``, newest first."""

    page_details: PageDetails
    transcripts: list[TranscriptListItem]
