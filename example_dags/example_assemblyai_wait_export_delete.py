"""
Wait, export, delete: hold no worker slot while AssemblyAI transcribes, then export and delete.

``TranscriptSensor`` (deferrable) waits in the triggerer until the transcript is ``completed`` (and
fails, naming the API's error text, if it ends in ``error``). Two export tasks then save the text
and the full transcript JSON to ``export_dir`` (default: ``<tempdir>/assemblyai-exports``). Only when
both succeeded does ``DeleteTranscriptOperator`` (deferrable, waiting for a terminal status first)
delete the transcript; its XCom is the deleted transcript as the API returned it.

Trigger it with the id of a transcript you just submitted::

    airflow dags trigger example_assemblyai_wait_export_delete -c '{"transcript_id": "<id>"}'
"""

from __future__ import annotations

import json
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param, get_current_context, task

from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator
from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor

CONN_ID = "assemblyai_default"
POLL_SECONDS = 5.0


def _export_path(transcript_id: str, suffix: str) -> Path:
    configured = get_current_context()["params"].get("export_dir")
    folder = Path(configured) if configured else Path(tempfile.gettempdir()) / "assemblyai-exports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{transcript_id}{suffix}"


with DAG(
    dag_id="example_assemblyai_wait_export_delete",
    description="Wait for a transcript in the triggerer, export it, then delete it from AssemblyAI",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "assemblyai", "deferrable"],
    doc_md=__doc__,
    params={
        "transcript_id": Param(
            None,
            type=["null", "string"],
            description="The AssemblyAI transcript to wait for, export and then delete.",
        ),
        "export_dir": Param(
            None,
            type=["null", "string"],
            description="Directory for the exported files (default: <tempdir>/assemblyai-exports).",
        ),
    },
) as dag:
    # Renders "" when no id was given, so the sensor fails with a clear ValueError, not a lookup.
    wait_for_transcript = TranscriptSensor(
        task_id="wait_for_transcript",
        transcript_id="{{ params.transcript_id or '' }}",
        assemblyai_conn_id=CONN_ID,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=timedelta(hours=3),
    )

    @task
    def export_text(summary: dict[str, Any]) -> str:
        """Write the completed transcript's text to ``<export_dir>/<id>.txt``; return the path."""
        from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

        transcript = AssemblyAIHook(CONN_ID).get_transcript(summary["transcript_id"])
        path = _export_path(transcript.id, ".txt")
        path.write_text(transcript.text or "", encoding="utf-8")
        return str(path)

    @task
    def export_json(summary: dict[str, Any]) -> str:
        """Write the whole transcript, as the API sent it, to ``<export_dir>/<id>.json``; return the path."""
        from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

        transcript = AssemblyAIHook(CONN_ID).get_transcript(summary["transcript_id"])
        path = _export_path(transcript.id, ".json")
        path.write_text(json.dumps(transcript.raw, indent=2), encoding="utf-8")
        return str(path)

    delete_transcript = DeleteTranscriptOperator(
        task_id="delete_transcript",
        transcript_id="{{ params.transcript_id or '' }}",
        assemblyai_conn_id=CONN_ID,
        deferrable=True,
        wait_for_completion=True,
        poll_interval=POLL_SECONDS,
        execution_timeout=timedelta(hours=1),
    )

    summary = wait_for_transcript.output
    [export_text(summary), export_json(summary)] >> delete_transcript
