"""Workload 3: one retention purge of the EU region, with an audit file; retried once if it dies."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator

with DAG("deployment_purge", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
    PurgeTranscriptsOperator(
        task_id="purge",
        assemblyai_conn_id="assemblyai_eu",
        created_before="{{ dag_run.conf['created_before'] }}",
        audit_path="{{ dag_run.conf['audit_path'] }}",
        concurrency=16,
        retries=1,
        retry_delay=timedelta(seconds=2),
        priority_weight=100,
    )
