"""Every kind of body the emulator emits validates against AssemblyAI's own OpenAPI schemas."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.testing.conftest import Validate
from tests.testing.helpers import tr_url


def test_validator_rejects_a_wrong_body(validate: Validate) -> None:
    """Guard: the validator really checks (extra keys, missing required fields)."""
    with pytest.raises(AssertionError):
        validate("Error", {"message": "x"})
    with pytest.raises(AssertionError):
        validate("TranscriptListItem", {"id": "x"})
    with pytest.raises(AssertionError):
        validate("Transcript", {"id": "3e0c3d3c-2f5c-4a0a-9a55-0a1b2c3d4e5f", "status": "completed"})


def test_transcript_bodies_in_every_state(
    emu: AssemblyAIEmulator, http: httpx.Client, validate: Validate
) -> None:
    emu.configure(allow_delete_in_progress=True)
    bodies: dict[str, dict[str, Any]] = {}
    post = http.post(
        tr_url(emu),
        json={
            "audio_url": "https://x/a.mp3",
            "speaker_labels": True,
            "webhook_url": "https://hooks.example/x",
            "webhook_auth_header_name": "X-Secret",
            "webhook_auth_header_value": "s3cret",
            "language_code": "en_us",
            "punctuate": False,
            "speech_threshold": 0.5,
            "unknown_option": 1,
        },
    )
    bodies["posted"] = post.json()
    tid = bodies["posted"]["id"]
    emu.advance(emu.state.config.queued_seconds)
    bodies["processing"] = http.get(tr_url(emu, "us", tid)).json()
    emu.advance(emu.state.config.processing_seconds)
    bodies["completed+speakers"] = http.get(tr_url(emu, "us", tid)).json()
    plain = emu.create_transcript("us", status="completed")
    bodies["completed"] = http.get(tr_url(emu, "us", plain)).json()
    failed = emu.create_transcript("us", status="error")
    bodies["error"] = http.get(tr_url(emu, "us", failed)).json()
    bodies["deleted"] = http.delete(tr_url(emu, "us", tid)).json()
    bodies["deleted-error"] = http.delete(tr_url(emu, "us", failed)).json()
    queued = emu.create_transcript("eu", status="queued")
    bodies["queued"] = http.get(tr_url(emu, "eu", queued)).json()
    bodies["deleted-queued"] = http.delete(tr_url(emu, "eu", queued)).json()
    bodies["deleted-again"] = http.delete(tr_url(emu, "us", tid)).json()

    assert bodies["posted"]["status"] == "queued"
    assert bodies["processing"]["status"] == "processing"
    assert bodies["completed+speakers"]["utterances"][0]["speaker"] == "A"
    assert bodies["completed+speakers"]["webhook_auth"] is True
    assert "s3cret" not in str(bodies)
    assert bodies["error"]["status"] == "error"
    for name, body in bodies.items():
        try:
            validate("Transcript", body)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def test_list_pages(emu: AssemblyAIEmulator, http: httpx.Client, validate: Validate) -> None:
    emu.seed(40, statuses=["completed", "error", "queued", "processing", "deleted"])
    pages = [
        http.get(tr_url(emu), params=params).json()
        for params in (
            {},
            {"limit": 3},
            {"status": "error", "limit": 200},
            {"status": "queued"},
            {"created_on": "1999-01-01"},
        )
    ]
    pages.append(http.get(tr_url(emu, "eu")).json())  # empty
    pages.append(http.get(pages[1]["page_details"]["prev_url"]).json())
    pages.append(http.get(pages[1]["page_details"]["next_url"]).json())
    for page in pages:
        validate("TranscriptList", page)
    assert pages[4]["transcripts"] == []
    assert pages[5]["transcripts"] == []


def test_error_bodies(emu: AssemblyAIEmulator, http: httpx.Client, validate: Validate) -> None:
    bodies = [
        httpx.get(tr_url(emu)).json(),  # 401
        http.get(tr_url(emu, "us", "nope")).json(),  # 400 lookup
        http.get(tr_url(emu), params={"limit": 0}).json(),  # 400 validation
        http.post(tr_url(emu), json={}).json(),  # 400 create
        http.get(emu.base_url("us") + "/v2/nothing").json(),  # 404
        http.put(tr_url(emu)).json(),  # 405
    ]
    emu.set_rate_limit(1, 300)
    http.get(tr_url(emu))
    bodies.append(http.get(tr_url(emu)).json())  # 429
    emu.set_rate_limit(None)
    emu.fail_next("error")
    bodies.append(http.get(tr_url(emu)).json())  # 500
    in_progress = emu.create_transcript("us", status="processing")
    bodies.append(http.delete(tr_url(emu, "us", in_progress)).json())  # 400 delete refused
    for body in bodies:
        validate("Error", body)
