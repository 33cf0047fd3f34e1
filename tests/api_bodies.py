"""Canned AssemblyAI response bodies and texts for the respx-based tests (hooks, operators, reliability)."""

from __future__ import annotations

from typing import Any

import httpx

US = "https://api.assemblyai.com"
EU = "https://api.eu.assemblyai.com"
#: The API's answer (HTTP 400) for an id it does not know in the region asked.
LOOKUP_ERROR = "Transcript lookup error, transcript id not found"


def transcript_body(transcript_id: str = "abc", status: str = "completed", **fields: Any) -> dict[str, Any]:
    """A transcript as GET returns it."""
    body: dict[str, Any] = {
        "id": transcript_id,
        "status": status,
        "audio_url": f"https://example.com/{transcript_id}.mp3",
        "text": "Hello world." if status == "completed" else None,
        "audio_duration": 12,
        "words": [{"text": "Hello", "start": 0, "end": 400, "confidence": 0.9}],
    }
    return body | fields


def deleted_body(transcript_id: str = "abc") -> dict[str, Any]:
    """A transcript in the API's deleted shape, as DELETE returns it."""
    return transcript_body(
        transcript_id,
        text="Deleted by user.",
        audio_url="http://deleted_by_user",
        webhook_url="http://deleted_by_user",
        words=None,
        utterances=None,
        confidence=None,
    )


def list_item(transcript_id: str, base: str = US, **fields: Any) -> dict[str, Any]:
    """One row of a transcript list page."""
    item: dict[str, Any] = {
        "id": transcript_id,
        "resource_url": f"{base}/v2/transcript/{transcript_id}",
        "status": "completed",
        "created": "2024-03-11T21:29:59.936851",
        "completed": "2024-03-11T21:30:07.314223",
        "audio_url": f"https://example.com/{transcript_id}.mp3",
        "error": None,
    }
    return item | fields


def list_page(ids: list[str], prev_url: str | None, limit: int = 2, base: str = US) -> dict[str, Any]:
    """A transcript list page whose ``prev_url`` points to the next (older) page."""
    return {
        "page_details": {
            "limit": limit,
            "result_count": len(ids),
            "current_url": f"{base}/v2/transcript?limit={limit}",
            "prev_url": prev_url,
            "next_url": None,
        },
        "transcripts": [list_item(i, base) for i in ids],
    }


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    """An httpx response with a JSON body."""
    return httpx.Response(status, json=body, headers=headers)
