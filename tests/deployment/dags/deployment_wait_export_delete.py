"""
Workload 2: per transcript, a TranscriptSensor waiting in the triggerer, an export, then the delete.

The sensor is deferrable through the deployment's ``[operators] default_deferrable = True``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task, task_group

from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator
from airflow_provider_assemblyai.sensors.assemblyai import TranscriptSensor

CONN_ID = "assemblyai_us"

with DAG(
    "deployment_wait_export_delete",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_tasks=64,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=2)},
):

    @task
    def transcript_ids(dag_run: Any = None) -> list[str]:
        """The transcripts to wait for, from the run's conf."""
        return list(dag_run.conf["transcript_ids"])

    @task
    def export(summary: dict[str, Any], dag_run: Any = None) -> str:
        """Save the completed transcript as the API sent it to ``<export_dir>/<id>.json``."""
        from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

        transcript = AssemblyAIHook(CONN_ID).get_transcript(summary["transcript_id"])
        path = Path(dag_run.conf["export_dir"]) / f"{transcript.id}.json"
        path.write_text(json.dumps(transcript.raw), encoding="utf-8")
        return str(path)

    @task_group
    def wait_export_delete(transcript_id: str) -> None:
        wait = TranscriptSensor(
            task_id="wait",
            transcript_id=transcript_id,
            assemblyai_conn_id=CONN_ID,
            poke_interval=5,
            timeout=900,
            priority_weight=10,  # before the mapped deletes: the sooner they wait, the sooner they finish
        )
        delete = DeleteTranscriptOperator(
            task_id="delete", transcript_id=transcript_id, assemblyai_conn_id=CONN_ID
        )
        export(wait.output) >> delete

    wait_export_delete.expand(transcript_id=transcript_ids())
