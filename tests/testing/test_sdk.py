"""The official ``assemblyai`` SDK works against the emulator unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import assemblyai as aai
import pytest

from airflow_provider_assemblyai.testing import AssemblyAIEmulator
from tests.testing.helpers import KEY


@pytest.fixture
def sdk(emu: AssemblyAIEmulator) -> Iterator[AssemblyAIEmulator]:
    saved = aai.settings.api_key, aai.settings.base_url
    aai.settings.api_key = KEY
    aai.settings.base_url = emu.base_url("us")
    try:
        yield emu
    finally:
        aai.settings.api_key, aai.settings.base_url = saved


def test_sdk_lists_page_by_page(sdk: AssemblyAIEmulator) -> None:
    ids = sdk.seed(47, statuses={"completed": 0.8, "error": 0.1, "deleted": 0.1})
    transcriber = aai.Transcriber()
    params = aai.ListTranscriptParameters(limit=10)
    seen: list[str] = []
    page = transcriber.list_transcripts(params)
    seen.extend(t.id for t in page.transcripts)
    while page.page_details.before_id_of_prev_url is not None:
        params.before_id = page.page_details.before_id_of_prev_url
        page = transcriber.list_transcripts(params)
        seen.extend(t.id for t in page.transcripts)
    assert seen == ids
    assert page.page_details.result_count == 7


def test_sdk_gets_and_deletes(sdk: AssemblyAIEmulator) -> None:
    tid = sdk.create_transcript("us", status="completed", audio_duration=42, options={"speaker_labels": True})
    transcript = aai.Transcript.get_by_id(tid)
    assert transcript.status == aai.TranscriptStatus.completed
    assert transcript.text
    assert transcript.words
    assert transcript.utterances
    assert transcript.audio_duration == 42

    deleted = aai.Transcript.delete_by_id(tid)
    assert deleted.id == tid
    assert deleted.text == "Deleted by user."
    assert deleted.audio_url == "http://deleted_by_user"
    assert sdk.is_deleted("us", tid)


def test_sdk_sees_errors_and_regions(sdk: AssemblyAIEmulator) -> None:
    failed = sdk.create_transcript("us", status="error")
    transcript = aai.Transcript.get_by_id(failed)
    assert transcript.status == aai.TranscriptStatus.error
    assert transcript.error
    assert transcript.error.startswith("Download error")

    eu_id = sdk.create_transcript("eu")
    with pytest.raises(aai.types.TranscriptError, match="lookup error"):
        aai.Transcript.delete_by_id(eu_id)
    aai.settings.base_url = sdk.base_url("eu")
    assert aai.Transcript.delete_by_id(eu_id).text == "Deleted by user."
