"""
Mapped delete: one DeleteTranscriptOperator task instance per transcript.

``choose_transcripts`` returns the ids given in ``transcript_ids``; when that list is empty, it lists
completed transcripts created more than ``older_than_days`` ago (at most ``max_transcripts``, not
already deleted). ``delete_transcript`` is mapped over the ids with ``.expand()``, and ``report``
sums up what was deleted and what did not exist. For large retention purges, use
PurgeTranscriptsOperator instead.

Trigger it with explicit ids::

    airflow dags test example_assemblyai_mapped_delete -c '{"transcript_ids": ["<id1>", "<id2>"]}'
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from itertools import islice
from typing import Any

from airflow.providers.common.compat.sdk import DAG, Param, get_current_context, task

from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator

CONN_ID = "assemblyai_default"

with DAG(
    dag_id="example_assemblyai_mapped_delete",
    description="Delete a list of AssemblyAI transcripts, one mapped task instance each",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "assemblyai"],
    doc_md=__doc__,
    params={
        "transcript_ids": Param(
            [],
            type="array",
            items={"type": "string"},
            description="Transcripts to delete; leave empty to pick old completed transcripts instead.",
        ),
        "older_than_days": Param(30, type="integer", minimum=0, description="Pick transcripts this old."),
        "max_transcripts": Param(10, type="integer", minimum=1, maximum=200, description="Pick at most N."),
    },
) as dag:

    @task
    def choose_transcripts() -> list[str]:
        """Return the ids to delete: the ``transcript_ids`` param, or old completed transcripts."""
        from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook
        from airflow_provider_assemblyai.models import validate_transcript_id

        params = get_current_context()["params"]
        if params["transcript_ids"]:
            return list(dict.fromkeys(validate_transcript_id(tid) for tid in params["transcript_ids"]))
        cutoff = datetime.now(timezone.utc) - timedelta(days=params["older_than_days"])
        old = (
            item.id
            for item in AssemblyAIHook(CONN_ID).list_transcripts(status="completed")
            if item.created < cutoff and not item.is_deleted
        )
        return list(islice(old, params["max_transcripts"]))

    chosen = choose_transcripts()
    delete_transcript = DeleteTranscriptOperator.partial(
        task_id="delete_transcript",
        assemblyai_conn_id=CONN_ID,
        missing_ok=True,
        poll_interval=10,
    ).expand(transcript_id=chosen)

    @task
    def report(chosen: Sequence[str], results: Sequence[dict[str, Any] | None]) -> dict[str, Any]:
        """Sum up the mapped deletions: a transcript that did not exist pushes no XCom."""
        deleted = [result["id"] for result in results if result]
        missing = sorted(set(chosen) - set(deleted))
        return {"deleted": deleted, "missing": missing}

    report(chosen, delete_transcript.output)
