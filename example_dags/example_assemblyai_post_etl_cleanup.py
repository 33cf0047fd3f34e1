"""
Post-ETL cleanup: export a finished transcript, then delete it from AssemblyAI.

Two export tasks save what the pipeline needs (the text, and the utterances with a word count) to
``export_dir`` (default: ``<tempdir>/assemblyai-exports``). Only when both have succeeded does
``DeleteTranscriptOperator`` delete the transcript; the deleted transcript, as the API returned it,
is the delete task's XCom ``return_value``.

Trigger it with the id to clean up::

    airflow dags test example_assemblyai_post_etl_cleanup -c '{"transcript_id": "<id>"}'
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import DAG, AirflowException, Param, get_current_context, task

from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator

if TYPE_CHECKING:
    from airflow_provider_assemblyai.models import Transcript

CONN_ID = "assemblyai_default"


def _params() -> dict[str, Any]:
    return dict(get_current_context()["params"])


def _export_dir(value: str | None) -> Path:
    path = Path(value) if value else Path(tempfile.gettempdir()) / "assemblyai-exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _completed_transcript(transcript_id: str | None) -> Transcript:
    """Fetch the transcript; only a completed, not yet deleted one can be exported."""
    from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
    from airflow_provider_assemblyai.models import TranscriptStatus, validate_transcript_id

    transcript = AssemblyAIHook(CONN_ID).get_transcript(validate_transcript_id(transcript_id))
    if transcript.status is not TranscriptStatus.COMPLETED or transcript.is_deleted:
        state = "already deleted" if transcript.is_deleted else transcript.status.value
        raise AirflowException(
            f"Transcript {transcript.id} is {state}: only a completed transcript can be exported"
        )
    return transcript


with DAG(
    dag_id="example_assemblyai_post_etl_cleanup",
    description="Export a completed transcript, then delete it from AssemblyAI",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "assemblyai"],
    doc_md=__doc__,
    params={
        "transcript_id": Param(
            None,
            type=["null", "string"],
            description="The AssemblyAI transcript to export and then delete.",
        ),
        "export_dir": Param(
            None,
            type=["null", "string"],
            description="Directory for the exported files (default: <tempdir>/assemblyai-exports).",
        ),
    },
) as dag:

    @task
    def export_text() -> str:
        """Write the transcript's text to ``<export_dir>/<id>.txt``; return the path."""
        params = _params()
        transcript = _completed_transcript(params["transcript_id"])
        path = _export_dir(params["export_dir"]) / f"{transcript.id}.txt"
        path.write_text(transcript.text or "", encoding="utf-8")
        return str(path)

    @task
    def export_utterances() -> dict[str, Any]:
        """Write the utterances and a word count to ``<export_dir>/<id>.json``; return a summary."""
        params = _params()
        transcript = _completed_transcript(params["transcript_id"])
        utterances = [
            {key: utterance.get(key) for key in ("speaker", "start", "end", "text")}
            for utterance in transcript.utterances or []
        ]
        export = {
            "id": transcript.id,
            "audio_duration": transcript.audio_duration,
            "confidence": transcript.confidence,
            "word_count": len(transcript.words or []),
            "utterances": utterances,
        }
        path = _export_dir(params["export_dir"]) / f"{transcript.id}.json"
        path.write_text(json.dumps(export, indent=2), encoding="utf-8")
        return {"path": str(path), "word_count": export["word_count"], "utterances": len(utterances)}

    # Renders "" when no id was given, so the operator fails with a clear ValueError, not a lookup.
    delete_transcript = DeleteTranscriptOperator(
        task_id="delete_transcript",
        transcript_id="{{ params.transcript_id or '' }}",
        assemblyai_conn_id=CONN_ID,
    )

    [export_text(), export_utterances()] >> delete_transcript
