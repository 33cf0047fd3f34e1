"""Workload 1: mapped DeleteTranscriptOperator tasks, each with its own region's connection."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator

with DAG(
    "deployment_mapped_delete",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_tasks=64,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=2)},
):

    @task
    def deletions(dag_run: Any = None) -> list[dict[str, str]]:
        """``[{"transcript_id": ..., "assemblyai_conn_id": ...}, ...]`` from the run's conf."""
        return list(dag_run.conf["deletions"])

    DeleteTranscriptOperator.partial(task_id="delete").expand_kwargs(deletions())
