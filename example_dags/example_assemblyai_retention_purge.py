"""
Daily retention purge: delete completed and errored AssemblyAI transcripts older than 30 days.

``PurgeTranscriptsOperator`` scans the account's transcripts (the API lists only the last 90 days,
so a daily run keeps up; delete anything older by id with ``transcript_ids``), deletes the matching
ones eight at a time at most 10 requests per second, well under the account's limit of about 66/s
shared with the rest of your traffic, and keeps an audit per day under ``<audit_dir>/<ds>/``: one
folder per attempt (a retry adds one beside the first), each holding small parts written whole, so
a killed worker loses at most the last second of lines, and a retry first settles what the killed
attempt announced but could not record. ``verify_audit`` then reads every part of every attempt
with ``read_audit`` and fails if a hash link is broken or a deletion of the summary is missing.
Set ``audit_dir`` to an object store (``s3://aws_default@bucket/audit``) in production. To preview
what a run would delete, trigger it with ``{"dry_run": true}``: it reports and audits, and deletes
nothing; then trigger it again without it (or with ``false``) to delete.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_provider_assemblyai.operators.assemblyai import PurgeTranscriptsOperator

AUDIT_DIR = (Path(tempfile.gettempdir()) / "assemblyai-audit").as_uri()

with DAG(
    dag_id="example_assemblyai_retention_purge",
    description="Delete completed and errored transcripts older than 30 days, with an audit trail",
    schedule="@daily",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["example", "assemblyai", "retention"],
    doc_md=__doc__,
    params={
        "audit_dir": Param(AUDIT_DIR, type="string", description="ObjectStoragePath URI of the audit dir"),
        "dry_run": Param(False, type="boolean", description="Report and audit what would be deleted only."),
    },
) as dag:
    purge = PurgeTranscriptsOperator(
        task_id="purge_old_transcripts",
        older_than=timedelta(days=30),
        statuses=("completed", "error"),
        concurrency=8,
        max_requests_per_second=10,
        audit_path="{{ params.audit_dir }}/{{ ds }}.jsonl",
        dry_run="{{ params.dry_run }}",  # rendered 'True'/'False', checked before any request
        retries=2,
        retry_delay=timedelta(minutes=5),
    )

    @task
    def verify_audit(summary: dict[str, Any]) -> dict[str, int]:
        """Check the day's audit (every attempt): intact hash links, every deletion recorded."""
        from airflow_provider_assemblyai.audit import read_audit

        report = read_audit(summary["audit_path"], anchors=[summary["audit_anchor"]])
        if report.problems:
            raise ValueError(f"The purge audit {report.uri} was tampered with: {report.problems}")
        unrecorded = set(summary["deleted_ids"]) - report.ids("deleted")
        if unrecorded:
            raise ValueError(f"Deletions missing from the audit {report.uri}: {sorted(unrecorded)}")
        return {
            "attempts": len(report.attempts),
            "records": len(report.records),
            "deleted": len(report.ids("deleted")),
            "open_intents": len(report.open_intents),
        }

    verify_audit(purge.output)
