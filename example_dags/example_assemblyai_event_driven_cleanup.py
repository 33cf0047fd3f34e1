"""
Event-driven cleanup (Airflow 3): every finished transcript is exported, then deleted; no ids by hand.

The asset ``assemblyai_finished_transcripts`` is watched by ``TranscriptEventTrigger``: the triggerer
polls the account of the ``assemblyai_default`` connection (in its region) and fires one event per
transcript that is ``completed``, was created within the last day and is not deleted. The events
schedule this DAG. One run may carry several events, and the same transcript may arrive twice (a
restarted triggerer offers again what is not deleted yet; with several triggerers, each runs its own
copy of the watcher). So the DAG reads the ids from its triggering asset events, keeps each once, and
for each one (a mapped task group, so one transcript's failure holds back only its own delete):

1. ``export`` writes the transcript, as the API returns it, to ``<export uri>/<id>.json`` (an
   ``ObjectStoragePath``: a local folder by default, ``s3://...`` or ``gs://...`` with their
   providers), overwriting an earlier export of it. A transcript that is already deleted (a repeated
   event) is left alone: the run that deleted it wrote its export.
2. ``delete`` (``DeleteTranscriptOperator``) runs once the export succeeded. Deleting an already
   deleted transcript succeeds, so a repeat is a successful no-op.

Runs may overlap (a repeat in two runs at once still ends in one export and a deleted transcript).
``redeliver_after``: a transcript still undeleted 10 minutes after its event is offered once more.
That retries a failed run, and works around Airflow 3.3 leaving some events of a burst unconsumed
until the asset's next event (apache/airflow#56050).

The export location is the Airflow variable ``assemblyai_export_uri`` (default
``file://<tempdir>/assemblyai-exports``). On Airflow 2.11 there is no ``AssetWatcher``: this file then
defines no DAG.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG, ObjectStoragePath, Variable, task, task_group

from airflow_provider_assemblyai.operators.assemblyai import DeleteTranscriptOperator
from airflow_provider_assemblyai.triggers.assemblyai import EVENT_TRIGGERS_SUPPORTED, TranscriptEventTrigger

CONN_ID = "assemblyai_default"
EXPORT_URI_VARIABLE = "assemblyai_export_uri"
DEFAULT_EXPORT_URI = (Path(tempfile.gettempdir()) / "assemblyai-exports").as_uri()

log = logging.getLogger(__name__)

if EVENT_TRIGGERS_SUPPORTED:  # Airflow 3
    from airflow.sdk import Asset, AssetWatcher

    finished_transcripts = Asset(
        "assemblyai_finished_transcripts",
        watchers=[
            AssetWatcher(
                name="assemblyai_default_completed",
                trigger=TranscriptEventTrigger(
                    assemblyai_conn_id=CONN_ID,
                    statuses=["completed"],
                    poll_interval=60,
                    lookback=timedelta(days=1),
                    redeliver_after=timedelta(minutes=10),
                ),
            )
        ],
    )

    with DAG(
        dag_id="example_assemblyai_event_driven_cleanup",
        description="Export and delete every AssemblyAI transcript as it finishes (AssetWatcher)",
        schedule=[finished_transcripts],
        start_date=datetime(2025, 1, 1),
        catchup=False,
        tags=["example", "assemblyai", "event-driven"],
        doc_md=__doc__,
    ):

        @task
        def transcript_ids(*, triggering_asset_events: Any = None) -> list[str]:
            """The transcript ids of this run's events, each once."""
            ids = [
                event.extra["payload"]["transcript_id"]
                for events in triggering_asset_events.values()
                for event in events
            ]
            log.info("%d events, %d transcripts", len(ids), len(set(ids)))
            return list(dict.fromkeys(ids))

        @task
        def export(transcript_id: str) -> str | None:
            """Write the transcript to ``<export uri>/<id>.json`` (overwriting); skip a deleted one."""
            from airflow_provider_assemblyai.hooks.assemblyai import AssemblyAIHook

            transcript = AssemblyAIHook(CONN_ID).get_transcript(transcript_id)
            if transcript.is_deleted:
                log.info("Transcript %s is already deleted (a repeated event): export kept", transcript_id)
                return None
            folder = ObjectStoragePath(Variable.get(EXPORT_URI_VARIABLE, default=DEFAULT_EXPORT_URI))
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{transcript_id}.json"
            path.write_text(json.dumps(transcript.raw, indent=2))
            return str(path)

        @task_group
        def export_and_delete(transcript_id: str) -> None:
            """Export one transcript, then delete it."""
            export(transcript_id) >> DeleteTranscriptOperator(
                task_id="delete",
                transcript_id=transcript_id,
                assemblyai_conn_id=CONN_ID,
                wait_for_completion=False,  # offered transcripts are finished
            )

        export_and_delete.expand(transcript_id=transcript_ids())
