"""Transcript records and the JSON shapes the real API returns for them."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_assemblyai.testing.clock import format_timestamp

__all__ = [
    "DELETED_TEXT",
    "DELETED_URL",
    "STATUSES",
    "TranscriptRecord",
    "download_error",
    "micros",
    "render_list_item",
    "render_transcript",
    "validate_options",
]

STATUSES: tuple[str, ...] = ("queued", "processing", "completed", "error")
DELETED_TEXT = "Deleted by user."
DELETED_URL = "http://deleted_by_user"

_SAMPLE_TEXTS: tuple[str, ...] = (
    "Smoke from hundreds of wildfires in Canada is triggering air quality alerts throughout the US.",
    "Skylines from Maine to Maryland to Minnesota are gray and smoggy.",
    "We wanted to better understand what's happening here and why.",
    "The quarterly numbers look better than we expected, so let's review the forecast together.",
    "Thanks for calling, your ticket has been updated and a technician will follow up tomorrow.",
)

_BOOL_OPTIONS: frozenset[str] = frozenset(
    {
        "punctuate",
        "format_text",
        "disfluencies",
        "multichannel",
        "filter_profanity",
        "redact_pii",
        "redact_pii_audio",
        "speaker_labels",
        "content_safety",
        "iab_categories",
        "auto_chapters",
        "summarization",
        "custom_topics",
        "sentiment_analysis",
        "entity_detection",
        "language_detection",
        "auto_highlights",
        "speed_boost",
    }
)
_STR_OPTIONS: frozenset[str] = frozenset(
    {
        "webhook_url",
        "webhook_auth_header_name",
        "language_code",
        "speech_model",
        "summary_model",
        "summary_type",
    }
)
_INT_OPTIONS: frozenset[str] = frozenset({"speakers_expected", "audio_start_from", "audio_end_at"})
_UNIT_OPTIONS: frozenset[str] = frozenset({"speech_threshold", "language_confidence_threshold"})


def download_error(audio_url: str) -> str:
    """The error text the real API gives for an unreachable audio file."""
    return (
        f"Download error, unable to download {audio_url}. "
        "Please make sure the file exists and is accessible from the internet."
    )


def validate_options(body: dict[str, Any]) -> dict[str, Any]:
    """Keep the known request options, checking their types; raise ValueError with the API's message."""
    options: dict[str, Any] = {}
    for key, value in body.items():
        if key in _BOOL_OPTIONS:
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be a Boolean")
        elif key in _STR_OPTIONS or key == "webhook_auth_header_value":
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key} must be a String")
        elif key in _INT_OPTIONS:
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{key} must be an Integer")
        elif key in _UNIT_OPTIONS:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
            if value is not None and not ok:
                raise ValueError(f"{key} must be a Number between 0 and 1")
        else:
            continue  # unknown options are ignored
        options[key] = value
    return options


@dataclass
class TranscriptRecord:
    """One stored transcript; its status is derived lazily from the clock."""

    id: str
    region: str
    seq: int
    created: datetime
    audio_url: str
    processing_at: datetime | None
    done_at: datetime | None
    final_status: str = "completed"
    error: str | None = None
    audio_duration: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    deleted_at: datetime | None = None

    @property
    def sort_key(self) -> tuple[int, int]:
        """Ordering key (creation time in microseconds, insertion sequence)."""
        return (micros(self.created), self.seq)

    def finished(self, now: datetime) -> bool:
        """Whether processing ended (by ``now``, or before deletion)."""
        limit = self.deleted_at if self.deleted_at is not None else now
        return self.done_at is not None and self.done_at <= limit

    def status_at(self, now: datetime) -> str:
        """The API status at ``now`` (deleted transcripts read as completed)."""
        if self.deleted_at is not None:
            return "completed"
        if self.done_at is not None and now >= self.done_at:
            return self.final_status
        if self.processing_at is not None and now >= self.processing_at:
            return "processing"
        return "queued"

    def completed_at(self, now: datetime) -> datetime | None:
        """The ``completed`` timestamp shown in list items."""
        if self.status_at(now) != "completed":
            return None
        if self.finished(now):
            return self.done_at
        return self.deleted_at


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def micros(value: datetime) -> int:
    """Microseconds since the epoch (exact, for ordering)."""
    return (value - _EPOCH) // timedelta(microseconds=1)


def _words(text: str, speaker: str | None, confidence: float) -> list[dict[str, Any]]:
    words: list[dict[str, Any]] = []
    start = 240
    for i, token in enumerate(text.split()):
        end = start + 180 + 40 * len(token)
        conf = round(max(0.0, min(1.0, confidence + ((i % 5) - 2) * 0.01)), 5)
        words.append(
            {
                "text": token,
                "start": start,
                "end": end,
                "confidence": conf,
                "speaker": speaker,
                "channel": None,
            }
        )
        start = end + 60
    return words


def render_transcript(rec: TranscriptRecord, now: datetime) -> dict[str, Any]:
    """The full ``Transcript`` body for a record, as the real API would send it."""
    opts = rec.options
    status = rec.status_at(now)
    header_name = opts.get("webhook_auth_header_name")
    body: dict[str, Any] = {
        "id": rec.id,
        "language_model": "assemblyai_default",
        "acoustic_model": "assemblyai_default",
        "language_code": opts.get("language_code") or "en_us",
        "language_detection": opts.get("language_detection", False),
        "language_confidence_threshold": opts.get("language_confidence_threshold"),
        "language_confidence": None,
        "speech_model": opts.get("speech_model"),
        "status": status,
        "audio_url": rec.audio_url,
        "text": None,
        "words": None,
        "utterances": None,
        "confidence": None,
        "audio_duration": None,
        "punctuate": opts.get("punctuate", True),
        "format_text": opts.get("format_text", True),
        "disfluencies": opts.get("disfluencies", False),
        "multichannel": opts.get("multichannel", False),
        "webhook_url": opts.get("webhook_url"),
        "webhook_status_code": None,
        "webhook_auth": header_name is not None,
        "webhook_auth_header_name": header_name,
        "speed_boost": opts.get("speed_boost", False),
        "auto_highlights_result": None,
        "auto_highlights": opts.get("auto_highlights", False),
        "audio_start_from": opts.get("audio_start_from"),
        "audio_end_at": opts.get("audio_end_at"),
        "filter_profanity": opts.get("filter_profanity", False),
        "redact_pii": opts.get("redact_pii", False),
        "redact_pii_audio": opts.get("redact_pii_audio", False),
        "redact_pii_audio_quality": None,
        "redact_pii_policies": None,
        "speaker_labels": opts.get("speaker_labels", False),
        "speakers_expected": opts.get("speakers_expected"),
        "content_safety": opts.get("content_safety", False),
        "content_safety_labels": None,
        "iab_categories": opts.get("iab_categories", False),
        "iab_categories_result": None,
        "custom_spelling": None,
        "throttled": None,
        "auto_chapters": opts.get("auto_chapters", False),
        "chapters": None,
        "summarization": opts.get("summarization", False),
        "summary_type": opts.get("summary_type"),
        "summary_model": opts.get("summary_model"),
        "summary": None,
        "custom_topics": opts.get("custom_topics", False),
        "topics": [],
        "sentiment_analysis": opts.get("sentiment_analysis", False),
        "sentiment_analysis_results": None,
        "entity_detection": opts.get("entity_detection", False),
        "entities": None,
        "speech_threshold": opts.get("speech_threshold"),
    }
    if rec.deleted_at is not None:
        body["text"] = DELETED_TEXT
        body["audio_url"] = DELETED_URL
        body["webhook_url"] = DELETED_URL
        if rec.finished(now) and rec.final_status == "completed":
            body["audio_duration"] = rec.audio_duration
        return body
    if status == "error":
        body["error"] = rec.error or download_error(rec.audio_url)
    elif status == "completed":
        digest = zlib.crc32(rec.id.encode())
        text = _SAMPLE_TEXTS[digest % len(_SAMPLE_TEXTS)]
        confidence = round(0.86 + (digest % 1000) / 10_000, 6)
        speaker = "A" if body["speaker_labels"] else None
        words = _words(text, speaker, confidence)
        body.update(text=text, words=words, confidence=confidence, audio_duration=rec.audio_duration)
        body["language_confidence"] = 0.9959 if body["language_detection"] else None
        if speaker is not None:
            body["utterances"] = [
                {
                    "confidence": confidence,
                    "start": words[0]["start"],
                    "end": words[-1]["end"],
                    "text": text,
                    "words": words,
                    "speaker": speaker,
                    "channel": None,
                }
            ]
    return body


def render_list_item(rec: TranscriptRecord, now: datetime, base_url: str) -> dict[str, Any]:
    """A ``TranscriptListItem`` for a record."""
    status = rec.status_at(now)
    completed = rec.completed_at(now)
    return {
        "id": rec.id,
        "resource_url": f"{base_url}/v2/transcript/{rec.id}",
        "status": status,
        "created": format_timestamp(rec.created),
        "completed": format_timestamp(completed) if completed is not None else None,
        "audio_url": DELETED_URL if rec.deleted_at is not None else rec.audio_url,
        "error": (rec.error or download_error(rec.audio_url)) if status == "error" else None,
    }
