"""Small helpers shared by the emulator tests."""

from __future__ import annotations

from typing import Any

import httpx

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.api_bodies import LOOKUP_ERROR as LOOKUP_ERROR_TEXT

KEY = "emu-key-9d41c7b2e0"  # distinctive, so a leak into the request log is easy to spot
LOOKUP_ERROR = {"error": LOOKUP_ERROR_TEXT}


def tr_url(emu: AssemblyAIEmulator, region: str = "us", transcript_id: str | None = None) -> str:
    """URL of the transcript collection, or of one transcript."""
    base = f"{emu.base_url(region)}/v2/transcript"
    return base if transcript_id is None else f"{base}/{transcript_id}"


def list_page(
    http: httpx.Client, emu: AssemblyAIEmulator, region: str = "us", **params: Any
) -> dict[str, Any]:
    """GET one list page and return its JSON (asserting 200)."""
    resp = http.get(tr_url(emu, region), params={k: v for k, v in params.items() if v is not None})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def walk(http: httpx.Client, first_url: str) -> list[dict[str, Any]]:
    """Follow ``prev_url`` from ``first_url`` to the end; return every item in order."""
    items: list[dict[str, Any]] = []
    next_url: str | None = first_url
    while next_url is not None:
        resp = http.get(next_url)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        items.extend(page["transcripts"])
        next_url = page["page_details"]["prev_url"]
    return items
