"""Every file in example_dags/ imports without errors, on Airflow 2.11 and 3.x."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.example_dags.dag_runner import AIRFLOW_3, EXAMPLE_DAGS, dag_bag

EXAMPLE_FILES = sorted(EXAMPLE_DAGS.glob("*.py"))


def test_example_folder_has_the_delete_examples() -> None:
    names = {path.name for path in EXAMPLE_FILES}
    assert {"example_assemblyai_post_etl_cleanup.py", "example_assemblyai_mapped_delete.py"} <= names


def test_whole_folder_imports_without_errors() -> None:
    bag = dag_bag(EXAMPLE_DAGS)
    assert bag.import_errors == {}
    assert {"example_assemblyai_post_etl_cleanup", "example_assemblyai_mapped_delete"} <= set(bag.dag_ids)


#: Examples that need Airflow 3 (AssetWatcher): on Airflow 2.11 they import cleanly and define no DAG.
AIRFLOW_3_ONLY = {"example_assemblyai_event_driven_cleanup.py"}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=[path.name for path in EXAMPLE_FILES])
def test_each_example_file_defines_dags_without_errors(path: Path) -> None:
    bag = dag_bag(path)
    assert bag.import_errors == {}
    if path.name in AIRFLOW_3_ONLY and not AIRFLOW_3:
        assert bag.dag_ids == []
    else:
        assert bag.dag_ids, f"{path.name} defines no DAG"


def test_event_driven_example_is_scheduled_by_an_asset_watcher() -> None:
    if not AIRFLOW_3:
        pytest.skip("AssetWatcher needs Airflow 3")
    dag = dag_bag(EXAMPLE_DAGS).get_dag("example_assemblyai_event_driven_cleanup")
    [asset] = dag.timetable.asset_condition.objects
    [watcher] = asset.watchers
    assert watcher.trigger.serialize() == (
        "airflow_provider_assemblyai.triggers.assemblyai.TranscriptEventTrigger",
        {
            "assemblyai_conn_id": "assemblyai_default",
            "statuses": ["completed"],
            "poll_interval": 60.0,
            "lookback": 86400.0,
            "redeliver_after": 600.0,
        },
    )
    delete_upstream = dag.get_task("export_and_delete.delete").upstream_task_ids
    assert set(delete_upstream) == {"export_and_delete.export", "transcript_ids"}
    assert set(dag.get_task("export_and_delete.export").upstream_task_ids) == {"transcript_ids"}


def test_delete_examples_are_wired_as_documented() -> None:
    bag = dag_bag(EXAMPLE_DAGS)
    for dag_id in ("example_assemblyai_post_etl_cleanup", "example_assemblyai_mapped_delete"):
        dag = bag.get_dag(dag_id)
        assert dag.catchup is False
        assert {"example", "assemblyai"} <= set(dag.tags)
    post_etl = bag.get_dag("example_assemblyai_post_etl_cleanup")
    delete = post_etl.get_task("delete_transcript")
    assert set(delete.upstream_task_ids) == {"export_text", "export_utterances"}
    mapped = bag.get_dag("example_assemblyai_mapped_delete")
    assert set(mapped.get_task("delete_transcript").upstream_task_ids) == {"choose_transcripts"}
    assert set(mapped.get_task("report").upstream_task_ids) == {"choose_transcripts", "delete_transcript"}
